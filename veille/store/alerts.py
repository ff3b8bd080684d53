"""SQL of the alerting work: incidents, events, mutes, per-hit risk, source health, outbox.

Every function takes a Connection already inside a transaction (the caller chose `write_tx` or
`read_conn`); nothing here commits. On PostgreSQL, rows that two daemons may race for are read
`FOR UPDATE` (incidents) or `FOR UPDATE SKIP LOCKED` (outbox claims).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, exists, func, insert, or_, select, text, update

from veille.core.incidents import Cause, Incident, Status, Summary, Urgency
from veille.store import bulk
from veille.store.schema import outbox
from veille.store.schema_alerts import alert_hits, alert_kv, alert_sources, incident_events, incidents, mutes


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One line of an incident's (or a client's) history: opened, ack, snooze, mute, held..."""

    id: int
    incident_id: int | None
    client_id: str | None
    at: datetime
    kind: str
    contact: str | None
    actor: str | None  # who did it: a contact id, "cli", "bot:<user>"
    detail: dict[str, Any] | None  # JSON


@dataclass(frozen=True, slots=True)
class AlertHit:
    """What alerting keeps of a hit: its risk and the engagement it had when first and last seen."""

    hit_id: int
    client_id: str
    seen_at: datetime
    active_at: datetime  # last time it grew: a spreading post stays hot
    published_at: datetime | None
    source_kind: str
    author: str | None
    author_followers: int | None
    text_key: str  # normalised text hash: spam collapses to one
    snippet: str
    url: str | None
    sentiment: str | None  # "neg -0.82"
    negative: bool
    risk: float
    reasons: list[str]
    first_total: int
    first_at: datetime
    total: int
    total_at: datetime
    engagement: str
    velocity: float


@dataclass(frozen=True, slots=True)
class RecentHit:
    """The part of an `AlertHit` that detection reads for a client's window."""

    hit_id: int
    seen_at: datetime
    active_at: datetime
    author: str | None
    text_key: str
    negative: bool
    risk: float
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source's last known health as alerting saw it."""

    source_key: str
    client_id: str
    ok: bool
    error_kind: str | None
    failing_since: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: a message to one contact, its state and its attempts."""

    id: int
    incident_id: int | None
    client_id: str | None
    contact: str
    channel: str
    address: str
    kind: str
    urgency: str
    silent: bool
    payload: dict[str, Any]  # JSON
    state: str  # pending | sending | sent | dead | cancelled
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    attempt_token: str | None
    last_error: str | None
    sent_at: datetime | None
    message_ids: str | None
    possible_duplicate: bool


# The columns each record is read from, in its fields' order.
_EVENT_COLUMNS = [incident_events.c[f.name] for f in fields(IncidentEvent)]
_ALERT_HIT_COLUMNS = [alert_hits.c[f.name] for f in fields(AlertHit)]
_RECENT_HIT_COLUMNS = [alert_hits.c[f.name] for f in fields(RecentHit)]
_SOURCE_HEALTH_COLUMNS = [alert_sources.c[f.name] for f in fields(SourceHealth)]
_DELIVERY_COLUMNS = [outbox.c[f.name] for f in fields(Delivery)]

# An incident's hits are its client's from this long before it opened (`veille hits --incident`);
# retention keeps them while the incident is unresolved.
INCIDENT_LEAD = timedelta(hours=1)


def is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def client_lock_key(client_id: str) -> int:
    """The PostgreSQL advisory lock that serialises a client's alerting across daemons."""
    return zlib.crc32(f"veille-alerting:{client_id}".encode())


# The function scan yields the array's elements in order, so the locks are taken in the clients' order.
_LOCK_CLIENTS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS t(k)")


def lock_clients(conn: Connection, client_ids: Iterable[str]) -> None:
    """PostgreSQL: serialise alerting per client across daemons (sorted: no deadlock). One statement for all
    (a burst's transaction locked 50 clients in 50 round trips)."""
    if not is_pg(conn):
        return  # SQLite's BEGIN IMMEDIATE already serialises writers
    keys = [client_lock_key(client_id) for client_id in sorted(set(client_ids))]
    if keys:
        conn.execute(_LOCK_CLIENTS, {"keys": keys}).all()


# --- incidents -------------------------------------------------------------------------------


