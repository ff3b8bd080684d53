"""`veille web`: serve the dashboard; `veille web passwd|users|remove`: its users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database
from veille.cli.wording import _, group, ngettext
from veille.core.i18n import N_

if TYPE_CHECKING:
    from veille.config import Config

MIN_PASSWORD = 10


def register(group: click.Group) -> None:
    group.add_command(web_group)


@group(
    "web",
    invoke_without_command=True,
    help=N_(
        "Web dashboard: overview of the clients, incidents, sources; /metrics for operations.\n\n"
        "Without a subcommand, serves the dashboard (until Ctrl-C). First create a user with "
        "`veille web passwd NAME`."
    ),
)
@config_option
@click.option("--host", default=None, help=N_("Listening address (default: [web] host, 127.0.0.1)."))
@click.option("--port", default=None, type=click.IntRange(1, 65535), help=N_("Port (default: [web] port, 8080)."))
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning"]),
    help=N_("Log level of the server."),
)
@click.pass_context
def web_group(ctx: click.Context, config_file: str | None, host: str | None, port: int | None, log_level: str) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from veille.core.logs import setup_logging
    from veille.core.secrets import read_secret
    from veille.web.server import serve

    config = load_or_exit(config_file)
    names = (config.web.secret_env, config.web.webhook_secret_env, config.web.webhook_verify_token_env)
    setup_logging(log_level.upper(), secrets=tuple(read_secret(name) for name in names))
    engine = open_database(config)
    serve(config, engine, host=host or config.web.host, port=port or config.web.port)


def _check_clients(config: Config, clients: str | None) -> list[str] | None:
    if clients is None:
        return None
    wanted = [c.strip() for c in clients.split(",") if c.strip()]
    known = {c.id for c in config.clients}
    unknown = [c for c in wanted if c != "*" and c not in known]
    if unknown:
        message = ngettext(
            "Unknown client: {unknown} (clients in the file: {known})",
            "Unknown clients: {unknown} (clients in the file: {known})",
            len(unknown),
        )
        fail(message.format(unknown=", ".join(unknown), known=", ".join(sorted(known))), 2)
    return wanted


@web_group.command(
    "passwd",
    help=N_(
        "Create a dashboard user or change their password (hashed with argon2).\n\n"
        "A user named like a contact ([[contacts]] id) sees that contact's clients, as on Telegram; "
        "--clients gives another list. The password is asked twice (or read from standard input)."
    ),
)
@config_option
@click.argument("name")
@click.option(
    "--clients",
    metavar="ID,ID|*",
    help=N_("The clients this user sees (default: those of the contact with the same id)."),
)
def passwd_command(config_file: str | None, name: str, clients: str | None) -> None:
    from veille.store.engine import write_tx
    from veille.store.users import set_password
    from veille.web.auth import hash_password, visible_clients

    config = load_or_exit(config_file)
    if not name or len(name) > 80 or not name.isprintable() or name.strip() != name:
        fail(_("Invalid name (1-80 printable characters)."), 2)
    chosen = _check_clients(config, clients)
    password = click.prompt(_("Password"), hide_input=True, confirmation_prompt=_("Once more"))
    if len(password) < MIN_PASSWORD:
        fail(_("Password too short: at least {n} characters.").format(n=MIN_PASSWORD), 2)
    engine = open_database(config)
    with write_tx(engine) as conn:
        created = set_password(
            conn, name, hash_password(password), chosen, datetime.now(UTC), keep_clients=chosen is None
        )
        from veille.store.users import get_user

        user = get_user(conn, name)
    assert user is not None
    seen = [c.id for c in visible_clients(user, config)]
    sees = ", ".join(seen) or _("no client (add --clients)")
    done = _("User {name} created; sees: {clients}") if created else _("User {name} updated; sees: {clients}")
    click.echo(done.format(name=name, clients=sees))


@web_group.command("users", help=N_("List the dashboard's users and the clients each one sees."))
@config_option
def users_command(config_file: str | None) -> None:
    from veille.store.engine import read_conn
    from veille.store.users import list_users
    from veille.web.auth import visible_clients

    config = load_or_exit(config_file)
    engine = open_database(config)
    with read_conn(engine) as conn:
        users = list_users(conn)
    if not users:
        click.echo(_("No user: veille web passwd NAME"))
    for user in users:
        click.echo(f"{user.name}: {', '.join(c.id for c in visible_clients(user, config)) or '-'}")


@web_group.command("remove", help=N_("Remove a dashboard user (their sessions end at once)."))
@config_option
@click.argument("name")
def remove_command(config_file: str | None, name: str) -> None:
    from veille.store.engine import write_tx
    from veille.store.users import remove_user

    config = load_or_exit(config_file)
    engine = open_database(config)
    with write_tx(engine) as conn:
        removed = remove_user(conn, name)
    if not removed:
        fail(_("Unknown user: {name}").format(name=name))
    click.echo(_("User {name} removed.").format(name=name))
