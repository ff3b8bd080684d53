"""`veille web`: serve the dashboard; `veille web passwd|users|remove`: its users."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database
from veille.config import Config
from veille.core.i18n import current_lang, tr
from veille.store.engine import read_conn, write_tx

MIN_PASSWORD = 10


def register(group: click.Group) -> None:
    group.add_command(web_group)


@click.group("web", invoke_without_command=True)
@config_option
@click.option("--host", default=None, help="Adresse d'écoute (défaut : [web] host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (défaut : [web] port, 8080).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
@click.pass_context
def web_group(ctx: click.Context, config_file: str | None, host: str | None, port: int | None, log_level: str) -> None:
    """Tableau de bord web : vue d'ensemble des clients, incidents, sources ; /metrics pour l'exploitation.

    Sans sous-commande, sert le tableau de bord (jusqu'à Ctrl-C). Créez d'abord un utilisateur avec
    `veille web passwd NOM`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from veille.core.logs import setup_logging
    from veille.core.secrets import read_secret
    from veille.web.server import serve

    config = load_or_exit(config_file)
    setup_logging(log_level.upper(), secrets=(read_secret(config.web.secret_env),))
    engine = open_database(config)
    serve(config, engine, host=host or config.web.host, port=port or config.web.port)


def _check_clients(config: Config, clients: str | None, lang: str) -> list[str] | None:
    if clients is None:
        return None
    wanted = [c.strip() for c in clients.split(",") if c.strip()]
    known = {c.id for c in config.clients}
    unknown = [c for c in wanted if c != "*" and c not in known]
    if unknown:
        fail(
            tr(
                lang,
                f"Client(s) inconnu(s) : {', '.join(unknown)} (clients du fichier : {', '.join(sorted(known))})",
                f"Unknown client(s): {', '.join(unknown)} (clients in the file: {', '.join(sorted(known))})",
            ),
            2,
        )
    return wanted


@web_group.command("passwd")
@config_option
@click.argument("name")
@click.option(
    "--clients",
    metavar="ID,ID|*",
    help="Les clients que cet utilisateur voit (défaut : ceux du contact de même identifiant).",
)
def passwd_command(config_file: str | None, name: str, clients: str | None) -> None:
    """Crée un utilisateur du tableau de bord ou change son mot de passe (haché avec argon2).

    Un utilisateur nommé comme un contact ([[contacts]] id) voit les clients de ce contact, comme sur
    Telegram ; --clients donne une autre liste. Le mot de passe est demandé deux fois (ou lu sur
    l'entrée standard).
    """
    from veille.store.users import set_password
    from veille.web.auth import hash_password, visible_clients

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    if not name or len(name) > 80 or not name.isprintable() or name.strip() != name:
        fail(tr(lang, "Nom invalide (1 à 80 caractères imprimables).", "Invalid name (1-80 printable characters)."), 2)
    chosen = _check_clients(config, clients, lang)
    password = click.prompt(
        tr(lang, "Mot de passe", "Password"),
        hide_input=True,
        confirmation_prompt=tr(lang, "Encore une fois", "Once more"),
    )
    if len(password) < MIN_PASSWORD:
        fail(
            tr(
                lang,
                f"Mot de passe trop court : au moins {MIN_PASSWORD} caractères.",
                f"Password too short: at least {MIN_PASSWORD} characters.",
            ),
            2,
        )
    engine = open_database(config)
    with write_tx(engine) as conn:
        created = set_password(
            conn, name, hash_password(password), chosen, datetime.now(UTC), keep_clients=chosen is None
        )
        from veille.store.users import get_user

        user = get_user(conn, name)
    assert user is not None
    seen = [c.id for c in visible_clients(user, config)]
    verb = tr(lang, "créé" if created else "mis à jour", "created" if created else "updated")
    click.echo(
        tr(lang, f"Utilisateur {name} {verb} ; il voit : ", f"User {name} {verb}; sees: ")
        + (", ".join(seen) or tr(lang, "aucun client (ajoutez --clients)", "no client (add --clients)"))
    )


@web_group.command("users")
@config_option
def users_command(config_file: str | None) -> None:
    """Liste les utilisateurs du tableau de bord et les clients que chacun voit."""
    from veille.store.users import list_users
    from veille.web.auth import visible_clients

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    engine = open_database(config)
    with read_conn(engine) as conn:
        users = list_users(conn)
    if not users:
        click.echo(tr(lang, "Aucun utilisateur : veille web passwd NOM", "No user: veille web passwd NAME"))
    for user in users:
        click.echo(f"{user.name}: {', '.join(c.id for c in visible_clients(user, config)) or '-'}")


@web_group.command("remove")
@config_option
@click.argument("name")
def remove_command(config_file: str | None, name: str) -> None:
    """Supprime un utilisateur du tableau de bord (ses sessions cessent aussitôt)."""
    from veille.store.users import remove_user

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    engine = open_database(config)
    with write_tx(engine) as conn:
        removed = remove_user(conn, name)
    if not removed:
        fail(tr(lang, f"Utilisateur inconnu : {name}", f"Unknown user: {name}"))
    click.echo(tr(lang, f"Utilisateur {name} supprimé.", f"User {name} removed."))