def _to_incident(row: Any) -> Incident:
    return Incident(
        id=row.id,
        key=row.key,
        client_id=row.client_id,
        cause=Cause(row.cause),
        subject=row.subject,
        status=Status(row.status),
        urgency=Urgency(row.urgency),
        firing=row.firing,
        opened_at=row.opened_at,
        notify_at=row.notify_at,
        last_evidence_at=row.last_evidence_at,
        title=row.title,
        reasons=tuple(row.reasons or ()),
        hit_count=row.hit_count,
        top_hits=tuple(row.top_hits or ()),
        score=row.score,
        version=row.version,
        notified_version=row.notified_version,
        notified_urgency=Urgency(row.notified_urgency) if row.notified_urgency else None,
        last_notified_at=row.last_notified_at,
        notified_contacts=tuple(row.notified_contacts or ()),
        held_for=tuple(row.held_for or ()),
        level=row.level,
        loops=row.loops,
        escalate_at=row.escalate_at,
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        ack_until=row.ack_until,
        resolved_at=row.resolved_at,
        flaps=row.flaps,
        summary=Summary.from_dict(row.summary),
    )


def _incident_values(incident: Incident, now: datetime) -> dict[str, Any]:
    return {
        "key": incident.key,
        "client_id": incident.client_id,
        "cause": incident.cause.value,
        "subject": incident.subject,
        "status": incident.status.value,
        "urgency": incident.urgency.value,
        "firing": incident.firing,
        "opened_at": incident.opened_at,
        "notify_at": incident.notify_at,
        "last_evidence_at": incident.last_evidence_at,
        "title": incident.title,
        "reasons": list(incident.reasons),
        "hit_count": incident.hit_count,
        "top_hits": list(incident.top_hits),
        "score": incident.score,
        "version": incident.version,
        "notified_version": incident.notified_version,
        "notified_urgency": incident.notified_urgency.value if incident.notified_urgency else None,
        "last_notified_at": incident.last_notified_at,
        "notified_contacts": list(incident.notified_contacts),
        "held_for": list(incident.held_for),
        "level": incident.level,
        "loops": incident.loops,
        "escalate_at": incident.escalate_at,
        "acked_by": incident.acked_by,
        "acked_at": incident.acked_at,
        "ack_until": incident.ack_until,
        "resolved_at": incident.resolved_at,
        "flaps": incident.flaps,
        "summary": incident.summary.as_dict() if incident.summary else None,
        "updated_at": now,
    }


def incident_state(incident: Incident) -> dict[str, Any]:
    """What `save_incident` would write, bar the timestamp: equal states need no UPDATE."""
    values = _incident_values(incident, datetime.min)
    values.pop("updated_at", None)
    return values


# The hot writes of a burst are built once and given their values as execute parameters: building
# `.values(**values)` for an incident's 31 columns cost ~3 ms a write (literal coercion and a fresh cache
# key each time), most of a write transaction's time at 1,000 clients (bench/alert_burst.py).
_INSERT_INCIDENT = insert(incidents).returning(incidents.c.id)
_UPDATE_INCIDENT = update(incidents).where(incidents.c.id == bindparam("the_id"))
_INSERT_EVENT = insert(incident_events)
_UPDATE_KV = update(alert_kv).where(alert_kv.c.key == bindparam("the_key"))
_INSERT_KV = insert(alert_kv)
_UPDATE_ALERT_HIT = update(alert_hits).where(alert_hits.c.hit_id == bindparam("the_id"))
_UPDATE_SOURCE_HEALTH = update(alert_sources).where(alert_sources.c.source_key == bindparam("the_key"))
_INSERT_SOURCE_HEALTH = insert(alert_sources)
_ENQUEUE = insert(outbox).returning(outbox.c.id)
_CLAIM = update(outbox).where(outbox.c.id == bindparam("the_id"))


def save_incident(conn: Connection, incident: Incident, now: datetime) -> Incident:
    values = _incident_values(incident, now)
    if incident.id is None:
        incident.id = conn.execute(_INSERT_INCIDENT, values).scalar_one()
    else:
        conn.execute(_UPDATE_INCIDENT, {"the_id": incident.id, **values})
    return incident


