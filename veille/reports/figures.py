"""The figures of a monthly report, computed from plain rows: no database, no clock, no language.

`build_report` takes what `veille.store.reports` read and `now`; every helper is a pure function
tested as a table. Rendering (Markdown, HTML, CSV, JSON) reads only the `MonthlyReport` it returns.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from veille.core.incidents import Summary
from veille.core.models import Engagement
from veille.reports.period import Month, week_start
from veille.reports.svg import buckets
from veille.store.audience import AudienceDay, Growth
from veille.store.reports import FailingSource, IncidentFacts, ReportHit

LABELS = ("neg", "neu", "pos")
CLIENT_CAUSES = ("buzz", "volume")  # incidents about what people say; source failures are listed apart
SOURCE_CAUSE = "source"


def interactions(observed: Engagement | None) -> int:
    """Likes + reposts + replies + score (Reddit/HN points have no likes); views are another scale."""
    if observed is None:
        return 0
    return observed.total() + max(observed.score or 0, 0)


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    count: int
    share: float  # of the scored hits, 0..1
    previous_share: float | None  # None: the previous month had no scored hit
    delta_points: float | None  # (share - previous_share) x 100


@dataclass(frozen=True, slots=True)
class WeekCount:
    start: date  # clipped to the month: the first "week" may start on the 1st, not a Monday
    end: date
    count: int


@dataclass(frozen=True, slots=True)
class Ranked:
    name: str
    count: int
    negative: int = 0


@dataclass(frozen=True, slots=True)
class IncidentLine:
    id: int
    cause: str
    title: str
    urgency: str
    status: str
    opened_at: datetime
    notified_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    time_to_ack: timedelta | None  # from the first notification (or the opening) to the first ack
    resolved_at: datetime | None
    hit_count: int
    summary: Summary | None = None  # what its posts were about (buzz and volume incidents)
    top_posts: tuple[ReportHit, ...] = ()  # its most representative posts, as the summary picked them


@dataclass(frozen=True, slots=True)
class AckSummary:
    opened: int  # incidents opened in the month
    acknowledged: int
    median_time_to_ack: timedelta | None
    max_time_to_ack: timedelta | None


@dataclass(frozen=True, slots=True)
class Outage:
    source_key: str
    kind: str
    since: datetime
    until: datetime | None  # None: still failing when the report was made
    duration: timedelta  # within the month
    error_kind: str | None


@dataclass(frozen=True, slots=True)
class ResponseLine:
    """Answers to customers on one channel (the reply inbox): the agency's billable promise."""

    channel: str  # "" for every channel together
    answered: int  # answers given in the month
    unanswered: int  # conversations still waiting
    median: timedelta | None  # median time the customers waited for the answers given
    overdue: int  # answers given after their deadline
    waiting_overdue: int = 0  # conversations still waiting at the month's end, past their deadline

    @property
    def past_deadline(self) -> int:
        """Conversations that waited past their deadline: answered late, or still waiting."""
        return self.overdue + self.waiting_overdue

    @property
    def rate(self) -> float | None:
        total = self.answered + self.unanswered
        return self.answered / total if total else None


def response_lines(
    answers: Sequence[tuple[str, float, bool]], unanswered: Sequence[tuple[str, bool]]
) -> tuple[ResponseLine, ...]:
    """Per channel, then all channels together (when more than one): answers are (channel, seconds, overdue),
    conversations still waiting are (channel, past its deadline)."""

    def line(
        channel: str, picked: Sequence[tuple[str, float, bool]], waiting: Sequence[tuple[str, bool]]
    ) -> ResponseLine:
        waits = [seconds for _, seconds, _ in picked]
        median = timedelta(seconds=statistics.median(waits)) if waits else None
        late = sum(1 for *_, overdue in picked if overdue)
        return ResponseLine(channel, len(picked), len(waiting), median, late, sum(1 for _, o in waiting if o))

    channels = sorted({a[0] for a in answers} | {w[0] for w in unanswered})
    lines = [line(c, [a for a in answers if a[0] == c], [w for w in unanswered if w[0] == c]) for c in channels]
    if len(lines) > 1:
        lines.append(line("", answers, unanswered))
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    client_id: str
    client_name: str
    month: Month
    timezone: str
    generated_at: datetime
    total: int
    previous_total: int
    by_kind: tuple[Ranked, ...]
    by_week: tuple[WeekCount, ...]
    sentiment: tuple[Share, ...]
    unscored: int
    top_engaged: tuple[ReportHit, ...]
    most_negative: tuple[ReportHit, ...]
    top_authors: tuple[Ranked, ...]
    top_terms: tuple[Ranked, ...]
    incidents: tuple[IncidentLine, ...]
    acks: AckSummary
    outages: tuple[Outage, ...]
    hits: tuple[ReportHit, ...] = field(repr=False)  # every hit of the month, for the CSV
    audience: tuple[Growth, ...] = ()  # the month's growth of each own account (followers, rating)
    responses: tuple[ResponseLine, ...] = ()  # answers to customers per channel (the reply inbox)
    daily: tuple[tuple[datetime, int, int], ...] = ()  # every local day of the month: (midnight, hits, negative)
    audience_days: tuple[AudienceDay, ...] = ()  # the month's daily figures of the client's own accounts
    unscored_langs: tuple[tuple[str, int], ...] = ()  # unscored hits per language, most first (issue 16)

    @property
    def quiet(self) -> bool:
        """Nothing at all to report: the renderers say so in one sentence."""
        return self.total == 0 and not self.incidents and not self.outages and not self.responses


