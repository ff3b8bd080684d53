"""SQL behind the monthly report: one client's hits, sentiment counts, incidents and failing sources.

Read-only but for the record of reports sent (at the end). A hit belongs to the month in which veille
saw it (`fetched_at`, as `veille hits` filters): `published_at` comes from outside and can be years
off (a feed's old entries, a post dated 2099). Duplicates (`duplicate_of` set) are left out:
the same post seen through two sources counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from veille.core.incidents import Summary
from veille.core.models import Engagement
from veille.store.schema import engagement, hits, report_sends, sources
from veille.store.schema_alerts import incident_events, incidents


@dataclass(frozen=True, slots=True)
class ReportHit:
    id: int
    client_id: str
    source_key: str
    kind: str
    fetched_at: datetime
    published_at: datetime
    author: str | None
    author_name: str | None
    title: str
    text: str
    url: str | None
    matched_terms: str | None
    sentiment_label: str | None
    sentiment_score: float | None
    engagement: Engagement | None  # the latest observation, None if never observed
    sentiment_lang: str | None = None  # the post's language as the scorer found it (unscored ones: issue 16)


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    id: int
    cause: str
    subject: str
    title: str
    urgency: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    hit_count: int
    first_notified_at: datetime | None  # first "notify" event: when someone was told
    first_ack_at: datetime | None  # first "ack"/"snooze" event (acked_at is overwritten by re-acks)
    acked_by: str | None  # who did that first ack
    summary: Summary | None = None  # what the incident's posts were about (buzz and volume)


@dataclass(frozen=True, slots=True)
class FailingSource:
    key: str
    kind: str
    status: str
    failing_since: datetime
    last_error_kind: str | None
    consecutive_errors: int


def _own_hits(client_id: str, start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [
        hits.c.client_id == client_id,
        hits.c.fetched_at >= start,
        hits.c.fetched_at < end,
        hits.c.duplicate_of.is_(None),
        hits.c.from_client.is_(false()),  # the client's own answers: the reply inbox's, not the report's
    ]


def month_hits(conn: Connection, client_id: str, start: datetime, end: datetime) -> list[ReportHit]:
    """The client's hits seen in [start, end), oldest first, each with its latest engagement."""
    latest = (
        select(engagement.c.hit_id, func.max(engagement.c.id).label("eid"))
        .join(hits, hits.c.id == engagement.c.hit_id)
        .where(*_own_hits(client_id, start, end))
        .group_by(engagement.c.hit_id)
        .subquery()
    )
    query = (
        select(
            hits.c.id,
            hits.c.client_id,
            sources.c.key.label("source_key"),
            hits.c.kind,
            hits.c.fetched_at,
            hits.c.published_at,
            hits.c.author,
            hits.c.author_name,
            hits.c.title,
            hits.c.text,
            hits.c.url,
            hits.c.matched_terms,
            hits.c.sentiment_label,
            hits.c.sentiment_score,
            hits.c.sentiment_lang,
            engagement.c.id.label("eid"),
            engagement.c.likes,
            engagement.c.reposts,
            engagement.c.replies,
            engagement.c.score,
            engagement.c.views,
        )
        .join(sources, sources.c.id == hits.c.source_id)
        .outerjoin(latest, latest.c.hit_id == hits.c.id)
        .outerjoin(engagement, engagement.c.id == latest.c.eid)
        .where(*_own_hits(client_id, start, end))
        .order_by(hits.c.fetched_at, hits.c.id)
    )
    found = []
    for r in conn.execute(query):
        observed = Engagement(r.likes, r.reposts, r.replies, r.score, r.views) if r.eid is not None else None
        found.append(
            ReportHit(
                id=r.id,
                client_id=r.client_id,
                source_key=r.source_key,
                kind=r.kind,
                fetched_at=r.fetched_at,
                published_at=r.published_at,
                author=r.author,
                author_name=r.author_name,
                title=r.title or "",
                text=r.text or "",
                url=r.url,
                matched_terms=r.matched_terms,
                sentiment_label=r.sentiment_label,
                sentiment_score=r.sentiment_score,
                sentiment_lang=r.sentiment_lang,
                engagement=observed,
            )
        )
    return found


