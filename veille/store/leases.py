"""Source leases in SQL: which daemon polls which source (G7).

A source is held by `sources.lease_owner` until `sources.lease_until`. Leases are renewed and
claimed in bulk (a few statements every lease/3, never one per poll: on SQLite each write costs an
fsync). A claim only takes rows that are free, expired, or held by an owner known to be dead, and on
PostgreSQL it skips rows another daemon is claiming at that moment (FOR UPDATE SKIP LOCKED): two
daemons never take the same source, and never wait on each other's locks (no deadlock).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, or_, select, update

from veille.store.alerts import is_pg
from veille.store.schema import sources


def limit_idle(conn: Connection, lease: timedelta) -> None:
    """PostgreSQL: end this session if its process freezes inside the lease transaction for a lease.

    Its row locks would otherwise last as long as the freeze, and the other daemons' claims skip
    locked rows: the frozen daemon's sources would never be taken over."""
    if is_pg(conn):
        conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {int(lease.total_seconds() * 1000)}")


def live_owners(conn: Connection, now: datetime) -> set[str]:
    """Owners holding at least one unexpired lease (to find dead ones among them)."""
    query = select(sources.c.lease_owner).where(sources.c.lease_until > now).distinct()
    return {owner for (owner,) in conn.execute(query) if owner is not None}


def renew(conn: Connection, owner: str, ids: Collection[int], now: datetime, lease: timedelta) -> set[int]:
    """Extend the leases `owner` still holds among `ids`; the ids it holds.

    An expired lease nobody took is still the owner's (nobody polled the source meanwhile, so its
    in-memory state is current); one another daemon took is lost."""
    if not ids:
        return set()
    statement = (
        update(sources)
        .where(sources.c.lease_owner == owner, sources.c.id.in_(list(ids)))
        .values(lease_until=now + lease)
        .returning(sources.c.id)
    )
    return {source_id for (source_id,) in conn.execute(statement)}


def claim(
    conn: Connection, owner: str, ids: Collection[int], now: datetime, lease: timedelta, *, dead: Collection[str] = ()
) -> set[int]:
    """Take the free or expired leases among `ids` (and those of `dead` owners); the ids taken."""
    if not ids:
        return set()
    takeable = and_(sources.c.id.in_(list(ids)), _free(now, dead))
    if is_pg(conn):
        # Rows another daemon's claim has locked are skipped, not waited for: it is taking them.
        locked = select(sources.c.id).where(takeable).with_for_update(skip_locked=True)
        takeable = and_(sources.c.id.in_(locked.scalar_subquery()), _free(now, dead))
    statement = (
        update(sources).where(takeable).values(lease_owner=owner, lease_until=now + lease).returning(sources.c.id)
    )
    return {source_id for (source_id,) in conn.execute(statement)}


def release(conn: Connection, owner: str) -> int:
    """Give every lease of `owner` back (a clean stop: the other daemon takes over at its next renewal)."""
    statement = update(sources).where(sources.c.lease_owner == owner).values(lease_owner=None, lease_until=None)
    return int(conn.execute(statement).rowcount or 0)


def held_elsewhere(
    conn: Connection, owner: str, ids: Collection[int], now: datetime, *, dead: Collection[str] = ()
) -> dict[int, str]:
    """Among `ids`, the sources another live process holds: id -> its owner (`veille run --once` skips them)."""
    if not ids:
        return {}
    query = select(sources.c.id, sources.c.lease_owner).where(
        sources.c.id.in_(list(ids)), sources.c.lease_owner != owner, ~_free(now, dead)
    )
    return {source_id: holder for source_id, holder in conn.execute(query)}


def _free(now: datetime, dead: Collection[str]) -> ColumnElement[bool]:
    conditions = [sources.c.lease_owner.is_(None), sources.c.lease_until.is_(None), sources.c.lease_until <= now]
    if dead:
        conditions.append(sources.c.lease_owner.in_(list(dead)))
    return or_(*conditions)
