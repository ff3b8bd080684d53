"""Read queries of the web dashboard: a client's activity against its usual level, per-hour counts,
top authors and terms, open incidents and failing sources per client. Copies of one post reached
through another source (`duplicate_of`) are never counted twice. Read-only: no write lock taken."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, literal_column, select

from veille.core.incidents import Status, Urgency
from veille.store.hits import original_only
from veille.store.schema import hits, sources
from veille.store.schema_alerts import incidents


@dataclass(frozen=True, slots=True)
class Activity:
    today: int = 0
    week: int = 0  # the last 7 days
    week_negative: int = 0
    week_scored: int = 0
    before: int = 0  # the 28 days before the last 7: the usual level

    @property
    def usual_day(self) -> float:
        return self.before / 28

    @property
    def usual_week(self) -> float:
        return self.before / 4

    @property
    def negative_share(self) -> float | None:
        return self.week_negative / self.week_scored if self.week_scored else None

    def __add__(self, other: Activity) -> Activity:
        return Activity(
            self.today + other.today,
            self.week + other.week,
            self.week_negative + other.week_negative,
            self.week_scored + other.week_scored,
            self.before + other.before,
        )


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def activity(
    conn: Connection,
    client_ids: Sequence[str],
    *,
    day_start: datetime,
    week_start: datetime,
    since: datetime,
    until: datetime | None = None,
) -> dict[str, Activity]:
    """Per client, among the hits fetched in [since, until): those since `day_start`, since `week_start`
    (and the negative and scored ones), and those before `week_start` (the usual level)."""
    if not client_ids:
        return {}
    fetched = hits.c.fetched_at
    query = (
        select(
            hits.c.client_id,
            _count_if(fetched >= day_start),
            _count_if(fetched >= week_start),
            _count_if((fetched >= week_start) & (hits.c.sentiment_label == "neg")),
            _count_if((fetched >= week_start) & hits.c.sentiment_label.is_not(None)),
            _count_if(fetched < week_start),
        )
        .where(hits.c.client_id.in_(list(client_ids)), fetched >= since, original_only())
        .group_by(hits.c.client_id)
    )
    if until is not None:
        query = query.where(fetched < until)
    return {row[0]: Activity(*(int(value or 0) for value in row[1:])) for row in conn.execute(query)}


def open_incidents(conn: Connection, client_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per client: (unresolved incidents, of which high urgency)."""
    if not client_ids:
        return {}
    query = (
        select(incidents.c.client_id, func.count(), _count_if(incidents.c.urgency == Urgency.HIGH.value))
        .where(incidents.c.client_id.in_(list(client_ids)), incidents.c.status != Status.RESOLVED.value)
        .group_by(incidents.c.client_id)
    )
    return {row[0]: (int(row[1]), int(row[2] or 0)) for row in conn.execute(query)}


def failing_counts(conn: Connection, client_ids: Sequence[str]) -> dict[str, int]:
    """Per client: configured sources currently failing."""
    if not client_ids:
        return {}
    query = (
        select(sources.c.client_id, func.count())
        .where(
            sources.c.client_id.in_(list(client_ids)),
            sources.c.failing_since.is_not(None),
            sources.c.in_config.is_(True),
        )
        .group_by(sources.c.client_id)
    )
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def _hour_bucket(conn: Connection) -> ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", hits.c.fetched_at), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", hits.c.fetched_at)


def hourly_counts(conn: Connection, client_id: str, since: datetime) -> list[tuple[datetime, int, int]]:
    """(UTC hour, hits, negative hits) for every hour since `since` that has hits, oldest first."""
    bucket = _hour_bucket(conn).label("bucket")
    query = (
        select(bucket, func.count(), _count_if(hits.c.sentiment_label == "neg"))
        .where(hits.c.client_id == client_id, hits.c.fetched_at >= since, original_only())
        .group_by(literal_column("bucket"))
        .order_by(literal_column("bucket"))
    )
    return [(_hour(row[0]), int(row[1]), int(row[2] or 0)) for row in conn.execute(query)]


def hourly_by_client(
    conn: Connection, client_ids: Sequence[str], since: datetime, until: datetime
) -> list[tuple[str, datetime, int, int, int]]:
    """(client, UTC hour, hits, negative hits, scored hits) for every hour in [since, until) with hits."""
    if not client_ids:
        return []
    bucket = _hour_bucket(conn).label("bucket")
    query = (
        select(
            hits.c.client_id,
            bucket,
            func.count(),
            _count_if(hits.c.sentiment_label == "neg"),
            _count_if(hits.c.sentiment_label.is_not(None)),
        )
        .where(
            hits.c.client_id.in_(list(client_ids)),
            hits.c.fetched_at >= since,
            hits.c.fetched_at < until,
            original_only(),
        )
        .group_by(hits.c.client_id, literal_column("bucket"))
    )
    return [(row[0], _hour(row[1]), int(row[2]), int(row[3] or 0), int(row[4] or 0)) for row in conn.execute(query)]


def _hour(bucket: str) -> datetime:
    return datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC)


def top_authors(conn: Connection, client_id: str, since: datetime, limit: int) -> list[tuple[str, str, int, int]]:
    """(author, source kind, hits, negative hits), most active first."""
    count = func.count().label("n")
    query = (
        select(hits.c.author, hits.c.kind, count, _count_if(hits.c.sentiment_label == "neg"))
        .where(
            hits.c.client_id == client_id,
            hits.c.fetched_at >= since,
            original_only(),
            hits.c.author.is_not(None),
            hits.c.author != "",
        )
        .group_by(hits.c.author, hits.c.kind)
        .order_by(count.desc(), hits.c.author)
        .limit(limit)
    )
    return [(row[0], row[1], int(row[2]), int(row[3] or 0)) for row in conn.execute(query)]


def term_groups(conn: Connection, client_id: str, since: datetime) -> list[tuple[str, int, int]]:
    """(matched_terms as stored, hits, negative hits): the caller splits and adds the terms up."""
    query = (
        select(hits.c.matched_terms, func.count(), _count_if(hits.c.sentiment_label == "neg"))
        .where(
            hits.c.client_id == client_id,
            hits.c.fetched_at >= since,
            original_only(),
            hits.c.matched_terms.is_not(None),
        )
        .group_by(hits.c.matched_terms)
    )
    return [(row[0], int(row[1]), int(row[2] or 0)) for row in conn.execute(query)]


UNSCORED_LANGUAGE = "unscored"  # label_counts' key for hits in a language the scorer does not read


def label_counts(conn: Connection, client_id: str, since: datetime) -> dict[str | None, int]:
    """Hits per sentiment label since `since`: None for those not scored yet (the scorer will come back to
    them), UNSCORED_LANGUAGE for those in a language it does not read (it never will)."""
    label = case(
        (hits.c.sentiment_label.is_(None) & hits.c.scored_at.is_not(None), literal_column(f"'{UNSCORED_LANGUAGE}'")),
        else_=hits.c.sentiment_label,
    )
    query = (
        select(label, func.count())
        .where(hits.c.client_id == client_id, hits.c.fetched_at >= since, original_only())
        .group_by(label)
    )
    return {label: int(count) for label, count in conn.execute(query)}


def source_keys(conn: Connection, client_id: str) -> list[str]:
    """The client's configured source keys (the client page's source filter)."""
    query = (
        select(sources.c.key)
        .where(sources.c.client_id == client_id, sources.c.in_config.is_(True))
        .order_by(sources.c.key)
    )
    return [row[0] for row in conn.execute(query)]