def by_kind(hits: Iterable[ReportHit]) -> tuple[Ranked, ...]:
    return _ranked(Counter(h.kind for h in hits), Counter(h.kind for h in hits if h.sentiment_label == "neg"))


def by_week(hits: Iterable[ReportHit], month: Month, tz: tzinfo) -> tuple[WeekCount, ...]:
    """Hits per local week (Monday to Sunday) clipped to the month; weeks without hits show 0."""
    counts = Counter(week_start(h.fetched_at.astimezone(tz).date()) for h in hits)
    weeks = []
    monday = week_start(month.first_day)
    while monday <= month.last_day:
        start = max(monday, month.first_day)
        end = min(monday + timedelta(days=6), month.last_day)
        weeks.append(WeekCount(start, end, counts.get(monday, 0)))
        monday += timedelta(days=7)
    return tuple(weeks)


def sentiment_shares(current: Mapping[str | None, int], previous: Mapping[str | None, int]) -> tuple[Share, ...]:
    """Share of each label among scored hits, and its move since the previous month in points."""
    scored = sum(current.get(label, 0) for label in LABELS)
    scored_before = sum(previous.get(label, 0) for label in LABELS)
    shares = []
    for label in LABELS:
        share = current.get(label, 0) / scored if scored else 0.0
        before = previous.get(label, 0) / scored_before if scored_before else None
        delta = (share - before) * 100 if before is not None and scored else None
        shares.append(Share(label, current.get(label, 0), share, before, delta))
    return tuple(shares)


def unscored_languages(hits: Iterable[ReportHit]) -> tuple[tuple[str, int], ...]:
    """The languages of the hits left without a sentiment (posts in a language veille does not score)."""
    counts = Counter(h.sentiment_lang for h in hits if h.sentiment_label is None and h.sentiment_lang)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def top_engaged(hits: Iterable[ReportHit], limit: int) -> tuple[ReportHit, ...]:
    engaged = [h for h in hits if interactions(h.engagement) > 0]
    return tuple(sorted(engaged, key=lambda h: (-interactions(h.engagement), h.id))[:limit])


def most_negative(hits: Iterable[ReportHit], limit: int) -> tuple[ReportHit, ...]:
    """Negative hits, the most negative score first; equal scores: the most engaged first."""
    negative = [h for h in hits if h.sentiment_label == "neg"]
    return tuple(
        sorted(
            negative,
            key=lambda h: (
                h.sentiment_score if h.sentiment_score is not None else 0.0,
                -interactions(h.engagement),
                h.id,
            ),
        )[:limit]
    )


def top_authors(hits: Iterable[ReportHit], limit: int) -> tuple[Ranked, ...]:
    """Handles by number of hits; the same handle on two networks is two people."""
    named = [h for h in hits if h.author]
    return _ranked(
        Counter(f"{h.author} ({h.kind})" for h in named),
        Counter(f"{h.author} ({h.kind})" for h in named if h.sentiment_label == "neg"),
        limit,
    )


def split_terms(matched_terms: str | None) -> list[str]:
    """`hits.matched_terms` is the matcher's terms joined by ", " (see store.hits._row)."""
    return [t.strip() for t in (matched_terms or "").split(", ") if t.strip()]


def top_terms(hits: Iterable[ReportHit], limit: int) -> tuple[Ranked, ...]:
    total: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    for h in hits:
        terms = set(split_terms(h.matched_terms))
        total.update(terms)
        if h.sentiment_label == "neg":
            negative.update(terms)
    return _ranked(total, negative, limit)


def _ranked(total: Counter[str], negative: Counter[str], limit: int | None = None) -> tuple[Ranked, ...]:
    ordered = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Ranked(name, count, negative.get(name, 0)) for name, count in ordered[:limit])


def incident_lines(facts: Iterable[IncidentFacts], hits: Sequence[ReportHit] = ()) -> tuple[IncidentLine, ...]:
    """`hits` (the month's) give the text of the posts each incident's summary picked as representative."""
    by_id = {h.id: h for h in hits}
    lines = []
    for f in facts:
        told = f.first_notified_at or f.opened_at
        tta = max(f.first_ack_at - told, timedelta(0)) if f.first_ack_at else None
        top = tuple(by_id[i] for i in (f.summary.top_hits if f.summary else ()) if i in by_id)
        lines.append(
            IncidentLine(
                id=f.id,
                cause=f.cause,
                title=f.title,
                urgency=f.urgency,
                status=f.status,
                opened_at=f.opened_at,
                notified_at=f.first_notified_at,
                acked_at=f.first_ack_at,
                acked_by=f.acked_by,
                time_to_ack=tta,
                resolved_at=f.resolved_at,
                hit_count=f.hit_count,
                summary=f.summary,
                top_posts=top,
            )
        )
    return tuple(lines)