def label_counts(conn: Connection, client_id: str, start: datetime, end: datetime) -> dict[str | None, int]:
    """Hits per sentiment label in [start, end) (None: not scored); the previous month's comparison."""
    query = (
        select(hits.c.sentiment_label, func.count())
        .where(*_own_hits(client_id, start, end))
        .group_by(hits.c.sentiment_label)
    )
    return {label: int(count) for label, count in conn.execute(query)}


def month_incidents(
    conn: Connection, client_id: str, start: datetime, end: datetime, causes: Sequence[str]
) -> list[IncidentFacts]:
    """Incidents of these causes that were open at some point in [start, end), oldest first."""
    query = (
        select(incidents)
        .where(
            incidents.c.client_id == client_id,
            incidents.c.cause.in_(list(causes)),
            incidents.c.opened_at < end,
            or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at >= start),
        )
        .order_by(incidents.c.opened_at, incidents.c.id)
    )
    rows = list(conn.execute(query))
    ids = [r.id for r in rows]
    firsts: dict[tuple[int, str], tuple[datetime, str | None]] = {}
    if ids:
        events = (
            select(
                incident_events.c.incident_id, incident_events.c.kind, incident_events.c.at, incident_events.c.contact
            )
            .where(incident_events.c.incident_id.in_(ids), incident_events.c.kind.in_(("notify", "ack", "snooze")))
            .order_by(incident_events.c.at, incident_events.c.id)
        )
        for incident_id, kind, at, contact in conn.execute(events):
            key = (incident_id, "notify" if kind == "notify" else "ack")  # a snooze takes the incident too
            firsts.setdefault(key, (at, contact))
    facts = []
    for r in rows:
        notified = firsts.get((r.id, "notify"))
        acked = firsts.get((r.id, "ack")) or ((r.acked_at, r.acked_by) if r.acked_at else None)
        facts.append(
            IncidentFacts(
                id=r.id,
                cause=r.cause,
                subject=r.subject,
                title=r.title,
                urgency=r.urgency,
                status=r.status,
                opened_at=r.opened_at,
                resolved_at=r.resolved_at,
                hit_count=r.hit_count,
                first_notified_at=notified[0] if notified else None,
                first_ack_at=acked[0] if acked else None,
                acked_by=acked[1] if acked else None,
                summary=Summary.from_dict(r.summary),
            )
        )
    return facts


def failing_sources(conn: Connection, client_id: str) -> list[FailingSource]:
    """The client's configured, enabled sources failing right now (the table keeps only the current streak)."""
    query = (
        select(
            sources.c.key,
            sources.c.kind,
            sources.c.status,
            sources.c.failing_since,
            sources.c.last_error_kind,
            sources.c.consecutive_errors,
        )
        .where(
            sources.c.client_id == client_id,
            sources.c.failing_since.is_not(None),
            sources.c.enabled.is_(True),
            sources.c.in_config.is_(True),
        )
        .order_by(sources.c.key)
    )
    return [
        FailingSource(r.key, r.kind, r.status, r.failing_since, r.last_error_kind, r.consecutive_errors)
        for r in conn.execute(query)
    ]


# --- monthly reports sent through the outbox ([reports] send) ---------------------------------------------


def reports_sent(conn: Connection, month: str) -> set[tuple[str, str]]:
    """(client, contact) pairs whose report of `month` ("2026-11") is already in the outbox."""
    query = select(report_sends.c.client_id, report_sends.c.contact).where(report_sends.c.month == month)
    return {(client_id, contact) for client_id, contact in conn.execute(query)}


def claim_report_send(conn: Connection, *, client_id: str, month: str, contact: str, now: datetime) -> bool:
    """Record that this report goes out; False when another daemon (or an earlier run) already did.

    Called in the transaction that enqueues the report: the primary key makes it once. PostgreSQL waits
    for a concurrent claimer's commit and then skips; SQLite writers are serialised (`BEGIN IMMEDIATE`).
    """
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(report_sends)
        .values(client_id=client_id, month=month, contact=contact, created_at=now)
        .on_conflict_do_nothing(index_elements=["client_id", "month", "contact"])
        .returning(report_sends.c.client_id)  # a row back only when inserted (rowcount is not reliable here)
    )
    return conn.execute(statement).first() is not None


def set_report_outbox(conn: Connection, *, client_id: str, month: str, contact: str, outbox_id: int) -> None:
    conn.execute(
        update(report_sends)
        .where(report_sends.c.client_id == client_id, report_sends.c.month == month, report_sends.c.contact == contact)
        .values(outbox_id=outbox_id)
    )
