"""Clients, sources and their poll state.

Poll state (ETag, Last-Modified, cursor, content hash) is advanced only in the transaction that
stores the hits it produced, so a crash or a failed commit re-fetches rather than skips.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypedDict, cast

from sqlalchemy import Connection, bindparam, func, select, update

from veille.core.models import ErrorKind, SourceStatus
from veille.core.polling import PollOutcome, PollState
from veille.store.hits import SourceRef, _insert
from veille.store.schema import clients, hits, sources


@dataclass(frozen=True, slots=True)
class SourceRow:
    ref: SourceRef
    state: PollState
    status: SourceStatus
    consecutive_errors: int
    next_poll_at: datetime | None
    failing_since: datetime | None
    failing_notice_at: datetime | None
    last_polled_at: datetime | None = None


class SourceListing(TypedDict):
    """A row of the `sources` table, as `veille sources`, the dashboard and the monthly report list it."""

    id: int
    key: str  # "<client>/<source id>"
    client_id: str
    kind: str
    target: str
    every_seconds: int
    enabled: bool
    in_config: bool  # false: removed from the config, kept for its history
    etag: str | None
    last_modified: str | None
    cursor: str | None
    content_hash: str | None
    status: str
    last_polled_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None
    consecutive_errors: int
    last_error_kind: str | None
    last_error_message: str | None
    next_poll_at: datetime | None
    note: str | None
    failing_notice_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    hits_count: int


_LISTING_COLUMNS = [sources.c[name] for name in SourceListing.__annotations__]


class ConfiguredClient(Protocol):
    """A client as the config declares it (the store needs only these fields)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class ConfiguredSource(Protocol):
    """A source as the config declares it."""

    @property
    def key(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def every(self) -> timedelta: ...
    @property
    def enabled(self) -> bool: ...


def sync_config(
    conn: Connection,
    clients_in_config: Sequence[ConfiguredClient],
    sources_in_config: Sequence[ConfiguredSource],
    now: datetime,
) -> dict[str, SourceRef]:
    """Upsert clients and sources from the config; keep removed ones (history) but disable them.

    Rows the config does not change are not written: every `veille run --once` (cron) starts here, and
    one upsert per source was a good part of its start with a thousand feeds."""
    names = {client_id: name for client_id, name in conn.execute(select(clients.c.id, clients.c.name))}
    changed_clients = [c for c in clients_in_config if names.get(c.id) != c.name]
    if changed_clients:
        statement = _insert(conn, clients).values(
            id=bindparam("c_id"), name=bindparam("c_name"), updated_at=bindparam("c_now")
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[clients.c.id], set_={"name": statement.excluded.name, "updated_at": now}
            ),
            [{"c_id": c.id, "c_name": c.name, "c_now": now} for c in changed_clients],
        )
    stored = {row.key: tuple(row[1:]) for row in conn.execute(select(sources.c.key, *_SYNCED))}
    wanted = {s.key: s for s in sources_in_config}
    upserts = []
    for source in sources_in_config:
        values = {
            "client_id": source.client_id,
            "kind": source.kind,
            "target": source.target,
            "every_seconds": int(source.every.total_seconds()),
            "enabled": source.enabled,
            "in_config": True,
        }
        if stored.get(source.key) != tuple(values.values()):
            upserts.append({"s_key": source.key, **{f"s_{name}": value for name, value in values.items()}})
    if upserts:
        statement = _insert(conn, sources).values(
            key=bindparam("s_key"),
            status=SourceStatus.NEW.value,
            consecutive_errors=0,
            hits_count=0,
            **{column.name: bindparam(f"s_{column.name}") for column in _SYNCED},
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[sources.c.key], set_={c.name: statement.excluded[c.name] for c in _SYNCED}
            ),
            upserts,
        )
    removed = [key for key, row in stored.items() if row[-1] and key not in wanted]  # in_config, no longer
    if removed:
        conn.execute(update(sources).where(sources.c.key.in_(removed)).values(in_config=False, enabled=False))
    rows = conn.execute(
        select(sources.c.id, sources.c.key, sources.c.client_id, sources.c.kind).where(sources.c.key.in_(list(wanted)))
    )
    return {r.key: SourceRef(r.id, r.key, r.client_id, r.kind) for r in rows}


# The columns the config decides, in the order sync_config compares them (in_config last).
_SYNCED = (
    sources.c.client_id,
    sources.c.kind,
    sources.c.target,
    sources.c.every_seconds,
    sources.c.enabled,
    sources.c.in_config,
)


def load_source(conn: Connection, source_id: int) -> SourceRow:
    return _source_row(conn.execute(select(sources).where(sources.c.id == source_id)).one())


def load_sources(conn: Connection, source_ids: Collection[int]) -> dict[int, SourceRow]:
    """Many sources' poll state in one query (a daemon taking over another's sources, G7)."""
    if not source_ids:
        return {}
    rows = conn.execute(select(sources).where(sources.c.id.in_(list(source_ids))))
    return {r.id: _source_row(r) for r in rows}