def daily_counts(hits: Iterable[ReportHit], month: Month, tz: tzinfo) -> tuple[tuple[datetime, int, int], ...]:
    """Hits and negative hits per local day of the month, days without hits included (for the chart)."""
    start, end = month.bounds(tz)
    seen = [(h.fetched_at, 1, int(h.sentiment_label == "neg")) for h in hits]
    return tuple(buckets(seen, start, end - timedelta(seconds=1), tz, daily=True))


def ack_summary(lines: Sequence[IncidentLine], start: datetime, end: datetime) -> AckSummary:
    """Counts incidents opened in the month (one carried over from the month before is listed, not counted)."""
    opened = [line for line in lines if start <= line.opened_at < end]
    delays = sorted(line.time_to_ack for line in opened if line.time_to_ack is not None)
    median = timedelta(seconds=statistics.median(d.total_seconds() for d in delays)) if delays else None
    return AckSummary(len(opened), len(delays), median, delays[-1] if delays else None)


def outages(
    source_incidents: Iterable[IncidentFacts],
    failing_now: Iterable[FailingSource],
    kinds: Mapping[str, str],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    failing_after: timedelta,
) -> tuple[Outage, ...]:
    """Sources that failed for at least `failing_after` during the month.

    History comes from source incidents (opened once a source had failed for `failing_after`, so the
    failure began that long before); the current streak comes from the sources table, which is more
    precise and replaces the still-open incident of the same source.
    """
    found: dict[tuple[str, datetime | None], Outage] = {}
    current = {f.key: f for f in failing_now}
    for incident in source_incidents:
        if incident.resolved_at is None and incident.subject in current:
            continue
        since = incident.opened_at - failing_after
        found[(incident.subject, incident.opened_at)] = _outage(
            incident.subject, kinds.get(incident.subject, ""), since, incident.resolved_at, None, start, end, now
        )
    for source in current.values():
        if source.failing_since >= end or min(now, end) - source.failing_since < failing_after:
            continue
        found[(source.key, None)] = _outage(
            source.key, source.kind, source.failing_since, None, source.last_error_kind, start, end, now
        )
    kept = (o for o in found.values() if o.duration > timedelta(0))  # down, but not during this month
    return tuple(sorted(kept, key=lambda o: (o.since, o.source_key)))


def _outage(
    key: str,
    kind: str,
    since: datetime,
    until: datetime | None,
    error_kind: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Outage:
    stop = min(until or now, end)
    return Outage(key, kind, since, until, max(stop - max(since, start), timedelta(0)), error_kind)


def build_report(
    *,
    client_id: str,
    client_name: str,
    month: Month,
    timezone: str,
    now: datetime,
    hits: Sequence[ReportHit],
    previous_labels: Mapping[str | None, int],
    incidents: Sequence[IncidentFacts],
    source_incidents: Sequence[IncidentFacts],
    failing_now: Sequence[FailingSource],
    source_kinds: Mapping[str, str],
    failing_after: timedelta,
    audience: Sequence[Growth] = (),
    answers: Sequence[tuple[str, float, bool]] = (),
    unanswered: Sequence[tuple[str, bool]] = (),
    audience_days: Sequence[AudienceDay] = (),
    top: int = 5,
) -> MonthlyReport:
    tz = ZoneInfo(timezone)
    start, end = month.bounds(tz)
    labels = Counter(h.sentiment_label for h in hits)
    lines = incident_lines(incidents, hits)
    return MonthlyReport(
        client_id=client_id,
        client_name=client_name,
        month=month,
        timezone=timezone,
        generated_at=now,
        total=len(hits),
        previous_total=sum(previous_labels.values()),
        by_kind=by_kind(hits),
        by_week=by_week(hits, month, tz),
        sentiment=sentiment_shares(labels, previous_labels),
        unscored=labels.get(None, 0),
        top_engaged=top_engaged(hits, top),
        most_negative=most_negative(hits, top),
        top_authors=top_authors(hits, top * 2),
        top_terms=top_terms(hits, top * 2),
        incidents=lines,
        acks=ack_summary(lines, start, end),
        outages=outages(
            source_incidents, failing_now, source_kinds, start=start, end=end, now=now, failing_after=failing_after
        ),
        hits=tuple(hits),
        audience=tuple(audience),
        responses=response_lines(answers, unanswered),
        daily=daily_counts(hits, month, tz),
        audience_days=tuple(audience_days),
        unscored_langs=unscored_languages(hits),
    )
