"""The escalation core: incidents, grouping, quiet hours, acks, mutes, escalation. Pure.

Data and `now` in, decisions out; nothing here touches a database, a clock or a network, so every
rule is tested as a timeline on a fake clock (RELIABILITY.md C1-C12). The service persists the
`Incident` objects this module mutates and turns each `Decision` into an outbox row.

Semantics follow Alertmanager and PagerDuty:
- one incident per dedup key (`client:cause[:subject]`) while it is not resolved; after a resolve
  the next trigger opens a new one (C3);
- the first notification waits `group_wait` so a burst becomes one message (C1), and nothing is
  sent if the incident stopped firing meanwhile (flapping, C4);
- updates at most every `group_interval` and only if something changed; an unchanged,
  unacknowledged high-urgency incident repeats after `repeat_interval` (C2);
- high urgency escalates along the contact chain every `escalation_delay`, walking the chain
  `num_loops` times; an ack stops it until `ack_timeout` (C5, C6);
- low urgency never rings: silent by day, held for the digest during quiet hours (C7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from veille.alerting.calendar import is_quiet
from veille.alerting.settings import AlertingSettings, Contact
from veille.core.incidents import Cause, Incident, Kind, Mode, Signal, Status, Urgency

_SUPPRESSIBLE_BY_BUZZ = (Cause.SOURCE, Cause.SILENCE, Cause.VOLUME, Cause.AUDIENCE)


@dataclass(frozen=True, slots=True)
class Decision:
    """Tell `contact` about `incident` (`kind`), the way `mode` says."""

    kind: Kind
    incident: Incident
    contact: Contact
    urgency: Urgency
    mode: Mode


@dataclass(frozen=True, slots=True)
class Context:
    """Everything outside the incident that a decision depends on."""

    settings: AlertingSettings
    tz: ZoneInfo
    muted_until: dict[str, datetime] = field(default_factory=dict)  # client id -> end of mute
    buzzing_clients: frozenset[str] = frozenset()  # clients with an active bad-buzz incident

    def chain(self, client_id: str) -> tuple[Contact, ...]:
        return self.settings.chain(client_id)

    def muted(self, client_id: str, now: datetime) -> bool:
        until = self.muted_until.get(client_id)
        return until is not None and now < until

    def inhibited(self, incident: Incident) -> bool:
        """C10: a client-wide bad buzz mutes the same client's lesser incidents, never itself."""
        return incident.cause in _SUPPRESSIBLE_BY_BUZZ and incident.client_id in self.buzzing_clients


def route(contact: Contact, urgency: Urgency, ctx: Context, now: datetime) -> Mode:
    """C7: high urgency rings even at night; low urgency is silent by day, held (or silent) at night."""
    if urgency is Urgency.HIGH:
        return Mode.WAKE
    if is_quiet(contact.quiet_hours, now, ctx.tz):
        return Mode.HELD if ctx.settings.quiet_low == "digest" else Mode.SILENT
    return Mode.WAKE if contact.low_urgency_rings else Mode.SILENT


def observe(
    incident: Incident | None, signal: Signal, ctx: Context, now: datetime, *, last_resolved_at: datetime | None = None
) -> Incident | None:
    """Fold one detection signal into the open incident for its key, or open a new one.

    Returns the incident to persist (None when nothing is firing and nothing is open).
    `last_resolved_at` is when the previous incident on this key resolved (cool-down).
    """
    s = ctx.settings
    if incident is None or not incident.active:
        if not signal.firing:
            return None
        notify_at = now + s.group_wait
        cooling = last_resolved_at is not None and now < last_resolved_at + s.cooldown
        if cooling and signal.urgency is Urgency.LOW and last_resolved_at is not None:
            notify_at = max(notify_at, last_resolved_at + s.cooldown)
        return Incident(
            id=None,
            key=signal.key,
            client_id=signal.client_id,
            cause=signal.cause,
            subject=signal.subject,
            status=Status.PENDING,
            urgency=signal.urgency,
            firing=True,
            opened_at=now,
            notify_at=notify_at,
            last_evidence_at=now,
            title=signal.title,
            reasons=signal.reasons,
            hit_count=max(len(signal.new_hits), signal.evidence_count or 0),
            top_hits=signal.top_hits,
            score=signal.score,
        )
    if signal.firing != incident.firing:
        incident.flaps += 1
    incident.firing = signal.firing
    if not signal.firing:
        return incident
    changed = bool(signal.new_hits)
    if signal.urgency is Urgency.HIGH and incident.urgency is Urgency.LOW:
        incident.urgency = Urgency.HIGH
        changed = True
    if signal.new_hits:
        if signal.evidence_count is None:
            incident.hit_count += len(signal.new_hits)
        else:
            incident.hit_count = max(incident.hit_count, signal.evidence_count)
        incident.last_evidence_at = now
    if signal.title:
        incident.title = signal.title
    if signal.reasons:
        incident.reasons = signal.reasons
    if signal.top_hits:
        incident.top_hits = signal.top_hits
    incident.score = max(incident.score, signal.score)
    if changed:
        incident.version += 1
    return incident