def active_incident(conn: Connection, key: str) -> Incident | None:
    query = select(incidents).where(incidents.c.key == key, incidents.c.status != Status.RESOLVED.value)
    if is_pg(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_incident(row) if row else None


def active_incidents_by_key(conn: Connection, keys: Collection[str]) -> dict[str, Incident]:
    """`active_incident` for several keys in one query (locked on PostgreSQL too)."""
    if not keys:
        return {}
    query = select(incidents).where(incidents.c.key.in_(list(keys)), incidents.c.status != Status.RESOLVED.value)
    if is_pg(conn):
        query = query.with_for_update()
    return {row.key: _to_incident(row) for row in conn.execute(query.order_by(incidents.c.id))}


def active_incidents(
    conn: Connection, *, lock: bool = False, client_ids: Collection[str] | None = None
) -> list[Incident]:
    query = select(incidents).where(incidents.c.status != Status.RESOLVED.value).order_by(incidents.c.id)
    if client_ids is not None:
        query = query.where(incidents.c.client_id.in_(list(client_ids)))
    if lock and is_pg(conn):
        query = query.with_for_update()
    return [_to_incident(r) for r in conn.execute(query)]


def get_incident(conn: Connection, incident_id: int, *, lock: bool = False) -> Incident | None:
    query = select(incidents).where(incidents.c.id == incident_id)
    if lock and is_pg(conn):
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_incident(row) if row else None


def last_resolved_at(conn: Connection, key: str) -> datetime | None:
    return conn.execute(select(func.max(incidents.c.resolved_at)).where(incidents.c.key == key)).scalar()


def list_incidents(
    conn: Connection,
    *,
    since: datetime | None = None,
    client_id: str | None = None,
    active_only: bool = False,
    limit: int = 100,
    client_ids: Sequence[str] | None = None,
) -> list[Incident]:
    query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    if client_ids is not None:
        query = query.where(incidents.c.client_id.in_(list(client_ids)))
    if since is not None:
        query = query.where(or_(incidents.c.opened_at >= since, incidents.c.status != Status.RESOLVED.value))
    if client_id is not None:
        query = query.where(incidents.c.client_id == client_id)
    if active_only:
        query = query.where(incidents.c.status != Status.RESOLVED.value)
    return [_to_incident(r) for r in conn.execute(query)]


def incidents_touching(conn: Connection, client_ids: Sequence[str], since: datetime) -> list[Incident]:
    """Incidents of these clients opened, still open, or resolved since `since` (digest)."""
    query = (
        select(incidents)
        .where(
            incidents.c.client_id.in_(list(client_ids)),
            or_(
                incidents.c.opened_at >= since,
                incidents.c.status != Status.RESOLVED.value,
                incidents.c.resolved_at >= since,
            ),
        )
        .order_by(incidents.c.client_id, incidents.c.id)
    )
    return [_to_incident(r) for r in conn.execute(query)]


# --- events (audit) ---------------------------------------------------------------------------


def add_event(
    conn: Connection,
    at: datetime,
    kind: str,
    *,
    incident_id: int | None = None,
    client_id: str | None = None,
    contact: str | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "incident_id": incident_id,
            "client_id": client_id,
            "at": at,
            "kind": kind,
            "contact": contact,
            "actor": actor,
            "detail": detail,
        },
    )


def events_for(conn: Connection, incident_ids: Sequence[int]) -> list[IncidentEvent]:
    if not incident_ids:
        return []
    query = (
        select(*_EVENT_COLUMNS)
        .where(incident_events.c.incident_id.in_(list(incident_ids)))
        .order_by(incident_events.c.id)
    )
    return [IncidentEvent(*row) for row in conn.execute(query)]


def events_of_kind(conn: Connection, kind: str, *, since: datetime | None = None) -> list[IncidentEvent]:
    query = select(*_EVENT_COLUMNS).where(incident_events.c.kind == kind).order_by(incident_events.c.id)
    if since is not None:
        query = query.where(incident_events.c.at >= since)
    return [IncidentEvent(*row) for row in conn.execute(query)]


# --- mutes ------------------------------------------------------------------------------------


def add_mute(
    conn: Connection, client_id: str, now: datetime, until: datetime, by: str, reason: str | None = None
) -> int:
    result = conn.execute(
        insert(mutes)
        .values(client_id=client_id, created_at=now, until=until, created_by=by, reason=reason)
        .returning(mutes.c.id)
    )
    return int(result.scalar_one())


def cancel_mutes(conn: Connection, client_id: str, now: datetime) -> int:
    result = conn.execute(
        update(mutes)
        .where(mutes.c.client_id == client_id, mutes.c.until > now, mutes.c.cancelled_at.is_(None))
        .values(cancelled_at=now)
    )
    return result.rowcount


