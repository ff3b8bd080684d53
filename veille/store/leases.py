"""Source leases in SQL: which daemon polls which source (G7).

A source is held by `sources.lease_owner` until `sources.lease_until`. Leases are renewed and
claimed in bulk (a few statements every lease/3, never one per poll: on SQLite each write costs an
fsync). A claim only takes rows that are free, expired, or held by an owner known to be dead, and on
PostgreSQL it skips rows another daemon is claiming at that moment (FOR UPDATE SKIP LOCKED): two
daemons never take the same source, and never wait on each other's locks (no deadlock).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, delete, or_, select, update

from veille.store.alerts import is_pg
from veille.store.hits import _insert
from veille.store.schema import daemons, sources


@dataclass(frozen=True, slots=True)
class DaemonRow:
    """A daemon sharing the sources, as its last renewal left it."""

    owner: str
    host: str
    pid: int
    version: str
    capacity: float
    started_at: datetime
    renewed_at: datetime
    held: int
    units_hash: str


def heartbeat(
    conn: Connection,
    owner: str,
    *,
    host: str,
    pid: int,
    version: str,
    capacity: float,
    now: datetime,
    held: int,
    units_hash: str,
) -> None:
    """Say this daemon is alive (with each lease renewal): the others count it when they share the sources."""
    values = {
        "host": host,
        "pid": pid,
        "version": version,
        "capacity": capacity,
        "renewed_at": now,
        "held": held,
        "units_hash": units_hash,
    }
    statement = _insert(conn, daemons).values(owner=owner, started_at=now, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=[daemons.c.owner], set_=values))


def live_daemons(conn: Connection, now: datetime, lease: timedelta) -> list[DaemonRow]:
    """Daemons that renewed within a lease, oldest first."""
    query = select(daemons).where(daemons.c.renewed_at > now - lease).order_by(daemons.c.started_at, daemons.c.owner)
    return [DaemonRow(**row._mapping) for row in conn.execute(query)]


def all_daemons(conn: Connection) -> list[DaemonRow]:
    query = select(daemons).order_by(daemons.c.started_at, daemons.c.owner)
    return [DaemonRow(**row._mapping) for row in conn.execute(query)]


def forget_daemon(conn: Connection, owner: str) -> None:
    """A clean stop: the others stop counting this daemon at once."""
    conn.execute(delete(daemons).where(daemons.c.owner == owner))


def forget_daemons(conn: Connection, owners: Collection[str]) -> None:
    """Daemons known to be dead (processes of this host that are gone): no longer listed or counted."""
    if owners:
        conn.execute(delete(daemons).where(daemons.c.owner.in_(list(owners))))


def forget_stale_daemons(conn: Connection, now: datetime, keep: timedelta) -> int:
    """Rows of daemons silent for longer than `keep` (killed long ago): gone from `veille daemons`."""
    return int(conn.execute(delete(daemons).where(daemons.c.renewed_at <= now - keep)).rowcount or 0)


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
    conn: Connection,
    owner: str,
    ids: Collection[int],
    now: datetime,
    lease: timedelta,
    *,
    dead: Collection[str] = (),
    limit: int | None = None,
) -> set[int]:
    """Take the free or expired leases among `ids` (and those of `dead` owners); the ids taken.

    With `limit`, at most that many, the first free ones in the order of `ids` (its share)."""
    if not ids or (limit is not None and limit <= 0):
        return set()
    if limit is not None:
        ids = _first_free(conn, ids, now, dead, limit)
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


def _first_free(conn: Connection, ids: Collection[int], now: datetime, dead: Collection[str], limit: int) -> list[int]:
    """The first `limit` takeable ids in the caller's order (on PostgreSQL, rows another claim locks are skipped)."""
    query = select(sources.c.id).where(sources.c.id.in_(list(ids)), _free(now, dead))
    if is_pg(conn):
        query = query.with_for_update(skip_locked=True)
    free = {source_id for (source_id,) in conn.execute(query)}
    return [source_id for source_id in ids if source_id in free][:limit]


def release_some(conn: Connection, owner: str, ids: Collection[int]) -> set[int]:
    """Give back some of `owner`'s leases (beyond its share): another daemon claims them at its next renewal."""
    if not ids:
        return set()
    statement = (
        update(sources)
        .where(sources.c.lease_owner == owner, sources.c.id.in_(list(ids)))
        .values(lease_owner=None, lease_until=None)
        .returning(sources.c.id)
    )
    return {source_id for (source_id,) in conn.execute(statement)}


def mark_followers(conn: Connection, owner: str, ids: Sequence[int], now: datetime, lease: timedelta) -> None:
    """Sources that follow a held leader (the other sources of a stream group) show the leader's holder."""
    if ids:
        conn.execute(
            update(sources).where(sources.c.id.in_(list(ids))).values(lease_owner=owner, lease_until=now + lease)
        )


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