def evaluate(incident: Incident, ctx: Context, now: datetime) -> list[Decision]:
    """Advance one incident to `now` and return the notifications due."""
    if not incident.active:
        return []
    if not incident.firing:
        return _resolve(incident, ctx, now)
    if incident.status is Status.PENDING:
        if now < incident.notify_at:
            return []
        incident.status = Status.OPEN
    if incident.status is Status.ACKED:
        if incident.ack_until is None or now < incident.ack_until:
            return []
        return _ack_expired(incident, ctx, now)
    return _open(incident, ctx, now)


def _open(incident: Incident, ctx: Context, now: datetime) -> list[Decision]:
    s = ctx.settings
    if ctx.muted(incident.client_id, now) or ctx.inhibited(incident):
        return []  # C9/C10: stays unnotified; notified normally once the mute ends
    chain = ctx.chain(incident.client_id)
    if not chain:
        return []
    incident.level = min(incident.level, len(chain) - 1)
    contact = chain[incident.level]
    out: list[Decision] = []
    raised = incident.urgency is Urgency.HIGH and incident.notified_urgency is Urgency.LOW
    if incident.notified_version == 0:
        out.append(_notify(incident, Kind.OPENED, contact, ctx, now))
    elif raised or (
        incident.version > incident.notified_version
        and incident.last_notified_at is not None
        and now >= incident.last_notified_at + s.group_interval
    ):
        out.append(_notify(incident, Kind.UPDATE, contact, ctx, now))
    elif (
        incident.urgency is Urgency.HIGH
        and incident.last_notified_at is not None
        and now >= incident.last_notified_at + s.repeat_interval
    ):
        out.append(_notify(incident, Kind.REPEAT, contact, ctx, now))  # low urgency waits for the digest
    elif incident.escalate_at is not None and now >= incident.escalate_at:
        out.extend(_escalate(incident, chain, ctx, now))
    if s.bump_at_quiet_end and incident.held_for:
        out.extend(_bump(incident, ctx, now))
    return out


def _notify(incident: Incident, kind: Kind, contact: Contact, ctx: Context, now: datetime) -> Decision:
    mode = route(contact, incident.urgency, ctx, now)
    already_rang = incident.notified_urgency is Urgency.HIGH and contact.id in incident.notified_contacts
    if kind is Kind.UPDATE and mode is Mode.WAKE and already_rang:
        mode = Mode.SILENT  # new evidence on an incident that already rang: escalations and repeats insist
    incident.notified_version = incident.version
    incident.notified_urgency = incident.urgency
    incident.last_notified_at = now
    if contact.id not in incident.notified_contacts:
        incident.notified_contacts = (*incident.notified_contacts, contact.id)
    if mode is Mode.HELD and contact.id not in incident.held_for:
        incident.held_for = (*incident.held_for, contact.id)
    if incident.urgency is Urgency.HIGH and incident.escalate_at is None and incident.loops < ctx.settings.num_loops:
        incident.escalate_at = now + ctx.settings.escalation_delay
    return Decision(kind, incident, contact, incident.urgency, mode)


