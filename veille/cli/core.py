"""Core commands: run, hits, sources, config check, db upgrade, health."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

import click

from veille.cli.common import (
    LOG_LEVEL_KEY,
    LOG_LEVELS,
    config_option,
    emit,
    fail,
    format_option,
    load_or_exit,
    open_database,
)
from veille.config import describe_secrets, runtime_problems
from veille.core.durations import format_duration, parse_since
from veille.core.errors import ConfigError, SchemaVersionError, SecretMissing, VeilleError
from veille.core.i18n import N_, current_lang, tr
from veille.store.engine import make_engine, read_conn

log = logging.getLogger("veille.cli")


def register(group: click.Group) -> None:
    group.add_command(run)
    group.add_command(hits)
    group.add_command(sources_command)
    group.add_command(config_group)
    group.add_command(db_group)
    group.add_command(health)


@click.command()
@config_option
@click.option("--once", is_flag=True, help="Interroge chaque source une fois, enregistre, puis quitte (cron).")
@click.option(
    "--log-level",
    default=None,
    help=N_("Default: the root option's (veille --log-level ...), else INFO."),
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
)
def run(config_file: str | None, once: bool, log_level: str | None) -> None:
    """Lance le démon de veille (arrêt propre sur SIGTERM/Ctrl-C)."""
    from veille.core.logs import setup_logging
    from veille.core.secrets import read_secret
    from veille.runtime.daemon import run_daemon
    from veille.runtime.once import run_once

    config = load_or_exit(config_file)
    level = (log_level or click.get_current_context().meta.get(LOG_LEVEL_KEY) or "INFO").upper()
    setup_logging(level, secrets=tuple(read_secret(name) for _, name, _ in describe_secrets(config)))
    lang = current_lang(config.lang)
    try:
        if once:
            results = asyncio.run(run_once(config))
            failed = [r for r in results if r.error is not None]
            for r in results:
                status = (
                    f"ERREUR {r.error.kind.value}: {r.error.message}"
                    if r.error
                    else tr(lang, f"ok, {r.new_hits} nouveau(x) hit(s)", f"ok, {r.new_hits} new hit(s)")
                )
                click.echo(f"{r.runtime.config.key}: {status}")
            sys.exit(1 if failed else 0)
        from veille.web.server import attach_to_daemon

        sys.exit(asyncio.run(run_daemon(config, extensions=[attach_to_daemon])))
    except (SchemaVersionError, ConfigError, SecretMissing) as exc:
        fail(f"veille: {exc}", 2)
    except VeilleError as exc:  # anything else veille refuses to start with, said in one line
        fail(f"veille: {exc}", 1)


def _since(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_since(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command()
@config_option
@click.option("--client", help="Identifiant du client (ex. resto).")
@click.option("--source", help="Source : clé, type (rss, mastodon...) ou partie de l'URL.")
@click.option("--since", help="Depuis : durée (24h, 7d) ou date ISO (2026-11-01).")
@click.option("--until", help="Jusqu'à : durée ou date ISO.")
@click.option("--search", help="Texte à chercher (titre, texte, auteur).")
@click.option("--label", type=click.Choice(["neg", "neu", "pos"]), help="Sentiment.")
@click.option("--incident", type=int, metavar="ID", help="Les hits d'un incident (période et client de l'incident).")
@click.option("--all", "include_duplicates", is_flag=True, help="Inclure les doublons liés d'autres sources.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@format_option
def hits(
    config_file: str | None,
    client: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
    label: str | None,
    incident: int | None,
    include_duplicates: bool,
    limit: int,
    output_format: str,
) -> None:
    """Liste les hits trouvés, les plus récents d'abord."""
    from veille.store.hits import HitQuery, query_hits

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    if client and config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(tr(lang, f"client inconnu : {client!r} (clients : {known})", f"unknown client: {client!r} ({known})"))
    if search is not None and len(search) > 500:
        fail(tr(lang, "--search : 500 caractères au plus", "--search: 500 characters at most"))
    query = HitQuery(
        client_id=client,
        source=source,
        since=_since(since, "--since"),
        until=_since(until, "--until"),
        search=search,
        label=label,
        include_duplicates=include_duplicates,
        limit=limit,
    )
    engine = open_database(config)
    if incident is not None:
        query = _incident_query(engine, incident, query, lang)
    with read_conn(engine) as conn:
        rows = query_hits(conn, query)
    columns = [
        "id",
        "fetched_at",
        "client_id",
        "kind",
        "author",
        "sentiment_label",
        "sentiment_score",
        "title",
        "text",
        "url",
        "published_at",
        "source_key",
        "author_followers",
        "direct",
        "duplicate_of",
    ]
    if output_format == "table":
        for row in rows:
            row["text"] = _shorten(row["text"], 160)
            row["fetched_at"] = row["fetched_at"].astimezone(config.tz).strftime("%d/%m %H:%M")
            row["sentiment"] = (
                f"{row['sentiment_label']} {row['sentiment_score']:+.2f}" if row["sentiment_label"] else ""
            )
        headers = tr(
            lang,
            "id|vu le|client|source|auteur|sentiment|texte|lien",
            "id|seen|client|source|author|sentiment|text|link",
        ).split("|")
        emit(
            rows,
            ["id", "fetched_at", "client_id", "kind", "author", "sentiment", "text", "url"],
            "table",
            headers=headers,
            styles={"sentiment": _sentiment_style},
        )
        return
    emit(rows, columns, output_format)


