"""The report for spreadsheets (CSV: one row per hit) and scripts (JSON: the figures).

Field names are English and stable whatever the language. The CSV goes through the one writer every
command uses (veille.core.csvtext), which keeps text from outside from being read as a formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from veille.core.csvtext import csv_text
from veille.reports.figures import MonthlyReport, interactions
from veille.reports.layout import snippet
from veille.store.reports import ReportHit

CSV_COLUMNS = (
    "client_id",
    "hit_id",
    "seen_at",
    "published_at",
    "kind",
    "source",
    "author",
    "author_name",
    "sentiment_label",
    "sentiment_score",
    "interactions",
    "likes",
    "reposts",
    "replies",
    "score",
    "views",
    "matched_terms",
    "title",
    "text",
    "url",
)


def _local(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


def csv_rows(report: MonthlyReport, tz: tzinfo) -> list[list[Any]]:
    rows = []
    for h in report.hits:
        e = h.engagement
        counts = (e.likes, e.reposts, e.replies, e.score, e.views) if e else (None,) * 5
        rows.append(
            [
                h.client_id,
                h.id,
                _local(h.fetched_at, tz),
                _local(h.published_at, tz),
                h.kind,
                h.source_key,
                h.author,
                h.author_name,
                h.sentiment_label or "",
                "" if h.sentiment_score is None else round(h.sentiment_score, 4),
                interactions(e),
                *("" if v is None else v for v in counts),
                h.matched_terms,
                h.title,
                h.text,
                h.url,
            ]
        )
    return rows


def render_csv(reports: Sequence[MonthlyReport], tz: tzinfo) -> str:
    return csv_text(CSV_COLUMNS, (row for report in reports for row in csv_rows(report, tz)))


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _hit(h: ReportHit, tz: tzinfo) -> dict[str, Any]:
    return {
        "hit_id": h.id,
        "seen_at": _local(h.fetched_at, tz),
        "kind": h.kind,
        "source": h.source_key,
        "author": h.author,
        "sentiment_label": h.sentiment_label,
        "sentiment_score": h.sentiment_score,
        "interactions": interactions(h.engagement),
        "url": h.url,
        "text": snippet(h, 280),
    }


def report_json(report: MonthlyReport, tz: tzinfo) -> dict[str, Any]:
    """The figures as plain data; times in the report's time zone with their offset, durations in seconds."""
    start, end = report.month.bounds(tz)
    return {
        "client_id": report.client_id,
        "client_name": report.client_name,
        "month": str(report.month),
        "timezone": report.timezone,
        "start": _local(start, tz),
        "end": _local(end, tz),
        "generated_at": _local(report.generated_at, tz),
        "empty": report.total == 0,
        "quiet": report.quiet,
        "hits": report.total,
        "previous_hits": report.previous_total,
        "unscored": report.unscored,
        "unscored_languages": dict(report.unscored_langs),
        "by_kind": [{"kind": k.name, "hits": k.count, "negative": k.negative} for k in report.by_kind],
        "by_week": [{"start": w.start.isoformat(), "end": w.end.isoformat(), "hits": w.count} for w in report.by_week],
        "sentiment": [
            {
                "label": s.label,
                "hits": s.count,
                "share": round(s.share, 4),
                "previous_share": None if s.previous_share is None else round(s.previous_share, 4),
                "delta_points": None if s.delta_points is None else round(s.delta_points, 2),
            }
            for s in report.sentiment
        ],
        "top_engaged": [_hit(h, tz) for h in report.top_engaged],
        "most_negative": [_hit(h, tz) for h in report.most_negative],
        "top_authors": [{"author": k.name, "hits": k.count, "negative": k.negative} for k in report.top_authors],
        "top_terms": [{"term": k.name, "hits": k.count, "negative": k.negative} for k in report.top_terms],
        "incidents": [
            {
                "id": i.id,
                "cause": i.cause,
                "status": i.status,
                "urgency": i.urgency,
                "title": i.title,
                "opened_at": _local(i.opened_at, tz),
                "notified_at": _local(i.notified_at, tz) or None,
                "acknowledged_at": _local(i.acked_at, tz) or None,
                "acknowledged_by": i.acked_by,
                "time_to_ack_seconds": _seconds(i.time_to_ack),
                "resolved_at": _local(i.resolved_at, tz) or None,
                "hits": i.hit_count,
                "summary": i.summary.as_dict() if i.summary else None,
            }
            for i in report.incidents
        ],
        "acknowledgements": {
            "opened": report.acks.opened,
            "acknowledged": report.acks.acknowledged,
            "median_time_to_ack_seconds": _seconds(report.acks.median_time_to_ack),
            "max_time_to_ack_seconds": _seconds(report.acks.max_time_to_ack),
        },
        "outages": [
            {
                "source": o.source_key,
                "kind": o.kind,
                "since": _local(o.since, tz),
                "until": _local(o.until, tz) or None,
                "seconds_in_month": o.duration.total_seconds(),
                "error_kind": o.error_kind,
            }
            for o in report.outages
        ],
        "responses": [
            {
                "channel": line.channel or "all",
                "answered": line.answered,
                "unanswered": line.unanswered,
                "response_rate": round(line.rate, 4) if line.rate is not None else None,
                "median_response_seconds": _seconds(line.median),
                "past_deadline": line.past_deadline,
                "answered_late": line.overdue,
                "waiting_past_deadline": line.waiting_overdue,
            }
            for line in report.responses
        ],
        "audience": [
            {
                "source": g.source_key,
                "kind": g.kind,
                "account": g.account,
                "metric": g.metric,
                "first_day": g.first_day.isoformat(),
                "first": g.first,
                "last_day": g.last_day.isoformat(),
                "last": g.last,
                "change": round(g.change, 4),
            }
            for g in report.audience
        ],
    }