def _source_row(r: Any) -> SourceRow:
    return SourceRow(
        ref=SourceRef(r.id, r.key, r.client_id, r.kind),
        state=PollState(r.etag, r.last_modified, r.cursor, r.content_hash),
        status=SourceStatus(r.status),
        consecutive_errors=r.consecutive_errors,
        next_poll_at=r.next_poll_at,
        failing_since=r.failing_since,
        failing_notice_at=r.failing_notice_at,
        last_polled_at=r.last_polled_at,
    )


@dataclass(frozen=True, slots=True)
class Success:
    """A successful poll to record: its outcome, the state it started from, when to poll next."""

    source_id: int
    outcome: PollOutcome
    state: PollState
    next_poll_at: datetime | None


_BY_ID = update(sources).where(sources.c.id == bindparam("_source_id"))  # SET: the keys of the parameters


def _by_id(owner: str | None) -> Any:
    """The UPDATE of one source's poll state; with `owner`, only while it holds the source's lease (G7):
    a daemon that lost it mid-poll (frozen past its lease) must not overwrite the new holder's state."""
    return _BY_ID if owner is None else _BY_ID.where(sources.c.lease_owner == owner)


def record_successes(
    conn: Connection, successes: Sequence[Success], now: datetime, *, owner: str | None = None
) -> None:
    """Advance the poll state of many sources: one UPDATE per set of changed columns (a handful per batch)."""
    rounds: list[dict[tuple[str, ...], list[dict[str, Any]]]] = []
    in_round: set[int] = set()
    for success in successes:
        if not rounds or success.source_id in in_round:  # a source twice: its later poll is applied last
            rounds.append({})
            in_round = set()
        in_round.add(success.source_id)
        values = _success_values(success, now)
        rounds[-1].setdefault(tuple(values), []).append(values)
    statement = _by_id(owner)
    for shapes in rounds:
        for params in shapes.values():
            conn.execute(statement, params)


def _success_values(success: Success, now: datetime) -> dict[str, Any]:
    outcome, state = success.outcome, success.state
    values: dict[str, Any] = {
        "_source_id": success.source_id,
        "status": SourceStatus.OK.value,
        "last_polled_at": now,
        "last_success_at": now,
        "consecutive_errors": 0,
        "failing_since": None,
        "failing_notice_at": None,
        "last_error_kind": None,
        "last_error_message": None,
        "next_poll_at": success.next_poll_at,
        "note": outcome.note,
    }
    if not outcome.not_modified or outcome.etag or outcome.last_modified:
        values["etag"] = outcome.etag if not outcome.not_modified else (outcome.etag or state.etag)
        values["last_modified"] = (
            outcome.last_modified if not outcome.not_modified else (outcome.last_modified or state.last_modified)
        )
    if outcome.cursor is not None:
        values["cursor"] = outcome.cursor
    if outcome.content_hash is not None:
        values["content_hash"] = outcome.content_hash
    return values


def record_failure(
    conn: Connection,
    source_id: int,
    *,
    kind: ErrorKind,
    message: str,
    status: SourceStatus,
    consecutive_errors: int,
    failing_since: datetime,
    now: datetime,
    next_poll_at: datetime,
    owner: str | None = None,
) -> None:
    statement = update(sources).where(sources.c.id == source_id)
    if owner is not None:  # see _by_id
        statement = statement.where(sources.c.lease_owner == owner)
    conn.execute(
        statement.values(
            status=status.value,
            last_polled_at=now,
            consecutive_errors=consecutive_errors,
            failing_since=failing_since,
            last_error_kind=kind.value,
            last_error_message=message[:500],
            next_poll_at=next_poll_at,
        )
    )


def mark_failing_notice(conn: Connection, source_id: int, now: datetime) -> None:
    conn.execute(update(sources).where(sources.c.id == source_id).values(failing_notice_at=now))


def list_sources(
    conn: Connection,
    *,
    client_id: str | None = None,
    broken: bool = False,
    include_removed: bool = False,
    client_ids: Collection[str] | None = None,
) -> list[SourceListing]:
    statement = select(*_LISTING_COLUMNS).order_by(sources.c.client_id, sources.c.key)
    if client_ids is not None:
        statement = statement.where(sources.c.client_id.in_(list(client_ids)))
    if client_id:
        statement = statement.where(sources.c.client_id == client_id)
    if broken:
        statement = statement.where(sources.c.consecutive_errors > 0)
    if not include_removed:
        statement = statement.where(sources.c.in_config.is_(True))
    # The rows have exactly SourceListing's keys (selected by name above).
    return [cast(SourceListing, dict(r._mapping)) for r in conn.execute(statement)]


def client_ids(conn: Connection) -> set[str]:
    return {r for (r,) in conn.execute(select(clients.c.id))}


def count_hits(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(hits)).scalar_one())