def _incident_query(engine: Any, incident_id: int, query: Any, lang: str) -> Any:
    """Narrow a hit query to an incident's client and period (from an hour before it opened)."""
    from dataclasses import replace

    from veille.store.alerts import INCIDENT_LEAD, get_incident

    with read_conn(engine) as conn:
        found = get_incident(conn, incident_id)
    if found is None:
        fail(tr(lang, f"incident inconnu : {incident_id}", f"unknown incident: {incident_id}"))
    return replace(
        query,
        client_id=found.client_id,
        since=query.since or found.opened_at - INCIDENT_LEAD,
        until=query.until or found.resolved_at,
    )


def _sentiment_style(value: Any) -> str:
    text = str(value or "")
    return "red" if text.startswith("neg") else "green" if text.startswith("pos") else ""


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("sources")
@config_option
@click.option("--client", help="Seulement ce client.")
@click.option("--broken", is_flag=True, help="Seulement les sources en erreur.")
@format_option
def sources_command(config_file: str | None, client: str | None, broken: bool, output_format: str) -> None:
    """État de chaque source : statut, dernier succès, erreurs, hits, prochain passage."""
    from veille.sources.registry import DRIVERS, get_driver
    from veille.store.sources import list_sources

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    if client and config.client(client) is None:
        fail(tr(lang, f"client inconnu : {client!r}", f"unknown client: {client!r}"))
    engine = open_database(config)
    with read_conn(engine) as conn:
        rows = list_sources(conn, client_id=client, broken=broken)
    now = datetime.now(UTC)
    for row in rows:  # a driver's own note in the reader's language (a moved feed...)
        if row["kind"] in DRIVERS:
            row["note"] = get_driver(row["kind"]).describe_state(row["cursor"], row["target"], lang) or row["note"]
    columns = [
        "client_id",
        "kind",
        "target",
        "status",
        "last_success_at",
        "consecutive_errors",
        "last_error_kind",
        "last_error_message",
        "hits_count",
        "next_poll_at",
        "note",
        "key",
        "lease_owner",
    ]
    if output_format != "table":
        emit(rows, columns, output_format)
        return
    for row in rows:
        row["last_success_at"] = _ago(row["last_success_at"], now, lang)
        nxt = row["next_poll_at"]
        row["next_poll_at"] = (
            tr(lang, "dès que possible", "as soon as possible")
            if nxt is None or nxt <= now
            else tr(lang, "dans ", "in ") + format_duration(nxt - now)
        )
        row["error"] = f"{row['last_error_kind']}: {row['last_error_message']}" if row["last_error_kind"] else ""
        row["status"] = _status_label(row["status"] if row["enabled"] else "disabled", lang)
        if not row["enabled"]:
            row["next_poll_at"] = "-"
    headers = tr(
        lang,
        "client|type|cible|statut|dernier succès|erreurs|dernière erreur|hits|prochain|note",
        "client|kind|target|status|last success|errors|last error|hits|next poll|note",
    ).split("|")
    emit(
        rows,
        [
            "client_id",
            "kind",
            "target",
            "status",
            "last_success_at",
            "consecutive_errors",
            "error",
            "hits_count",
            "next_poll_at",
            "note",
        ],
        "table",
        headers=headers,
    )


