"""A client's stored history as `veille replay` reads it: its posts and every engagement observation.

Posts that alerting never sees are left out, as the daemon left them out: copies of a post reached through
another source (`duplicate_of`) and the client's own answers (`from_client`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Connection, select

from veille.store.schema import engagement, hits

PAGE = 1000  # hits per engagement query


@dataclass(frozen=True, slots=True)
class HistoryHit:
    id: int
    kind: str
    external_id: str
    url: str | None
    title: str
    text: str
    author: str | None
    author_followers: int | None
    direct: bool
    published_at: datetime
    fetched_at: datetime  # when the daemon first had it: when alerting saw it


@dataclass(frozen=True, slots=True)
class Observation:
    hit_id: int
    observed_at: datetime
    likes: int | None
    reposts: int | None
    replies: int | None


_HIT_COLUMNS = [hits.c[f.name] for f in fields(HistoryHit)]
_OBSERVATION_COLUMNS = [engagement.c[f.name] for f in fields(Observation)]


def client_history(
    conn: Connection, client_id: str, since: datetime, until: datetime | None = None
) -> Iterator[tuple[HistoryHit, list[Observation]]]:
    """The client's posts first fetched in [since, until), oldest first, each with its engagement observations
    in the order they were made (read a page at a time: a month of a busy client is large)."""
    query = select(*_HIT_COLUMNS).where(
        hits.c.client_id == client_id,
        hits.c.fetched_at >= since,
        hits.c.duplicate_of.is_(None),
        hits.c.from_client.is_(False),
    )
    if until is not None:
        query = query.where(hits.c.fetched_at < until)
    rows = [HistoryHit(*row) for row in conn.execute(query.order_by(hits.c.fetched_at, hits.c.id))]
    for start in range(0, len(rows), PAGE):
        page = rows[start : start + PAGE]
        observed: dict[int, list[Observation]] = {}
        found = conn.execute(
            select(*_OBSERVATION_COLUMNS)
            .where(engagement.c.hit_id.in_([h.id for h in page]))
            .order_by(engagement.c.observed_at, engagement.c.id)
        )
        for row in found:
            observed.setdefault(row.hit_id, []).append(Observation(*row))
        for hit in page:
            yield hit, observed.get(hit.id, [])
