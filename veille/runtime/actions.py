"""What a human does to incidents (CLI, Telegram buttons): ack, snooze, mute. Each is audited.

These run in their own write transaction and need no running daemon: the daemon reads the
result from the database on its next tick, so an ack survives a restart (C6) and a mute expires
exactly on time whoever is running (C9).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from veille.alerting.escalation import Context, acknowledge
from veille.alerting.settings import AlertingSettings
from veille.core.clock import Clock
from veille.core.incidents import Status
from veille.store import alerts as store
from veille.store.engine import write_tx

CANCELLED_BY_ACK = ("escalated", "repeat")


class UnknownIncident(LookupError):
    pass


class AlreadyTaken(Exception):
    """Someone already took the incident and their ack still runs: a second ack would hide who has it."""

    def __init__(self, acked_by: str, acked_at: datetime, ack_until: datetime | None) -> None:
        super().__init__(acked_by)
        self.acked_by = acked_by
        self.acked_at = acked_at
        self.ack_until = ack_until


def ack(
    engine: Engine,
    clock: Clock,
    settings: AlertingSettings,
    incident_id: int,
    *,
    contact: str,
    actor: str,
    duration: timedelta | None = None,
    refuse_taken: bool = False,
) -> bool:
    """Acknowledge (or snooze for `duration`). False if the incident is already resolved. With
    `refuse_taken`, an incident whose ack still runs raises AlreadyTaken and records nothing."""
    now = clock.now()
    with write_tx(engine) as conn:
        incident = store.get_incident(conn, incident_id, lock=True)
        if incident is None:
            raise UnknownIncident(incident_id)
        taken = incident.status is Status.ACKED and incident.ack_until is not None and incident.ack_until > now
        if refuse_taken and taken and incident.acked_by and incident.acked_at:
            raise AlreadyTaken(incident.acked_by, incident.acked_at, incident.ack_until)
        ctx = Context(settings, ZoneInfo("UTC"))
        if not acknowledge(incident, contact, now, ctx, duration=duration):
            return False
        store.save_incident(conn, incident, now)
        cancelled = store.cancel_pending(conn, incident_id, CANCELLED_BY_ACK)
        store.add_event(
            conn,
            now,
            "snooze" if duration else "ack",
            incident_id=incident_id,
            client_id=incident.client_id,
            contact=contact,
            actor=actor,
            detail={
                "until": incident.ack_until.isoformat() if incident.ack_until else None,
                "cancelled_outbox": cancelled,
            },
        )
    return True


def mute(
    engine: Engine, clock: Clock, client_id: str, duration: timedelta, *, actor: str, reason: str | None = None
) -> datetime:
    """Mute every notification about a client until now + duration. Returns the end."""
    now = clock.now()
    until = now + duration
    with write_tx(engine) as conn:
        store.add_mute(conn, client_id, now, until, actor, reason)
        store.add_event(
            conn, now, "mute", client_id=client_id, actor=actor, detail={"until": until.isoformat(), "reason": reason}
        )
    return until


def unmute(engine: Engine, clock: Clock, client_id: str, *, actor: str) -> int:
    now = clock.now()
    with write_tx(engine) as conn:
        count = store.cancel_mutes(conn, client_id, now)
        store.add_event(conn, now, "unmute", client_id=client_id, actor=actor, detail={"cancelled": count})
    return count