def active_mutes(conn: Connection, now: datetime) -> dict[str, datetime]:
    query = (
        select(mutes.c.client_id, func.max(mutes.c.until))
        .where(mutes.c.until > now, mutes.c.cancelled_at.is_(None))
        .group_by(mutes.c.client_id)
    )
    return {client: until for client, until in conn.execute(query)}


# --- per-hit risk -----------------------------------------------------------------------------


def insert_alert_hits(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Many rows at once (every row has the same keys, the columns with a default included)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":  # the driver's own parameters: see veille.store.bulk
        bulk.insert_rows(conn, alert_hits, tuple(rows[0]), rows)
    else:
        conn.execute(insert(alert_hits), list(rows))


def update_alert_hit(conn: Connection, hit_id: int, values: dict[str, Any]) -> None:
    conn.execute(_UPDATE_ALERT_HIT, {"the_id": hit_id, **values})


def alert_hits_by_id(conn: Connection, hit_ids: Sequence[int], *, chunk: int = 500) -> dict[int, AlertHit]:
    """These hits' rows (chunked: a first poll can bring thousands at once)."""
    found: dict[int, AlertHit] = {}
    ids = list(dict.fromkeys(hit_ids))
    for start in range(0, len(ids), chunk):
        query = select(*_ALERT_HIT_COLUMNS).where(alert_hits.c.hit_id.in_(ids[start : start + chunk]))
        found.update((hit.hit_id, hit) for hit in (AlertHit(*row) for row in conn.execute(query)))
    return found


def hits_since(conn: Connection, client_id: str, since: datetime) -> list[RecentHit]:
    query = select(*_RECENT_HIT_COLUMNS).where(
        alert_hits.c.client_id == client_id, or_(alert_hits.c.seen_at >= since, alert_hits.c.active_at >= since)
    )
    return [RecentHit(*row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class PostText:
    """A hit's text and who brought it, for incident summaries."""

    hit_id: int
    seen_at: datetime
    active_at: datetime
    snippet: str
    author: str | None
    source_kind: str
    total: int  # engagement when last seen
    negative: bool
    risk: float


_POST_TEXT_COLUMNS = [alert_hits.c[f.name] for f in fields(PostText)]


def post_texts(
    conn: Connection, client_id: str, since: datetime, until: datetime | None = None, *, limit: int = 5000
) -> list[PostText]:
    """The client's hits seen or still spreading in [since, until), newest first, at most `limit`."""
    query = select(*_POST_TEXT_COLUMNS).where(
        alert_hits.c.client_id == client_id, or_(alert_hits.c.seen_at >= since, alert_hits.c.active_at >= since)
    )
    if until is not None:
        query = query.where(alert_hits.c.seen_at < until)
    query = query.order_by(alert_hits.c.seen_at.desc(), alert_hits.c.hit_id.desc()).limit(limit)
    return [PostText(*row) for row in conn.execute(query)]


def client_counts(conn: Connection, client_ids: Sequence[str], since: datetime) -> dict[str, tuple[int, int]]:
    """Per client: hits seen since `since`, and how many of them were negative (digest)."""
    negative = func.sum(case((alert_hits.c.negative.is_(True), 1), else_=0))
    query = (
        select(alert_hits.c.client_id, func.count(), negative)
        .where(alert_hits.c.client_id.in_(list(client_ids)), alert_hits.c.seen_at >= since)
        .group_by(alert_hits.c.client_id)
    )
    return {client: (int(total), int(neg or 0)) for client, total, neg in conn.execute(query)}


def risky_hit_ids(conn: Connection, since: datetime, min_risk: float) -> list[int]:
    query = (
        select(alert_hits.c.hit_id)
        .where(alert_hits.c.seen_at >= since, alert_hits.c.risk >= min_risk)
        .order_by(alert_hits.c.risk.desc())
    )
    return [int(x) for x in conn.execute(query).scalars()]


def purge_alert_hits(conn: Connection, before: datetime, *, batch: int = 1000) -> int:
    ids = select(alert_hits.c.hit_id).where(alert_hits.c.seen_at < before).limit(batch).scalar_subquery()
    return conn.execute(delete(alert_hits).where(alert_hits.c.hit_id.in_(ids))).rowcount


# --- source health ----------------------------------------------------------------------------


def upsert_source_health(
    conn: Connection,
    source_key: str,
    client_id: str,
    ok: bool,
    error_kind: str | None,
    failing_since: datetime | None,
    now: datetime,
) -> None:
    values = {
        "client_id": client_id,
        "ok": ok,
        "error_kind": error_kind,
        "failing_since": failing_since,
        "updated_at": now,
    }
    done = conn.execute(_UPDATE_SOURCE_HEALTH, {"the_key": source_key, **values})
    if done.rowcount == 0:
        conn.execute(_INSERT_SOURCE_HEALTH, {"source_key": source_key, **values})


def failing_sources(conn: Connection, *, client_ids: Collection[str] | None = None) -> list[SourceHealth]:
    query = select(*_SOURCE_HEALTH_COLUMNS).where(alert_sources.c.ok.is_(False))
    if client_ids is not None:
        query = query.where(alert_sources.c.client_id.in_(list(client_ids)))
    return [SourceHealth(*row) for row in conn.execute(query)]


def buzzing_clients(conn: Connection, client_ids: Collection[str]) -> set[str]:
    """Among `client_ids`, those with an unresolved bad-buzz incident."""
    if not client_ids:
        return set()
    query = select(incidents.c.client_id).where(
        incidents.c.status != Status.RESOLVED.value,
        incidents.c.cause == Cause.BUZZ.value,
        incidents.c.client_id.in_(list(client_ids)),
    )
    return {client_id for (client_id,) in conn.execute(query)}


def clients_with_alert_state(conn: Connection) -> set[str]:
    """Clients with an unresolved incident or a failing source (also those no longer in the config)."""
    open_ = select(incidents.c.client_id).where(incidents.c.status != Status.RESOLVED.value)
    failing = select(alert_sources.c.client_id).where(alert_sources.c.ok.is_(False))
    return {client_id for (client_id,) in conn.execute(open_.union(failing))}


# --- key/value --------------------------------------------------------------------------------


def kv_get(conn: Connection, key: str) -> Any:
    return conn.execute(select(alert_kv.c.value).where(alert_kv.c.key == key)).scalar()


def kv_get_prefix(conn: Connection, prefix: str) -> dict[str, Any]:
    rows = conn.execute(select(alert_kv.c.key, alert_kv.c.value).where(alert_kv.c.key.startswith(prefix)))
    return {key[len(prefix) :]: value for key, value in rows}


def kv_set_many(conn: Connection, values: dict[str, Any], now: datetime) -> None:
    """`kv_set` for many keys in three statements (a burst writes one key per client)."""
    if not values:
        return
    existing = set(conn.execute(select(alert_kv.c.key).where(alert_kv.c.key.in_(list(values)))).scalars())
    if existing:
        conn.execute(_UPDATE_KV, [{"the_key": k, "value": values[k], "updated_at": now} for k in existing])
    new = [{"key": k, "value": v, "updated_at": now} for k, v in values.items() if k not in existing]
    if new:
        conn.execute(_INSERT_KV, new)


def kv_get_names(conn: Connection, prefix: str, names: Collection[str]) -> dict[str, Any]:
    """`kv_get_prefix` for these names only: a batch of clients reads its own rows, not every client's."""
    if not names:
        return {}
    keys = [f"{prefix}{name}" for name in names]
    rows = conn.execute(select(alert_kv.c.key, alert_kv.c.value).where(alert_kv.c.key.in_(keys)))
    return {key[len(prefix) :]: value for key, value in rows}


def kv_set(conn: Connection, key: str, value: Any, now: datetime) -> None:
    done = conn.execute(_UPDATE_KV, {"the_key": key, "value": value, "updated_at": now})
    if done.rowcount == 0:
        conn.execute(_INSERT_KV, {"key": key, "value": value, "updated_at": now})


# --- detections left to the tick ---------------------------------------------------------------

_DETECT_DUE = "detect_due:"


def defer_detections(conn: Connection, changed: Mapping[str, Sequence[int]], at: datetime) -> None:
    """Clients whose new hits are stored but not examined yet (the hits' transaction spent its time budget):
    the tick examines them as of `at`. Stored with the hits, so a crash in between loses nothing."""
    values = {f"{_DETECT_DUE}{c}": {"at": at.isoformat(), "hits": list(ids)} for c, ids in changed.items()}
    kv_set_many(conn, values, at)


def detections_due(
    conn: Connection, client_ids: Collection[str] | None = None
) -> dict[str, tuple[datetime, list[int]]]:
    """Deferred detections: client -> (as of when, the new hits' ids)."""
    found = kv_get_prefix(conn, _DETECT_DUE) if client_ids is None else kv_get_names(conn, _DETECT_DUE, client_ids)
    return {client: (datetime.fromisoformat(v["at"]), [int(i) for i in v["hits"]]) for client, v in found.items()}


def clear_detections(conn: Connection, client_ids: Collection[str]) -> None:
    if client_ids:
        conn.execute(delete(alert_kv).where(alert_kv.c.key.in_([f"{_DETECT_DUE}{c}" for c in client_ids])))


# --- outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    incident_id: int | None
    client_id: str | None
    contact: str
    channel: str
    address: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    token: str
    created_at: datetime
    possible_duplicate: bool
    reclaimed: bool  # the previous holder's lease expired mid-send: the peer may have it already


def enqueue(
    conn: Connection,
    *,
    incident_id: int | None,
    client_id: str | None,
    contact: str,
    channel: str,
    address: str,
    kind: str,
    urgency: str,
    silent: bool,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    result = conn.execute(
        _ENQUEUE,
        {
            "incident_id": incident_id,
            "client_id": client_id,
            "contact": contact,
            "channel": channel,
            "address": address,
            "kind": kind,
            "urgency": urgency,
            "silent": silent,
            "payload": payload,
            "state": "pending",
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
            "possible_duplicate": False,
        },
    )
    return int(result.scalar_one())


def _claimable(table: Any, now: datetime) -> Any:
    """Due rows that head their (incident, contact) queue (A11)."""
    earlier = outbox.alias()  # Core's alias: importing sqlalchemy.orm for it cost every command 0.1 s
    head_only = ~exists(
        select(earlier.c.id).where(
            earlier.c.incident_id == table.c.incident_id,
            earlier.c.contact == table.c.contact,
            earlier.c.id < table.c.id,
            earlier.c.state.in_(("pending", "sending")),
        )
    )
    due = or_(
        and_(table.c.state == "pending", table.c.next_attempt_at <= now),
        and_(table.c.state == "sending", table.c.lease_until < now),
    )
    return and_(due, head_only)


def claim(
    conn: Connection,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    token_factory: Callable[[], str],
    *,
    per_address: int | None = None,
) -> list[Claimed]:
    """Claim due rows with a lease; only the head of each (incident, contact) queue (A11).

    `per_address` caps the rows taken for one (channel, address), so a backlog for one chat
    cannot fill the claim and hold back the other chats' rows queued behind it.
    """
    query = select(outbox).where(_claimable(outbox, now))
    if per_address is not None:
        inner = outbox.alias()
        rank = (
            func.row_number()
            .over(partition_by=(inner.c.channel, inner.c.address), order_by=(inner.c.next_attempt_at, inner.c.id))
            .label("rank")
        )
        ranked = select(inner.c.id, rank).where(_claimable(inner, now)).subquery()
        # The outer conditions stay: PostgreSQL re-checks them on a row another relay just claimed.
        query = query.where(outbox.c.id.in_(select(ranked.c.id).where(ranked.c.rank <= per_address)))
    query = query.order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)
    if is_pg(conn):
        query = query.with_for_update(skip_locked=True, of=outbox)
    claimed = []
    for row in conn.execute(query).all():
        token = token_factory()
        reclaimed = row.state == "sending"
        claimed.append(
            Claimed(
                row.id,
                row.incident_id,
                row.client_id,
                row.contact,
                row.channel,
                row.address,
                row.kind,
                dict(row.payload),
                row.attempts + 1,
                token,
                row.created_at,
                bool(row.possible_duplicate or reclaimed),
                reclaimed,
            )
        )
    if claimed:  # one executemany: a claim of 50 rows held the lock for 50 UPDATEs
        conn.execute(
            _CLAIM,
            [
                {
                    "the_id": c.id,
                    "state": "sending",
                    "lease_owner": owner,
                    "lease_until": now + lease,
                    "attempt_token": c.token,
                    "attempts": c.attempts,
                    "possible_duplicate": c.possible_duplicate,
                }
                for c in claimed
            ],
        )
    return claimed


def _fenced(row_id: int, token: str) -> Any:
    return and_(outbox.c.id == row_id, outbox.c.attempt_token == token, outbox.c.state == "sending")


def mark_sent(conn: Connection, row_id: int, token: str, now: datetime, message_ids: Sequence[str]) -> bool:
    """False when the token is stale (another relay took the row over): A7 fencing."""
    result = conn.execute(
        update(outbox)
        .where(_fenced(row_id, token))
        .values(
            state="sent",
            sent_at=now,
            message_ids=json.dumps(list(message_ids)),
            lease_owner=None,
            lease_until=None,
            last_error=None,
        )
    )
    return result.rowcount == 1


def mark_retry(
    conn: Connection,
    row_id: int,
    token: str,
    next_at: datetime,
    error: str,
    *,
    possible_duplicate: bool = False,
    address: str | None = None,
) -> bool:
    values: dict[str, Any] = {
        "state": "pending",
        "next_attempt_at": next_at,
        "last_error": error[:500],
        "lease_owner": None,
        "lease_until": None,
    }
    if possible_duplicate:
        values["possible_duplicate"] = True
    if address is not None:
        values["address"] = address
    return conn.execute(update(outbox).where(_fenced(row_id, token)).values(**values)).rowcount == 1


def release(conn: Connection, row_id: int, token: str, now: datetime) -> bool:
    """Give a claimed row back at shutdown: it may have been sent, so it is tagged."""
    return (
        conn.execute(
            update(outbox)
            .where(_fenced(row_id, token))
            .values(
                state="pending",
                next_attempt_at=now,
                lease_owner=None,
                lease_until=None,
                possible_duplicate=True,
                attempts=outbox.c.attempts - 1,
            )
        ).rowcount
        == 1
    )


def unclaim(conn: Connection, row_id: int, token: str, now: datetime) -> bool:
    """Give back a claimed row that was never handed to a notifier: not a possible duplicate."""
    return (
        conn.execute(
            update(outbox)
            .where(_fenced(row_id, token))
            .values(
                state="pending", next_attempt_at=now, lease_owner=None, lease_until=None, attempts=outbox.c.attempts - 1
            )
        ).rowcount
        == 1
    )


def mark_dead(conn: Connection, row_id: int, token: str, error: str) -> bool:
    return (
        conn.execute(
            update(outbox)
            .where(_fenced(row_id, token))
            .values(state="dead", last_error=error[:500], lease_owner=None, lease_until=None)
        ).rowcount
        == 1
    )


def purge_outbox(conn: Connection, before: datetime, *, batch: int = 1000) -> int:
    """Forget finished rows (sent, dead, cancelled) older than `before`, a batch at a time (G10)."""
    ids = (
        select(outbox.c.id)
        .where(outbox.c.state.in_(("sent", "dead", "cancelled")), outbox.c.created_at < before)
        .limit(batch)
        .scalar_subquery()
    )
    return conn.execute(delete(outbox).where(outbox.c.id.in_(ids))).rowcount


def cancel_pending(conn: Connection, incident_id: int, kinds: Sequence[str]) -> int:
    """An ack cancels escalations and repeats that were queued but not yet sent (C6)."""
    result = conn.execute(
        update(outbox)
        .where(outbox.c.incident_id == incident_id, outbox.c.state == "pending", outbox.c.kind.in_(list(kinds)))
        .values(state="cancelled")
    )
    return result.rowcount


def oldest_pending(conn: Connection) -> datetime | None:
    return conn.execute(
        select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(("pending", "sending")))
    ).scalar()


def outbox_rows(
    conn: Connection, *, incident_ids: Sequence[int] | None = None, since: datetime | None = None
) -> list[Delivery]:
    query = select(*_DELIVERY_COLUMNS).order_by(outbox.c.id)
    if incident_ids is not None:
        query = query.where(outbox.c.incident_id.in_(list(incident_ids)))
    if since is not None:
        query = query.where(outbox.c.created_at >= since)
    return [Delivery(*row) for row in conn.execute(query)]


def outbox_counts(conn: Connection) -> dict[str, int]:
    return {
        state: int(count)
        for state, count in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
    }


def escalate_now(conn: Connection, incident_id: int, now: datetime) -> None:
    """B3: the current contact is unreachable, so the next tick escalates to the next one."""
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id, incidents.c.status == Status.OPEN.value)
        .values(escalate_at=now)
    )
