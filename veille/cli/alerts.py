"""Commands for incidents: `alerts`, `ack`, `mute`, `unmute`, `replay`, `status`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from veille.cli.common import config_option, emit, fail, load_or_exit, open_database, progress
from veille.cli.wording import _, cli_wording, command, ngettext, text
from veille.core.durations import format_duration, parse_duration, parse_since
from veille.core.i18n import N_

if TYPE_CHECKING:
    from veille.config import Config


def register(group: click.Group) -> None:
    group.add_command(alerts_command)
    group.add_command(ack_command)
    group.add_command(mute_command)
    group.add_command(unmute_command)
    group.add_command(replay_command)
    group.add_command(export_command)
    group.add_command(status_command)


def _local(moment: datetime | None, config: Config) -> str:
    return moment.astimezone(config.tz).strftime("%d/%m %H:%M") if moment else ""


@command(
    "alerts", help=N_("List the incidents: state, urgency, client, first and last hit, acknowledgements, deliveries.")
)
@config_option
@click.option("--client", help=N_("Only this client."))
@click.option("--since", default="7d", show_default=True, help=N_("Since: a duration (24h, 7d) or an ISO date."))
@click.option("--open", "open_only", is_flag=True, help=N_("Only the unresolved incidents."))
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help=N_("At most this many rows.")
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help=N_("table for humans, json for scripts."),
)
def alerts_command(
    config_file: str | None, client: str | None, since: str, open_only: bool, limit: int, output_format: str
) -> None:
    from veille.core.incidents import label, summary_line
    from veille.store import alerts as store
    from veille.store.engine import read_conn

    config = load_or_exit(config_file)
    try:
        start = parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        fail(f"--since: {text(str(exc))}", 2)
    engine = open_database(config)
    with read_conn(engine) as conn:
        incidents = store.list_incidents(conn, since=start, client_id=client, active_only=open_only, limit=limit)
        ids = [i.id for i in incidents if i.id is not None]
        events = store.events_for(conn, ids)
        deliveries = store.outbox_rows(conn, incident_ids=ids)
    acks: dict[int, list[tuple[str, str, str]]] = {}  # (event kind, contact, local time)
    for event in events:
        if event.kind in ("ack", "snooze") and event.incident_id is not None:
            acks.setdefault(event.incident_id, []).append((event.kind, event.contact or "", _local(event.at, config)))
    sent: dict[int, dict[str, int]] = {}
    for delivery in deliveries:
        if delivery.incident_id is not None:
            counts = sent.setdefault(delivery.incident_id, {})
            counts[delivery.state] = counts.get(delivery.state, 0) + 1
    rows: list[dict[str, Any]] = []
    for incident in incidents:
        rows.append(
            {
                "id": incident.id,
                "status": incident.status.value,
                "urgency": incident.urgency.value,
                "client": incident.client_id,
                "cause": incident.cause.value,
                "subject": incident.subject,
                "hits": incident.hit_count,
                "opened_at": incident.opened_at,
                "last_hit_at": incident.last_evidence_at,
                "resolved_at": incident.resolved_at,
                "acks": [" ".join(ack) for ack in acks.get(incident.id or 0, [])],
                "taken": acks.get(incident.id or 0, []),
                "deliveries": sent.get(incident.id or 0, {}),
                "reasons": list(incident.reasons),
                "summary": (
                    {**incident.summary.as_dict(), "text": summary_line(incident.summary, cli_wording().lang)}
                    if incident.summary
                    else None
                ),
            }
        )
    if output_format == "json":
        emit(rows, [k for k in rows[0] if k != "taken"] if rows else ["id"], "json")
        return
    if not rows:
        click.echo(_("No incidents."))
        return
    for row in rows:
        row["opened_at"] = _local(row["opened_at"], config)
        row["last_hit_at"] = _local(row["last_hit_at"], config)
        row["acks"] = "; ".join(
            _("{action} by {who} at {when}").format(action=_(label(kind)), who=who, when=when)
            for kind, who, when in row["taken"]
        )
        row["deliveries"] = ", ".join(f"{_(label(k))} {v}" for k, v in sorted(row["deliveries"].items()))
        row["cause"] = _(label(row["cause"])) + (f" {row['subject']}" if row["subject"] else "")
        row["status"] = _(label(row["status"]))
        row["urgency"] = _(label(row["urgency"]))
    headers = [
        _("id"),
        _("state"),
        _("urgency"),
        _("client"),
        _("cause"),
        _("hits"),
        _("first"),
        _("last"),
        _("taken"),
        _("deliveries"),
    ]
    emit(
        rows,
        ["id", "status", "urgency", "client", "cause", "hits", "opened_at", "last_hit_at", "acks", "deliveries"],
        "table",
        headers=headers,
    )


@command("ack", help=N_("Take an incident: stops reminders and escalations (until ack_timeout)."))
@config_option
@click.argument("incident_id", type=int)
@click.option("--contact", help=N_("Who takes the incident (default: the first contact)."))
@click.option(
    "--for", "snooze", metavar="DURATION", help=N_("Postpone (snooze) for this long instead of the standard ack.")
)
def ack_command(config_file: str | None, incident_id: int, contact: str | None, snooze: str | None) -> None:
    from veille.core.clock import SystemClock
    from veille.runtime.actions import AlreadyTaken, UnknownIncident, ack

    config = load_or_exit(config_file)
    duration = None
    if snooze:
        try:
            duration = parse_duration(snooze)
        except ValueError as exc:
            fail(f"--for: {text(str(exc))}", 2)
    who = contact or (config.alerting.contacts[0].id if config.alerting.contacts else "cli")
    if contact and config.alerting.contact(contact) is None:
        fail(_("unknown contact: {contact}").format(contact=repr(contact)), 2)
    engine = open_database(config)
    try:
        done = ack(
            engine,
            SystemClock(),
            config.alerting,
            incident_id,
            contact=who,
            actor="cli",
            duration=duration,
            refuse_taken=duration is None,
        )
    except AlreadyTaken as taken:
        local = taken.acked_at.astimezone(config.tz)
        fail(
            _(
                "Incident #INC-{id} is already taken by {who} since {day} {time}: nothing recorded "
                "(veille ack {id} --for 2h postpones it anyway)"
            ).format(id=incident_id, who=taken.acked_by, day=local.strftime("%d/%m"), time=local.strftime("%H:%M"))
        )
    except UnknownIncident:
        fail(_("unknown incident: {id}").format(id=incident_id))
    if not done:
        fail(_("incident {id} is already resolved").format(id=incident_id))
    click.echo(_("Incident #INC-{id} taken by {who}.").format(id=incident_id, who=who))


@command("mute", help=N_("Silence every notification about a client for a while (audited, survives restarts)."))
@config_option
@click.argument("client")
@click.option("--for", "duration", required=True, metavar="DURATION", help=N_("A duration, e.g. 2h, 30m, 1d."))
@click.option("--reason", help=N_("Why (kept in the history)."))
def mute_command(config_file: str | None, client: str, duration: str, reason: str | None) -> None:
    from veille.core.clock import SystemClock
    from veille.runtime.actions import mute

    config = load_or_exit(config_file)
    if config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(_("unknown client: {client} (clients: {known})").format(client=repr(client), known=known))
    try:
        span = parse_duration(duration)
    except ValueError as exc:
        fail(f"--for: {text(str(exc))}", 2)
    if span.total_seconds() <= 0:
        fail("--for: > 0", 2)
    engine = open_database(config)
    until = mute(engine, SystemClock(), client, span, actor="cli", reason=reason)
    click.echo(_("{client}: muted until {until}.").format(client=client, until=_local(until, config)))


@command("unmute", help=N_("Turn a client's notifications back on before its mute ends."))
@config_option
@click.argument("client")
def unmute_command(config_file: str | None, client: str) -> None:
    from veille.core.clock import SystemClock
    from veille.runtime.actions import unmute

    config = load_or_exit(config_file)
    engine = open_database(config)
    count = unmute(engine, SystemClock(), client, actor="cli")
    click.echo(
        ngettext("{client}: {n} mute lifted.", "{client}: {n} mutes lifted.", count).format(client=client, n=count)
    )


def _load_scorer(config: Config) -> Any:
    from veille.core.paths import data_dir
    from veille.scoring import load_scorer

    return load_scorer(config.sentiment, data_dir=data_dir(config.database_url))


@command(
    "export",
    help=N_(
        "Write a client's stored history: `--format replay` gives the JSONL timeline `veille replay` reads "
        "(posts as veille first had them, then every engagement observation), to try thresholds on last month."
    ),
)
@config_option
@click.option("--client", "client_id", required=True, help=N_("The client's id."))
@click.option("--since", default="30d", show_default=True, help=N_("From how long ago (30d, 12h) or a date."))
@click.option(
    "--format", "output_format", type=click.Choice(["replay"]), default="replay", show_default=True, help=N_("Format.")
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help=N_("File (default: stdout)."))
def export_command(config_file: str | None, client_id: str, since: str, output_format: str, output: str | None) -> None:
    from veille.runtime.replay import export_timeline
    from veille.store.engine import read_conn

    config = load_or_exit(config_file)
    if config.client(client_id) is None:
        fail(_("veille export: no client {id!r} in the configuration").format(id=client_id), 2)
    try:
        start = parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        fail(f"--since: {text(str(exc))}", 2)
    engine = open_database(config)
    with read_conn(engine) as conn, click.open_file(output or "-", "w", encoding="utf-8", atomic=bool(output)) as out:
        count = 0
        for line in export_timeline(conn, client_id, start):
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    if output:
        click.echo(
            ngettext("{n} line written to {path}", "{n} lines written to {path}", count).format(n=count, path=output)
        )


@command(
    "replay",
    help=N_(
        "Replay a timeline of hits (JSONL): which notifications would have gone out, and who would have been "
        "woken.\n\nNothing is sent: the real scoring, detection and escalation run on a simulated clock."
    ),
)
@config_option
@click.argument("timeline", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help=N_("table for humans, json for scripts."),
)
@click.option("--tail", default="12h", show_default=True, help=N_("Simulated time after the last hit."))
def replay_command(config_file: str | None, timeline: str, output_format: str, tail: str) -> None:
    from veille.core.errors import VeilleError
    from veille.core.incidents import label
    from veille.runtime.replay import ReplayError, read_timeline, replay

    config = load_or_exit(config_file)
    try:
        span = parse_duration(tail)
        lines = read_timeline(timeline)
    except (ReplayError, ValueError) as exc:
        fail(f"veille replay: {text(str(exc))}", 2)
    try:
        scorer = _load_scorer(config)
    except VeilleError as exc:
        fail(f"veille replay: {text(str(exc))}", 2)
    with progress(_("Replaying the timeline"), len(lines)) as advance:
        results = replay(config, lines, scorer, tail=span, on_line=advance)
    if output_format == "json":
        for result in results:
            click.echo(json.dumps(result.as_json(config.tz), ensure_ascii=False))
        return
    rows = [
        {
            **r.as_json(config.tz),
            "at": r.at.astimezone(config.tz).strftime("%d/%m %H:%M:%S"),
            "kind": _(label(r.kind)),
            "urgency": _(label(r.urgency)),
            "wakes": _("YES") if r.wakes else ("" if r.mode != "held" else _(label("digest"))),
        }
        for r in results
    ]
    headers = [_("time"), _("client"), _("contact"), _("kind"), _("urgency"), _("wakes"), _("incident"), _("title")]
    emit(rows, ["at", "client", "contact", "kind", "urgency", "wakes", "incident", "title"], "table", headers=headers)
    woke = sum(1 for r in results if r.wakes)
    count = len(results)
    click.echo(
        ngettext(
            "{n} notification, {woke} would have woken the phone.",
            "{n} notifications, {woke} would have woken the phone.",
            count,
        ).format(n=count, woke=woke)
    )


@command("status", help=N_("Alerting state: open incidents, delivery queue, age of the oldest waiting message."))
@config_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help=N_("table for humans, json for scripts."),
)
def status_command(config_file: str | None, output_format: str) -> None:
    from veille.core.incidents import label
    from veille.store import alerts as store
    from veille.store.engine import read_conn

    config = load_or_exit(config_file)
    engine = open_database(config)
    now = datetime.now(UTC)
    with read_conn(engine) as conn:
        oldest = store.oldest_pending(conn)
        counts = store.outbox_counts(conn)
        active = store.list_incidents(conn, active_only=True, limit=10_000)
        mutes = store.active_mutes(conn, now)
    age = (now - oldest).total_seconds() if oldest else 0.0
    data = {
        "open_incidents": len(active),
        "high_urgency": sum(1 for i in active if i.urgency.value == "high"),
        "outbox": counts,
        "oldest_pending_seconds": round(age, 1),
        "muted": {k: v.isoformat() for k, v in mutes.items()},
    }
    if output_format == "json":
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    out = sys.stdout
    out.write(_("Open incidents: {n} ({high} high urgency)").format(n=len(active), high=data["high_urgency"]) + "\n")
    queue = ", ".join(f"{_(label(k))} {v}" for k, v in sorted(counts.items())) or "-"
    out.write(_("Delivery queue: {queue}").format(queue=queue) + "\n")
    out.write(_("Oldest waiting message: {age}").format(age=format_duration(age) if oldest else "-") + "\n")
    for client, until in sorted(mutes.items()):
        out.write(_("Muted: {client} until {until}").format(client=client, until=_local(until, config)) + "\n")
