"""Deleting old hits in small transactions (G10).

Each batch of at most `BATCH` hits is its own short write transaction, so the pipeline's writer
waits at most one batch for the lock and readers (WAL on SQLite, MVCC on PostgreSQL) are never
blocked. A batch removes the hits' dependants first (engagement observations, the alerting
work's per-hit rows, `duplicate_of` links from kept hits) and lowers the sources' hit counters.

What is never purged, and why:
* hits with a sentiment label: people's corrections are the training set of `veille sentiment
  train` (`veille.store.labels`), made on purpose and small; a retention policy should not
  silently shrink it;
* the evidence of an unresolved incident (its `top_hits`, and its client's hits from an hour
  before it opened, what `veille hits --incident` lists): someone may still be handling it.
Age is judged by `fetched_at` (when veille stored the hit), not `published_at`, which a feed
may set to anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, exists, func, not_, select, update

from veille.core.incidents import Status
from veille.store.alerts import INCIDENT_LEAD
from veille.store.engine import read_conn, write_tx
from veille.store.schema import engagement, hits, labels, sources
from veille.store.schema_alerts import alert_hits, incidents

BATCH = 1000  # hits per transaction (G10: <= 1,000)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    hits: int  # deleted, or that would be with dry_run
    batches: int  # write transactions committed (0 with dry_run)


def purge_hits(
    engine: Engine,
    before: datetime,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    on_batch: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> PurgeReport:
    """Delete purgeable hits fetched before `before`, `batch` per transaction; `on_batch(n, deleted)`
    runs after each commit (progress; tests read the database there). `cancelled()` is checked
    between batches, so a daemon stopping does not wait for a long purge."""
    if dry_run:
        with read_conn(engine) as conn:
            condition = _purgeable(conn, before)
            count = conn.execute(select(func.count()).select_from(hits).where(condition)).scalar_one()
        return PurgeReport(hits=int(count), batches=0)
    total = batches = 0
    while True:
        with write_tx(engine) as conn:
            deleted = _purge_batch(conn, before, batch)
        batches += 1
        total += deleted
        if on_batch is not None:
            on_batch(batches, deleted)
        if deleted < batch or (cancelled is not None and cancelled()):
            return PurgeReport(hits=total, batches=batches)


def _purge_batch(conn: Connection, before: datetime, limit: int) -> int:
    ids = [
        int(i)
        for i in conn.execute(
            select(hits.c.id).where(_purgeable(conn, before)).order_by(hits.c.id).limit(limit)
        ).scalars()
    ]
    if not ids:
        return 0
    per_source = conn.execute(
        select(hits.c.source_id, func.count()).where(hits.c.id.in_(ids)).group_by(hits.c.source_id)
    ).all()
    conn.execute(delete(engagement).where(engagement.c.hit_id.in_(ids)))
    conn.execute(delete(alert_hits).where(alert_hits.c.hit_id.in_(ids)))
    conn.execute(update(hits).where(hits.c.duplicate_of.in_(ids)).values(duplicate_of=None))
    conn.execute(delete(hits).where(hits.c.id.in_(ids)))
    for source_id, count in per_source:
        conn.execute(update(sources).where(sources.c.id == source_id).values(hits_count=sources.c.hits_count - count))
    return len(ids)


def _purgeable(conn: Connection, before: datetime) -> ColumnElement[bool]:
    """Old enough, not labelled, not the evidence of an unresolved incident."""
    open_rows = conn.execute(
        select(incidents.c.client_id, incidents.c.opened_at, incidents.c.top_hits).where(
            incidents.c.status != Status.RESOLVED.value
        )
    ).all()
    condition = and_(hits.c.fetched_at < before, not_(exists().where(labels.c.hit_id == hits.c.id)))
    evidence = {int(i) for row in open_rows for i in (row.top_hits or ())}
    if evidence:
        condition = and_(condition, hits.c.id.not_in(sorted(evidence)))
    floors: dict[str, datetime] = {}
    for row in open_rows:
        floor = row.opened_at - INCIDENT_LEAD
        floors[row.client_id] = min(floors.get(row.client_id, floor), floor)
    for client_id, floor in floors.items():
        condition = and_(condition, not_(and_(hits.c.client_id == client_id, hits.c.fetched_at >= floor)))
    return condition
