"""Commands for incidents: `alerts`, `ack`, `mute`, `unmute`, `replay`, `status`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from veille.cli.common import config_option, emit, fail, load_or_exit, open_database
from veille.cli.wording import _
from veille.config import Config
from veille.core.clock import SystemClock
from veille.core.durations import format_duration, parse_duration, parse_since
from veille.core.i18n import current_lang, tr
from veille.store.engine import read_conn


def register(group: click.Group) -> None:
    group.add_command(alerts_command)
    group.add_command(ack_command)
    group.add_command(mute_command)
    group.add_command(unmute_command)
    group.add_command(replay_command)
    group.add_command(status_command)


def _local(moment: datetime | None, config: Config) -> str:
    return moment.astimezone(config.tz).strftime("%d/%m %H:%M") if moment else ""


@click.command("alerts")
@config_option
@click.option("--client", help="Seulement ce client.")
@click.option("--since", default="7d", show_default=True, help="Depuis : durée (24h, 7d) ou date ISO.")
@click.option("--open", "open_only", is_flag=True, help="Seulement les incidents non résolus.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def alerts_command(
    config_file: str | None, client: str | None, since: str, open_only: bool, limit: int, output_format: str
) -> None:
    """Liste les incidents : état, urgence, client, premier et dernier hit, acquittements, envois."""
    from veille.store import alerts as store

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    try:
        start = parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
    engine = open_database(config)
    with read_conn(engine) as conn:
        incidents = store.list_incidents(conn, since=start, client_id=client, active_only=open_only, limit=limit)
        ids = [i.id for i in incidents if i.id is not None]
        events = store.events_for(conn, ids)
        deliveries = store.outbox_rows(conn, incident_ids=ids)
    acks: dict[int, list[str]] = {}
    for event in events:
        if event.kind in ("ack", "snooze"):
            acks.setdefault(event.incident_id, []).append(f"{event.kind} {event.contact} {_local(event.at, config)}")
    sent: dict[int, dict[str, int]] = {}
    for row in deliveries:
        counts = sent.setdefault(row.incident_id, {})
        counts[row.state] = counts.get(row.state, 0) + 1
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
                "acks": acks.get(incident.id or 0, []),
                "deliveries": sent.get(incident.id or 0, {}),
                "reasons": list(incident.reasons),
            }
        )
    if output_format == "json":
        emit(rows, list(rows[0].keys()) if rows else ["id"], "json")
        return
    if not rows:
        click.echo(tr(lang, "Aucun incident.", "No incidents."))
        return
    for row in rows:
        row["opened_at"] = _local(row["opened_at"], config)
        row["last_hit_at"] = _local(row["last_hit_at"], config)
        row["acks"] = "; ".join(row["acks"])
        row["deliveries"] = " ".join(f"{k}:{v}" for k, v in sorted(row["deliveries"].items()))
        row["cause"] = row["cause"] + (f" {row['subject']}" if row["subject"] else "")
    headers = tr(
        lang,
        "id|état|urgence|client|cause|hits|premier|dernier|acquittements|envois",
        "id|state|urgency|client|cause|hits|first|last|acks|deliveries",
    ).split("|")
    emit(
        rows,
        ["id", "status", "urgency", "client", "cause", "hits", "opened_at", "last_hit_at", "acks", "deliveries"],
        "table",
        headers=headers,
    )


@click.command("ack")
@config_option
@click.argument("incident_id", type=int)
@click.option("--contact", help="Qui prend l'incident (défaut : le premier contact).")
@click.option("--for", "snooze", metavar="DURÉE", help="Reporter (snooze) pour cette durée au lieu de l'ack standard.")
def ack_command(config_file: str | None, incident_id: int, contact: str | None, snooze: str | None) -> None:
    """Prend en charge un incident : arrête les relances et escalades (jusqu'à ack_timeout)."""
    from veille.runtime.actions import AlreadyTaken, UnknownIncident, ack

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    duration = None
    if snooze:
        try:
            duration = parse_duration(snooze)
        except ValueError as exc:
            fail(f"--for: {exc}", 2)
    who = contact or (config.alerting.contacts[0].id if config.alerting.contacts else "cli")
    if contact and config.alerting.contact(contact) is None:
        fail(tr(lang, f"contact inconnu : {contact!r}", f"unknown contact: {contact!r}"), 2)
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
        fail(tr(lang, f"incident inconnu : {incident_id}", f"unknown incident: {incident_id}"))
    if not done:
        fail(tr(lang, f"l'incident {incident_id} est déjà résolu", f"incident {incident_id} is already resolved"))
    click.echo(
        tr(
            lang,
            f"Incident #INC-{incident_id} pris en charge par {who}.",
            f"Incident #INC-{incident_id} acknowledged by {who}.",
        )
    )


@click.command("mute")
@config_option
@click.argument("client")
@click.option("--for", "duration", required=True, metavar="DURÉE", help="Durée, ex. 2h, 30m, 1d.")
@click.option("--reason", help="Pourquoi (gardé dans l'historique).")
def mute_command(config_file: str | None, client: str, duration: str, reason: str | None) -> None:
    """Coupe toutes les notifications d'un client pendant une durée (audité, survit aux redémarrages)."""
    from veille.runtime.actions import mute

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    if config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(tr(lang, f"client inconnu : {client!r} (clients : {known})", f"unknown client: {client!r} ({known})"))
    try:
        span = parse_duration(duration)
    except ValueError as exc:
        fail(f"--for: {exc}", 2)
    if span.total_seconds() <= 0:
        fail("--for: > 0", 2)
    engine = open_database(config)
    until = mute(engine, SystemClock(), client, span, actor="cli", reason=reason)
    click.echo(
        tr(
            lang,
            f"{client} : notifications coupées jusqu'au {_local(until, config)}.",
            f"{client}: muted until {_local(until, config)}.",
        )
    )


@click.command("unmute")
@config_option
@click.argument("client")
def unmute_command(config_file: str | None, client: str) -> None:
    """Réactive les notifications d'un client avant la fin de sa sourdine."""
    from veille.runtime.actions import unmute

    config = load_or_exit(config_file)
    engine = open_database(config)
    count = unmute(engine, SystemClock(), client, actor="cli")
    click.echo(
        tr(current_lang(config.lang), f"{client} : {count} sourdine(s) levée(s).", f"{client}: {count} mute(s) lifted.")
    )


def _load_scorer(config: Config) -> Any:
    from veille.core.paths import data_dir
    from veille.scoring import load_scorer

    return load_scorer(config.sentiment, data_dir=data_dir(config.database_url))


@click.command("replay")
@config_option
@click.argument("timeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--tail", default="12h", show_default=True, help="Temps simulé après le dernier hit.")
def replay_command(config_file: str | None, timeline: str, output_format: str, tail: str) -> None:
    """Rejoue une chronologie de hits (JSONL) : quelles notifications seraient parties, et qui aurait été réveillé.

    Rien n'est envoyé : le vrai scoring, la détection et l'escalade tournent sur une horloge simulée.
    """
    from veille.core.errors import VeilleError
    from veille.runtime.replay import ReplayError, read_timeline, replay

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    try:
        span = parse_duration(tail)
        lines = read_timeline(timeline)
    except (ReplayError, ValueError) as exc:
        fail(f"veille replay: {exc}", 2)
    try:
        scorer = _load_scorer(config)
    except VeilleError as exc:
        fail(f"veille replay: {exc}", 2)
    results = replay(config, lines, scorer, tail=span)
    if output_format == "json":
        for result in results:
            click.echo(json.dumps(result.as_json(config.tz), ensure_ascii=False))
        return
    rows = [
        {
            **r.as_json(config.tz),
            "at": r.at.astimezone(config.tz).strftime("%d/%m %H:%M:%S"),
            "wakes": tr(lang, "OUI", "YES") if r.wakes else ("" if r.mode != "held" else tr(lang, "résumé", "digest")),
        }
        for r in results
    ]
    headers = tr(
        lang,
        "heure|client|contact|type|urgence|réveille|incident|titre",
        "time|client|contact|kind|urgency|wakes|incident|title",
    ).split("|")
    emit(rows, ["at", "client", "contact", "kind", "urgency", "wakes", "incident", "title"], "table", headers=headers)
    woke = sum(1 for r in results if r.wakes)
    click.echo(
        tr(
            lang,
            f"{len(results)} notification(s), dont {woke} auraient réveillé le téléphone.",
            f"{len(results)} notification(s), {woke} would have woken the phone.",
        )
    )


@click.command("status")
@config_option
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status_command(config_file: str | None, output_format: str) -> None:
    """État des alertes : incidents ouverts, file d'envoi, âge du plus vieux message en attente."""
    from veille.store import alerts as store

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
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
    out.write(
        tr(
            lang,
            f"Incidents ouverts : {len(active)} (dont {data['high_urgency']} urgents)\n",
            f"Open incidents: {len(active)} ({data['high_urgency']} high urgency)\n",
        )
    )
    queue = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"
    out.write(tr(lang, f"File d'envoi : {queue}\n", f"Outbox: {queue}\n"))
    out.write(
        tr(
            lang,
            f"Plus vieux message en attente : {format_duration(age) if oldest else '-'}\n",
            f"Oldest pending message: {format_duration(age) if oldest else '-'}\n",
        )
    )
    for client, until in sorted(mutes.items()):
        out.write(
            tr(
                lang,
                f"Sourdine : {client} jusqu'au {_local(until, config)}\n",
                f"Muted: {client} until {_local(until, config)}\n",
            )
        )
