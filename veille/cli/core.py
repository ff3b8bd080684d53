"""Core commands: run, hits, sources, config check, db upgrade, health."""

from __future__ import annotations

import gc
import json
import logging
import re
import sys
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    short_link,
    wide_option,
)
from veille.cli.wording import _, cli_wording, command, group, ngettext, text
from veille.core.durations import format_duration, parse_since
from veille.core.errors import ConfigError, SchemaVersionError, SecretMissing, VeilleError
from veille.core.i18n import N_
from veille.core.models import SOURCE_STATUS_WORDS, error_kind_label

if TYPE_CHECKING:
    from veille.config import Config

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from veille.store.hits import HitQuery

log = logging.getLogger("veille.cli")


def register(group: click.Group) -> None:
    group.add_command(run)
    group.add_command(hits)
    group.add_command(sources_command)
    group.add_command(config_group)
    group.add_command(db_group)
    group.add_command(health)
    group.add_command(daemons_command)


@command(help=N_("Run the listening daemon (clean stop on SIGTERM/Ctrl-C)."))
@config_option
@click.option("--once", is_flag=True, help=N_("Poll every source once, store, send the alerts due, then exit (cron)."))
@click.option(
    "--log-level",
    default=None,
    help=N_("Default: the root option's (veille --log-level ...), else INFO."),
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
)
def run(config_file: str | None, once: bool, log_level: str | None) -> None:
    import asyncio

    from veille.config import describe_secrets
    from veille.core.logs import setup_logging
    from veille.core.secrets import read_secret

    # The start-up (imports, the config's sources) builds some 130,000 objects that live until the exit: the cyclic
    # collector ran over them as they came, then every full collection of the run did again (100 to 150 ms of a
    # warm `veille run --once` of 1,000 feeds, 50 with this). They are frozen out of its sight once built; the
    # few hundred cyclic leftovers of the start-up (about 100 KB) are never freed.
    collecting = gc.isenabled()
    gc.disable()
    try:
        config = load_or_exit(config_file)
        _exit_on_problems(config)  # what `veille config check` refuses never starts
        level = (log_level or click.get_current_context().meta.get(LOG_LEVEL_KEY) or "INFO").upper()
        setup_logging(level, secrets=tuple(read_secret(name) for _, name, _ in describe_secrets(config)))
        if once:  # cron's path imports neither the scheduler nor the web service
            from veille.runtime.once import run_once
        else:
            from veille.runtime.daemon import run_daemon
            from veille.web.server import attach_to_daemon
    finally:
        if collecting:
            gc.freeze()
            gc.enable()
    try:
        if once:
            results = asyncio.run(run_once(config))
            failed = [r for r in results if r.error is not None]
            for r in results:
                status = (
                    _("ERROR {kind}: {message}").format(kind=text(r.error.kind.label), message=text(r.error.message))
                    if r.error
                    else ngettext("ok, {n} new hit", "ok, {n} new hits", r.new_hits).format(n=r.new_hits)
                )
                click.echo(f"{r.runtime.config.key}: {status}")
            sys.exit(1 if failed else 0)
        sys.exit(asyncio.run(run_daemon(config, extensions=[attach_to_daemon])))
    except (SchemaVersionError, ConfigError, SecretMissing) as exc:
        fail(f"veille: {text(str(exc))}", 2)
    except VeilleError as exc:  # anything else veille refuses to start with, said in one line
        fail(f"veille: {text(str(exc))}", 1)