def _escalate(incident: Incident, chain: tuple[Contact, ...], ctx: Context, now: datetime) -> list[Decision]:
    """C6: next contact in the chain; after the last, loop; after `num_loops` walks, stop."""
    nxt = incident.level + 1
    loops = incident.loops
    if nxt >= len(chain):
        nxt, loops = 0, loops + 1
    if loops >= ctx.settings.num_loops:
        incident.escalate_at = None
        incident.loops = loops
        return []
    incident.level, incident.loops = nxt, loops
    incident.escalate_at = now + ctx.settings.escalation_delay
    decision = _notify(incident, Kind.ESCALATED, chain[nxt], ctx, now)
    return [decision]


def _bump(incident: Incident, ctx: Context, now: datetime) -> list[Decision]:
    """C8: when a contact's quiet hours end, held low-urgency incidents ring once each (no escalation)."""
    out = []
    for contact_id in incident.held_for:
        contact = ctx.settings.contact(contact_id)
        if contact is None or is_quiet(contact.quiet_hours, now, ctx.tz):
            continue
        incident.notified_version = incident.version
        incident.last_notified_at = now
        out.append(Decision(Kind.UPDATE, incident, contact, incident.urgency, Mode.WAKE))
    incident.held_for = tuple(c for c in incident.held_for if c not in {d.contact.id for d in out})
    return out


def _ack_expired(incident: Incident, ctx: Context, now: datetime) -> list[Decision]:
    """C5: still hot after ack_timeout -> back to open, the acker is told again."""
    incident.status = Status.OPEN
    incident.ack_until = None
    chain = ctx.chain(incident.client_id)
    acker = ctx.settings.contact(incident.acked_by or "") or (chain[0] if chain else None)
    if acker is None or ctx.muted(incident.client_id, now) or ctx.inhibited(incident):
        return []
    if acker in chain:
        incident.level = chain.index(acker)
    incident.loops = 0
    incident.escalate_at = None
    out = [_notify(incident, Kind.REPEAT, acker, ctx, now)]
    current = chain[incident.level] if chain else None
    if current is not None and current.id != acker.id:
        out.append(_notify(incident, Kind.REPEAT, current, ctx, now))
    return out


def _resolve(incident: Incident, ctx: Context, now: datetime) -> list[Decision]:
    was_notified = incident.notified_version > 0
    incident.status = Status.RESOLVED
    incident.resolved_at = now
    incident.escalate_at = None
    if not was_notified or ctx.muted(incident.client_id, now):
        return []  # C4: flapped inside group_wait, nobody was bothered
    out = []
    for contact_id in incident.notified_contacts:
        contact = ctx.settings.contact(contact_id)
        if contact is not None:
            out.append(Decision(Kind.RESOLVED, incident, contact, Urgency.LOW, route(contact, Urgency.LOW, ctx, now)))
    return out


def acknowledge(
    incident: Incident, contact_id: str, now: datetime, ctx: Context, *, duration: timedelta | None = None
) -> bool:
    """Ack (or snooze for `duration`): cancels pending escalation until the ack expires."""
    if not incident.active:
        return False
    incident.status = Status.ACKED
    incident.acked_by = contact_id
    incident.acked_at = now
    incident.ack_until = now + (duration or ctx.settings.ack_timeout)
    incident.escalate_at = None
    incident.held_for = ()
    return True


def next_due(incident: Incident, ctx: Context) -> datetime | None:
    """When `evaluate` may next have something to do (for schedulers and replay)."""
    s = ctx.settings
    if not incident.active:
        return None
    if incident.status is Status.PENDING:
        return incident.notify_at
    if incident.status is Status.ACKED:
        return incident.ack_until
    times = []
    if incident.last_notified_at is not None:
        if incident.version > incident.notified_version:
            times.append(incident.last_notified_at + s.group_interval)
        if incident.urgency is Urgency.HIGH:
            times.append(incident.last_notified_at + s.repeat_interval)
    if incident.escalate_at is not None:
        times.append(incident.escalate_at)
    return min(times) if times else None
