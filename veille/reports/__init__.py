"""Monthly reports per client: read (`veille.store.reports`), compute (`figures`), lay out and render.

`monthly_report` is the thin runner that performs the reads inside one read transaction;
everything after it is pure: `figures` computes, `layout` words it in French or English,
`markdown`/`html` render that layout, `tabular` writes CSV rows and JSON figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from veille.reports.figures import CLIENT_CAUSES, SOURCE_CAUSE, MonthlyReport, build_report
from veille.reports.html import render_html
from veille.reports.layout import document
from veille.reports.markdown import render_markdown
from veille.reports.period import Month
from veille.reports.tabular import render_csv, report_json
from veille.store import reports as store
from veille.store.audience import growth as audience_growth
from veille.store.audience import series as audience_series
from veille.store.inbox import answers_between, unanswered_channels
from veille.store.sources import list_sources

FORMATS = ("md", "html", "csv", "json")
EXTENSIONS = {"md": "md", "html": "html", "csv": "csv", "json": "json"}


def monthly_report(
    conn: Connection,
    *,
    client_id: str,
    client_name: str,
    month: Month,
    timezone: str,
    now: datetime,
    failing_after: timedelta,
) -> MonthlyReport:
    """Everything one client's report needs, read in the caller's transaction (one consistent snapshot)."""
    tz = ZoneInfo(timezone)
    start, end = month.bounds(tz)
    before_start, before_end = month.previous().bounds(tz)
    return build_report(
        client_id=client_id,
        client_name=client_name,
        month=month,
        timezone=timezone,
        now=now,
        hits=store.month_hits(conn, client_id, start, end),
        previous_labels=store.label_counts(conn, client_id, before_start, before_end),
        incidents=store.month_incidents(conn, client_id, start, end, CLIENT_CAUSES),
        source_incidents=store.month_incidents(conn, client_id, start, end, (SOURCE_CAUSE,)),
        failing_now=store.failing_sources(conn, client_id),
        source_kinds={row["key"]: row["kind"] for row in list_sources(conn, client_id=client_id, include_removed=True)},
        failing_after=failing_after,
        audience=audience_growth(
            conn, client_id=client_id, start=start.astimezone(tz).date(), end=end.astimezone(tz).date()
        ),
        answers=[
            (channel, seconds, late) for _, channel, seconds, late in answers_between(conn, start, end, client_id)
        ],
        unanswered=unanswered_channels(conn, client_id, end),
        audience_days=[
            day
            for day in audience_series(conn, client_id=client_id, since=start.astimezone(tz).date())
            if day["day"] < end.astimezone(tz).date()
        ],
    )


def render(reports: Sequence[MonthlyReport], output_format: str, lang: str, *, many: bool = False) -> str:
    """Reports as one text: Markdown/HTML documents, one CSV table, or JSON (a list when `many`)."""
    if not reports:
        raise ValueError("no report to render")
    tz = ZoneInfo(reports[0].timezone)
    if output_format == "csv":
        return render_csv(reports, tz)
    if output_format == "json":
        figures = [report_json(r, tz) for r in reports]
        return json.dumps(figures if many else figures[0], ensure_ascii=False, indent=1) + "\n"
    documents = [document(r, lang, tz) for r in reports]
    return render_html(documents) if output_format == "html" else render_markdown(documents)