def _since(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_since(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(text(str(exc)), param_hint=option) from None


_LANG = re.compile(r"^[a-z]{2,3}$")


def _lang_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An ISO 639-1 code or 'unscored' (checked here: the detector's list lives with its model, not imported)."""
    if value is None:
        return None
    value = value.strip().lower()
    if value != "unscored" and not _LANG.match(value):
        raise click.BadParameter(_("write a language code such as fr, en, es, de, or unscored"))
    return value


@command(help=N_("List the hits found, most recent first."))
@config_option
@click.option("--client", help=N_("Client id (e.g. resto)."))
@click.option("--source", help=N_("Source: key, kind (rss, mastodon...) or part of the URL."))
@click.option("--since", help=N_("Since: a duration (24h, 7d) or an ISO date (2026-11-01)."))
@click.option("--until", help=N_("Until: a duration or an ISO date."))
@click.option("--search", help=N_("Text to look for (title, text, author)."))
@click.option("--label", type=click.Choice(["neg", "neu", "pos"]), help=N_("Sentiment."))
@click.option(
    "--lang",
    metavar="fr|en|es|...|unscored",
    callback=_lang_option,
    help=N_("Language of the post (fr, en, es, de...), or unscored: the posts left without a sentiment."),
)
@click.option("--incident", type=int, metavar="ID", help=N_("The hits of an incident (its client and period)."))
@click.option("--all", "include_duplicates", is_flag=True, help=N_("Include linked duplicates from other sources."))
@wide_option
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help=N_("At most this many rows.")
)
@format_option
def hits(
    config_file: str | None,
    client: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
    label: str | None,
    lang: str | None,
    incident: int | None,
    include_duplicates: bool,
    wide: bool,
    limit: int,
    output_format: str,
) -> None:
    from veille.store.engine import read_conn
    from veille.store.hits import HitQuery, query_hits

    config = load_or_exit(config_file)
    if client and config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(_("unknown client: {client} (clients: {known})").format(client=repr(client), known=known))
    if search is not None and len(search) > 500:
        fail(_("--search: 500 characters at most"))
    query = HitQuery(
        client_id=client,
        source=source,
        since=_since(since, "--since"),
        until=_since(until, "--until"),
        search=search,
        label=label,
        lang=lang,
        include_duplicates=include_duplicates,
        limit=limit,
    )
    engine = open_database(config)
    if incident is not None:
        query = _incident_query(engine, incident, query)
    with read_conn(engine) as conn:
        rows: list[dict[str, Any]] = [dict(hit) for hit in query_hits(conn, query)]
    columns = [
        "id",
        "fetched_at",
        "client_id",
        "kind",
        "author",
        "sentiment_label",
        "sentiment_score",
        "sentiment_lang",
        "title",
        "text",
        "url",
        "published_at",
        "source_key",
        "author_followers",
        "direct",
        "private",
        "thread_id",
        "parent_id",
        "duplicate_of",
    ]
    if output_format == "table":
        _hits_table(rows, config, wide=wide, one_client=bool(client) or len(config.clients) == 1)
        return
    emit(rows, columns, output_format)


def _hits_table(rows: list[dict[str, Any]], config: Config, *, wide: bool, one_client: bool) -> None:
    """80 columns and up: one line per hit, its title first, the link as host/path; --wide: every field."""
    if not rows:
        click.echo(_("No hits."))
        return
    for row in rows:
        row["fetched_at"] = row["fetched_at"].astimezone(config.tz).strftime("%d/%m %H:%M")
        row["sentiment"] = _sentiment_text(row)
        body = " ".join(row["text"].split())
        row["hit"] = f"{row['title']} — {body}" if row["title"] and body else row["title"] or body
        row["link"] = short_link(row["url"])
    if wide:
        columns = ["id", "fetched_at", "client_id", "kind", "author", "sentiment", "title", "text", "url"]
        headers = [_("id"), _("seen"), _("client"), _("source"), _("author"), _("sentiment"), _("title"), _("text")]
        emit(rows, columns, "table", headers=[*headers, _("link")], styles={"sentiment": _sentiment_style}, wide=True)
        return
    columns = ["id", "fetched_at", *([] if one_client else ["client_id"]), "sentiment", "hit", "link"]
    headers = [_("id"), _("seen"), *([] if one_client else [_("client")]), _("sentiment"), _("title / text"), _("link")]
    emit(
        rows,
        columns,
        "table",
        headers=headers,
        styles={"sentiment": _sentiment_style},
        max_widths={"client_id": 10, "link": 22},
        flexible="hit",
    )


def _incident_query(engine: Engine, incident_id: int, query: HitQuery) -> HitQuery:
    """Narrow a hit query to an incident's client and period (from an hour before it opened)."""
    from dataclasses import replace

    from veille.store.alerts import INCIDENT_LEAD, get_incident
    from veille.store.engine import read_conn

    with read_conn(engine) as conn:
        found = get_incident(conn, incident_id)
    if found is None:
        fail(_("unknown incident: {id}").format(id=incident_id))
    return replace(
        query,
        client_id=found.client_id,
        since=query.since or found.opened_at - INCIDENT_LEAD,
        until=query.until or found.resolved_at,
    )


def _sentiment_text(row: dict[str, Any]) -> str:
    """'neg -0.80', 'unscored (es)' for a post in a language veille does not score, '' before scoring."""
    if row["sentiment_label"]:
        return f"{row['sentiment_label']} {row['sentiment_score']:+.2f}"
    if row["scored_at"] is not None and row["sentiment_lang"]:
        return _("unscored ({lang})").format(lang=row["sentiment_lang"])
    return ""


def _sentiment_style(value: Any) -> str:
    label = str(value or "")
    return "red" if label.startswith("neg") else "green" if label.startswith("pos") else ""


@command("sources", help=N_("Each source's state: status, last success, errors, hits, next poll."))
@config_option
@click.option("--client", help=N_("Only this client."))
@click.option("--broken", is_flag=True, help=N_("Only the failing sources."))
@wide_option
@format_option
def sources_command(config_file: str | None, client: str | None, broken: bool, wide: bool, output_format: str) -> None:
    from veille.sources.registry import DRIVERS, get_driver
    from veille.store.engine import read_conn
    from veille.store.sources import list_sources

    config = load_or_exit(config_file)
    lang = cli_wording().lang
    if client and config.client(client) is None:
        fail(_("unknown client: {client}").format(client=repr(client)))
    engine = open_database(config)
    with read_conn(engine) as conn:
        rows: list[dict[str, Any]] = [dict(row) for row in list_sources(conn, client_id=client, broken=broken)]
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
    if not rows:
        click.echo(_("No failing sources.") if broken else _("No sources."))
        return
    for row in rows:
        row["last_success_at"] = _ago(row["last_success_at"], now)
        nxt = row["next_poll_at"]
        row["next_poll_at"] = (
            _("as soon as possible")
            if nxt is None or nxt <= now
            else _("in {duration}").format(duration=format_duration(nxt - now))
        )
        row["error"] = (
            _("{kind}: {message}").format(
                kind=_(error_kind_label(row["last_error_kind"])), message=text(row["last_error_message"])
            )
            if row["last_error_kind"]
            else ""
        )
        row["status"] = _(_STATUS[row["status"] if row["enabled"] else "disabled"])
        row["note"] = text(row["note"] or "")
        if not row["enabled"]:
            row["next_poll_at"] = "-"
    if wide:
        headers = [
            _("client"),
            _("kind"),
            _("target"),
            _("status"),
            _("last success"),
            _("errors"),
            _("last error"),
            _("hits"),
            _("next poll"),
            _("note"),
        ]
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
            wide=True,
        )
        return
    for row in rows:  # 80 columns: the error count with the status; the error, note and last success last
        if row["consecutive_errors"]:
            row["status"] = f"{row['status']} ({row['consecutive_errors']})"
        row["target"] = short_link(row["target"])
        success = _("last success {when}").format(when=row["last_success_at"])
        row["about"] = " · ".join(part for part in (row["error"], row["note"], success) if part)
    emit(
        rows,
        ["client_id", "kind", "target", "status", "about"],
        "table",
        headers=[_("client"), _("kind"), _("target"), _("status"), _("error, note, last success")],
        max_widths={"client_id": 10, "kind": 9, "target": 24, "status": 16},
        flexible="about",
    )


_STATUS = {**SOURCE_STATUS_WORDS, "disabled": N_("disabled (enabled = false)")}


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return _("never")
    return _("{duration} ago").format(duration=format_duration(now - moment))


@group("config", help=N_("Check the configuration."))
def config_group() -> None:
    pass


@config_group.command(
    "check", help=N_("Report every problem at once (where, and how to fix it); exit code 2 when invalid.")
)
@config_option
@click.option("--show", is_flag=True, help=N_("Show the validated configuration (secrets masked: ***)."))
def config_check(config_file: str | None, show: bool) -> None:
    from veille.config import describe_secrets, runtime_problems

    config = load_or_exit(config_file)
    problems = runtime_problems(config)
    for where, name, is_set in describe_secrets(config):
        if where == "telegram.token_env" and not is_set:
            click.echo(_("info: {name} is not set: alerts will be printed to the console").format(name=name))
    if show:
        click.echo(json.dumps(_redacted(config), ensure_ascii=False, indent=2, default=str))
    _exit_on_problems(config, problems)
    click.echo(
        _("{file}: valid ({clients} clients, {sources} sources)").format(
            file=config.path, clients=len(config.clients), sources=len(config.sources)
        )
    )


def _exit_on_problems(config: Config, problems: list[str] | None = None) -> None:
    """Exit 2 listing what `veille config check` refuses (forbidden source addresses, unset source secrets):
    check, run and run --once refuse the same files."""
    from veille.config import runtime_problems

    problems = runtime_problems(config) if problems is None else problems
    if problems:
        count = len(problems)
        click.echo(
            ngettext("{file}: {n} problem:", "{file}: {n} problems:", count).format(file=config.path, n=count), err=True
        )
        for problem in problems:
            click.echo(f"  - {text(str(problem))}", err=True)
        sys.exit(2)


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


@group("db", help=N_("Database: migrations."))
def db_group() -> None:
    pass


@db_group.command("upgrade", help=N_("Apply the Alembic migrations (SQLite or PostgreSQL)."))
@config_option
def db_upgrade(config_file: str | None) -> None:
    from veille.store.engine import make_engine
    from veille.store.migrate import database_heads, upgrade

    config = load_or_exit(config_file)
    engine = make_engine(config.database_url)
    upgrade(engine)
    click.echo(_("database at revision: {revisions}").format(revisions=", ".join(sorted(database_heads(engine)))))


@db_group.command("current", help=N_("Show the database's revision and the code's."))
@config_option
def db_current(config_file: str | None) -> None:
    from veille.store.engine import make_engine
    from veille.store.migrate import code_heads, database_heads

    config = load_or_exit(config_file)
    engine = make_engine(config.database_url)
    click.echo(_("database: {revisions}").format(revisions=", ".join(sorted(database_heads(engine))) or _("(empty)")))
    click.echo(_("code: {revisions}").format(revisions=", ".join(sorted(code_heads()))))


@command(help=N_("Exit code 0 when the daemon is healthy, 1 otherwise (Docker HEALTHCHECK)."))
@config_option
def health(config_file: str | None) -> None:
    from veille.runtime.health import check_health, health_path

    config = load_or_exit(config_file)
    problems = check_health(health_path(config), datetime.now(UTC))
    if problems:
        for problem in problems:
            click.echo(_("unhealthy: {problem}").format(problem=text(problem)), err=True)
        sys.exit(1)
    click.echo(_("healthy"))


@command("daemons", help=N_("The daemons sharing the sources: share, sources held, last renewal, version."))
@config_option
@format_option
def daemons_command(config_file: str | None, output_format: str) -> None:
    from veille.store.engine import read_conn
    from veille.store.leases import all_daemons

    config = load_or_exit(config_file)
    engine = open_database(config)
    with read_conn(engine) as conn:
        rows = all_daemons(conn)
    engine.dispose()
    now = datetime.now(UTC)
    live = [r for r in rows if r.renewed_at > now - config.daemon.lease]
    total = sum(r.capacity for r in live)
    table: list[dict[str, Any]] = [
        {
            "owner": r.owner,
            "host": r.host,
            "pid": r.pid,
            "version": r.version,
            "capacity": r.capacity,
            "share": round(r.capacity / total, 3) if r in live and total else 0.0,
            "held": r.held,
            "live": r in live,
            "started_at": r.started_at,
            "renewed_at": r.renewed_at,
        }
        for r in rows
    ]
    if output_format != "table":
        emit(table, list(table[0]) if table else ["owner"], output_format)
        return
    if not table:
        click.echo(_("No daemon has run on this database yet."))
        return
    for row in table:
        row["share"] = f"{float(row['share']):.0%}"
        row["live"] = _("running") if row["live"] else _("silent")
        row["renewed_at"] = _ago(row["renewed_at"], now)
    headers = [_("daemon"), _("state"), _("share"), _("sources held"), _("capacity"), _("last renewal"), _("version")]
    emit(
        table,
        ["owner", "live", "share", "held", "capacity", "renewed_at", "version"],
        output_format,
        headers=headers,
        flexible="owner",  # one line per daemon in 80 columns: the owner id is cut first
    )
