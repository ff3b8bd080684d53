"""Audience figures: one value per client account, metric and UTC day (followers, rating, rating count).

A driver reports what its API gives at most once a day; a second figure the same day replaces the first
(the latest is the day's figure). Growth over a period is the last figure minus the first one inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypedDict, cast

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from veille.store.schema import audience


@dataclass(frozen=True, slots=True)
class Figure:
    client_id: str
    source_key: str
    kind: str
    account: str
    metric: str
    value: float


class AudienceDay(TypedDict):
    """One stored figure: an account's metric on a UTC day."""

    id: int
    client_id: str
    source_key: str
    kind: str
    account: str
    metric: str  # followers, rating, rating_count
    day: date
    value: float
    observed_at: datetime


_DAY_COLUMNS = [audience.c[name] for name in AudienceDay.__annotations__]


@dataclass(frozen=True, slots=True)
class Growth:
    """How one metric of one account moved over a period."""

    client_id: str
    source_key: str
    kind: str
    account: str
    metric: str
    first_day: date
    first: float
    last_day: date
    last: float

    @property
    def change(self) -> float:
        return self.last - self.first


def record_figures(conn: Connection, figures: Sequence[Figure], now: datetime) -> None:
    """Upsert today's figure of each (account, metric)."""
    if not figures:
        return
    insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(audience)
    statement = insert.on_conflict_do_update(
        index_elements=[audience.c.source_key, audience.c.metric, audience.c.day],
        set_={"value": insert.excluded.value, "observed_at": insert.excluded.observed_at},
    )
    day = now.date()
    conn.execute(
        statement,
        [
            {
                "client_id": f.client_id,
                "source_key": f.source_key,
                "kind": f.kind,
                "account": f.account,
                "metric": f.metric,
                "day": day,
                "value": f.value,
                "observed_at": now,
            }
            for f in figures
        ],
    )


def series(conn: Connection, *, client_id: str | None = None, since: date | None = None) -> list[AudienceDay]:
    """Every figure, oldest first per account and metric."""
    statement = select(*_DAY_COLUMNS).order_by(
        audience.c.client_id, audience.c.source_key, audience.c.metric, audience.c.day
    )
    if client_id:
        statement = statement.where(audience.c.client_id == client_id)
    if since:
        statement = statement.where(audience.c.day >= since)
    # The rows have exactly AudienceDay's keys (selected by name above).
    return [cast(AudienceDay, dict(row._mapping)) for row in conn.execute(statement)]


def growth(conn: Connection, *, client_id: str | None = None, start: date, end: date) -> list[Growth]:
    """First and last figure of each account and metric with days in [start, end)."""
    found: dict[tuple[str, str], Growth] = {}
    statement = select(audience).where(audience.c.day >= start, audience.c.day < end).order_by(audience.c.day)
    if client_id:
        statement = statement.where(audience.c.client_id == client_id)
    for row in conn.execute(statement):
        key = (row.source_key, row.metric)
        before = found.get(key)
        first_day, first = (before.first_day, before.first) if before else (row.day, row.value)
        found[key] = Growth(
            row.client_id, row.source_key, row.kind, row.account, row.metric, first_day, first, row.day, row.value
        )
    return sorted(found.values(), key=lambda g: (g.client_id, g.kind, g.account, g.metric))


def highest_since(conn: Connection, source_key: str, metric: str, since: date) -> float | None:
    """The highest figure of a metric since a day (what a fall is measured from)."""
    return conn.execute(
        select(func.max(audience.c.value)).where(
            audience.c.source_key == source_key, audience.c.metric == metric, audience.c.day >= since
        )
    ).scalar()