_STATUS_FR = {
    "ok": "ok",
    "new": "nouvelle",
    "failing": "en échec",
    "backing_off": "en attente (backoff)",
    "rate_limited": "limitée (rate limit)",
    "auth_failed": "identifiants refusés",
    "gone": "disparue",
    "disabled": "désactivée (enabled = false)",
}


def _status_label(status: str, lang: str) -> str:
    return _STATUS_FR.get(status, status) if lang == "fr" else status.replace("_", " ")


def _ago(moment: datetime | None, now: datetime, lang: str) -> str:
    if moment is None:
        return tr(lang, "jamais", "never")
    return tr(lang, f"il y a {format_duration(now - moment)}", f"{format_duration(now - moment)} ago")


@click.group("config")
def config_group() -> None:
    """Vérifier la configuration."""


@config_group.command("check")
@config_option
@click.option("--show", is_flag=True, help="Affiche la configuration validée (secrets masqués : ***).")
def config_check(config_file: str | None, show: bool) -> None:
    """Signale tous les problèmes d'un coup (chemin pointé + correction) ; code 2 si invalide."""
    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    problems = runtime_problems(config)
    for where, name, is_set in describe_secrets(config):
        if where == "telegram.token_env" and not is_set:
            click.echo(
                tr(
                    lang,
                    f"info : {name} n'est pas défini : les alertes s'afficheront dans la console",
                    f"info: {name} is not set: alerts will be printed to the console",
                )
            )
    if show:
        click.echo(json.dumps(_redacted(config), ensure_ascii=False, indent=2, default=str))
    if problems:
        click.echo(f"{config.path}: {len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    click.echo(
        tr(
            lang,
            f"{config.path} : configuration valide ({len(config.clients)} clients, {len(config.sources)} sources)",
            f"{config.path}: valid ({len(config.clients)} clients, {len(config.sources)} sources)",
        )
    )


def _redacted(value: Any) -> Any:
    """The config as plain data; secrets are only ever names, and values are shown as ***."""
    if is_dataclass(value) and not isinstance(value, type):
        data = {}
        for key, item in asdict(value).items():
            data[key] = _redacted(item)
            if key.endswith("_env") and item:
                data[key] = f"{item} (=***)"
        return data
    if isinstance(value, dict):
        return {k: (f"{v} (=***)" if k.endswith("_env") and v else _redacted(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


@click.group("db")
def db_group() -> None:
    """Base de données : migrations."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config_file: str | None) -> None:
    """Applique les migrations Alembic (SQLite ou PostgreSQL)."""
    from veille.store.migrate import database_heads, upgrade

    config = load_or_exit(config_file)
    engine = make_engine(config.database_url)
    upgrade(engine)
    click.echo(
        tr(current_lang(config.lang), "base à jour : ", "database at revision: ")
        + ", ".join(sorted(database_heads(engine)))
    )


@db_group.command("current")
@config_option
def db_current(config_file: str | None) -> None:
    """Affiche la révision de la base et celle du code."""
    from veille.store.migrate import code_heads, database_heads

    config = load_or_exit(config_file)
    engine = make_engine(config.database_url)
    click.echo(f"database: {', '.join(sorted(database_heads(engine))) or '(empty)'}")
    click.echo(f"code:     {', '.join(sorted(code_heads()))}")


@click.command()
@config_option
def health(config_file: str | None) -> None:
    """Code 0 si le démon est en bonne santé, 1 sinon (HEALTHCHECK Docker)."""
    from veille.runtime.health import check_health, health_path

    config = load_or_exit(config_file)
    problems = check_health(health_path(config), datetime.now(UTC))
    if problems:
        for problem in problems:
            click.echo(f"unhealthy: {problem}", err=True)
        sys.exit(1)
    click.echo("healthy")
