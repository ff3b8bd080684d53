"""`veille inbox`: the conversations awaiting the client's answer, oldest first; `done` and `no-reply` close one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from veille.cli.common import config_option, emit, fail, format_option, load_or_exit, open_database
from veille.cli.wording import _, group
from veille.core.durations import format_duration
from veille.core.i18n import N_

if TYPE_CHECKING:
    from veille.config import Config
    from veille.store.inbox import InboxItem


def register(cli: click.Group) -> None:
    cli.add_command(inbox_group)


def _row(item: InboxItem, config: Config, now: datetime) -> dict[str, Any]:
    from veille.runtime.inbox import deadline_of

    deadline = deadline_of(item, config)
    return {
        "id": item.id,
        "client": item.client_id,
        "channel": item.channel,
        "author": item.author or "",
        "excerpt": item.excerpt,
        "need": item.need,
        "waiting_since": item.waiting_since,
        "waiting_for": format_duration(now - item.waiting_since),
        "deadline": deadline,
        "overdue": deadline is not None and now >= deadline,
        "url": item.url or "",
        "source": item.source_key,
    }


@group(
    "inbox",
    invoke_without_command=True,
    help=N_(
        "Messages, comments and reviews awaiting the client's answer, the longest waiting first. "
        "'veille inbox done ID' when answered elsewhere, 'veille inbox no-reply ID' when no answer is needed."
    ),
)
@config_option
@click.option("--client", help=N_("Only this client."))
@click.option("--overdue", is_flag=True, help=N_("Only what is past its deadline."))
@format_option
@click.pass_context
def inbox_group(
    ctx: click.Context, config_file: str | None, client: str | None, overdue: bool, output_format: str
) -> None:
    ctx.ensure_object(dict)["config_file"] = config_file
    if ctx.invoked_subcommand is not None:
        return
    from veille.store import inbox as inbox_store
    from veille.store.engine import read_conn

    config = load_or_exit(config_file)
    if client is not None and config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(_("unknown client: {client} (clients: {known})").format(client=repr(client), known=known), 2)
    engine = open_database(config)
    with read_conn(engine) as conn:
        items = inbox_store.waiting(conn, [client] if client else None)
    engine.dispose()
    now = datetime.now(UTC)
    rows = [r for r in (_row(item, config, now) for item in items) if r["overdue"] or not overdue]
    columns = ["id", "client", "channel", "author", "excerpt", "waiting_for", "deadline", "url"]
    from veille.core.models import Channel

    if output_format != "table":
        emit(rows, [*columns, "waiting_since", "overdue", "need", "source"], output_format)
        return
    if not rows:
        click.echo(_("Nothing awaits an answer."))
        return
    for row in rows:
        deadline = row["deadline"]
        row["deadline"] = deadline.astimezone(config.tz).strftime("%d/%m %H:%M") if deadline else ""
        if row["overdue"]:
            row["deadline"] += " " + _("(overdue)")
        row["channel"] = _(Channel(row["channel"]).label)
    headers = [
        _("id"),
        _("client"),
        _("channel"),
        _("author"),
        _("excerpt"),
        _("waiting for"),
        _("deadline"),
        _("link"),
    ]
    emit(rows, columns, "table", headers=headers, flexible="excerpt", max_widths={"url": 40, "author": 20})


def _close(ctx: click.Context, config_file: str | None, item_id: int, answered: bool) -> None:
    from veille.store import inbox as inbox_store
    from veille.store.engine import write_tx

    config = load_or_exit(config_file or ctx.obj.get("config_file"))
    engine = open_database(config)
    state = inbox_store.State.ANSWERED if answered else inbox_store.State.NO_REPLY
    with write_tx(engine) as conn:
        closed = inbox_store.close_by_hand(conn, item_id, state, "cli", datetime.now(UTC))
    engine.dispose()
    if closed is None:
        fail(_("No waiting conversation #{id}: see 'veille inbox'.").format(id=item_id))
    message = _("#{id} marked answered.") if answered else _("#{id} marked: no answer needed.")
    click.echo(message.format(id=item_id))


@inbox_group.command("done", help=N_("Mark a conversation answered (answered elsewhere: phone, in person)."))
@config_option
@click.argument("item_id", type=int)
@click.pass_context
def done_command(ctx: click.Context, config_file: str | None, item_id: int) -> None:
    _close(ctx, config_file, item_id, answered=True)


@inbox_group.command("no-reply", help=N_("Mark a conversation as needing no answer."))
@config_option
@click.argument("item_id", type=int)
@click.pass_context
def no_reply_command(ctx: click.Context, config_file: str | None, item_id: int) -> None:
    _close(ctx, config_file, item_id, answered=False)
