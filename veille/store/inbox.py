"""The reply inbox in the database: conversations awaiting the client's answer, opened, closed and reopened
by the messages stored (inside the hits' write transaction), closed by hand by the community manager.

One row per (source, conversation). A customer's message that needs an answer opens it (or reopens it,
with a new waiting time); the client's own answer in the thread closes it and records how long the customer
waited; a message that needs no answer ("merci !") changes nothing. Messages are applied in time order, and
a message older than the state it would change is ignored (a late poll cannot reopen what was answered after).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from veille.store.schema_inbox import inbox, inbox_answers

EXCERPT_CHARS = 280
PLATFORM = "platform"  # closed_by: the client's own account answered on the platform


class State(StrEnum):
    WAITING = "waiting"
    ANSWERED = "answered"
    NO_REPLY = "no_reply"  # marked "pas besoin de réponse" by hand


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message of a conversation with a client, as the inbox sees it."""

    client_id: str
    source_key: str
    channel: str
    conversation: str
    at: datetime
    from_client: bool
    need: str | None  # why it needs an answer (alerting.replies.Need value); None: it needs none
    author: str | None = None
    text: str = ""
    url: str | None = None
    hit_id: int | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    client_id: str
    source_key: str
    channel: str
    conversation: str
    state: State
    need: str
    author: str | None
    excerpt: str
    url: str | None
    hit_id: int | None
    waiting_since: datetime
    last_message_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    reminded_at: datetime | None
    overdue_at: datetime | None


def _item(row: Any) -> InboxItem:
    values = dict(row._mapping)
    values["state"] = State(values["state"])
    return InboxItem(**values)


def record(conn: Connection, messages: Iterable[Message]) -> list[InboxItem]:
    """Apply stored messages to the inbox, oldest first; the items opened, reopened or closed."""
    changed: dict[int, InboxItem] = {}
    for message in sorted(messages, key=lambda m: m.at):
        if message.need is None and not message.from_client:
            continue
        row = conn.execute(
            select(inbox).where(
                inbox.c.source_key == message.source_key, inbox.c.conversation == message.conversation[:512]
            )
        ).first()
        current = _item(row) if row is not None else None
        item = _answer(conn, current, message) if message.from_client else _ask(conn, current, message)
        if item is not None:
            changed[item.id] = item
    return list(changed.values())


def _ask(conn: Connection, current: InboxItem | None, message: Message) -> InboxItem | None:
    """A customer's message that needs an answer: open, reopen, or freshen the waiting item."""
    shown = {
        "need": message.need,
        "author": message.author and message.author[:300],
        "excerpt": message.text[:EXCERPT_CHARS],
        "url": message.url,
        "hit_id": message.hit_id,
        "last_message_at": message.at,
    }
    if current is None:
        values = {
            "client_id": message.client_id,
            "source_key": message.source_key,
            "channel": message.channel,
            "conversation": message.conversation[:512],
            "state": State.WAITING.value,
            "waiting_since": message.at,
            **shown,
        }
        item_id = conn.execute(insert(inbox).values(**values).returning(inbox.c.id)).scalar_one()
        return get(conn, item_id)
    if current.state is State.WAITING:
        if message.at < current.last_message_at:
            return None
        if current.need == "complaint" and message.need != "complaint":
            shown["need"] = current.need  # a complaint stays a complaint until answered
        conn.execute(update(inbox).where(inbox.c.id == current.id).values(**shown))
        return get(conn, current.id)
    if current.closed_at is not None and message.at <= current.closed_at:
        return None  # older than the answer (a late poll): already answered
    reopen = {"state": State.WAITING.value, "waiting_since": message.at, "closed_at": None, "closed_by": None}
    conn.execute(
        update(inbox).where(inbox.c.id == current.id).values(**shown, **reopen, reminded_at=None, overdue_at=None)
    )
    return get(conn, current.id)


def _answer(conn: Connection, current: InboxItem | None, message: Message) -> InboxItem | None:
    """The client's own account answered in the thread: close the waiting item, record the wait."""
    if current is None or current.state is not State.WAITING or message.at < current.waiting_since:
        return None
    _close(conn, current, State.ANSWERED, PLATFORM, message.at)
    return get(conn, current.id)


def _close(conn: Connection, item: InboxItem, state: State, by: str, at: datetime) -> bool:
    """Close a waiting item; False if it was no longer waiting (two presses of two buttons close it once)."""
    closed = conn.execute(
        update(inbox)
        .where(inbox.c.id == item.id, inbox.c.state == State.WAITING.value)
        .values(state=state.value, closed_at=at, closed_by=by)
    )
    if closed.rowcount != 1:
        return False
    if state is State.ANSWERED:
        conn.execute(
            insert(inbox_answers).values(
                item_id=item.id,
                client_id=item.client_id,
                channel=item.channel,
                waited_since=item.waiting_since,
                answered_at=at,
                overdue=item.overdue_at is not None and item.overdue_at <= at,
            )
        )
    return True


def close_by_hand(conn: Connection, item_id: int, state: State, actor: str, now: datetime) -> InboxItem | None:
    """`veille inbox done` (answered elsewhere) or `no-reply` (pas besoin de réponse): None if no such
    waiting item."""
    current = get(conn, item_id)
    if current is None or current.state is not State.WAITING:
        return None
    if not _close(conn, current, state, actor[:200], now):
        return None
    return get(conn, item_id)


def get(conn: Connection, item_id: int) -> InboxItem | None:
    row = conn.execute(select(inbox).where(inbox.c.id == item_id)).first()
    return _item(row) if row is not None else None


def by_ids(conn: Connection, item_ids: Iterable[int]) -> list[InboxItem]:
    wanted = sorted(set(item_ids))
    if not wanted:
        return []
    return [_item(row) for row in conn.execute(select(inbox).where(inbox.c.id.in_(wanted)))]


def waiting(conn: Connection, client_ids: Sequence[str] | None = None) -> list[InboxItem]:
    """The items awaiting an answer, the longest waiting first."""
    query = select(inbox).where(inbox.c.state == State.WAITING.value)
    if client_ids is not None:
        query = query.where(inbox.c.client_id.in_(client_ids))
    return [_item(row) for row in conn.execute(query.order_by(inbox.c.waiting_since, inbox.c.id))]


def waiting_counts(conn: Connection, client_ids: Sequence[str]) -> dict[str, int]:
    """Per client, how many conversations await an answer (the dashboard's overview)."""
    query = (
        select(inbox.c.client_id, func.count())
        .where(inbox.c.state == State.WAITING.value, inbox.c.client_id.in_(list(client_ids)))
        .group_by(inbox.c.client_id)
    )
    return {client: int(count) for client, count in conn.execute(query)}


def mark(
    conn: Connection, item_id: int, *, reminded_at: datetime | None = None, overdue_at: datetime | None = None
) -> None:
    """Remember that the reminder or the overdue incident went out for this wait."""
    values = {k: v for k, v in (("reminded_at", reminded_at), ("overdue_at", overdue_at)) if v is not None}
    if values:
        conn.execute(update(inbox).where(inbox.c.id == item_id).values(**values))


def answers_between(
    conn: Connection, start: datetime, end: datetime, client_id: str | None = None
) -> list[tuple[str, str, float, bool]]:
    """(client, channel, seconds waited, past its deadline) per answer given in [start, end)."""
    query = select(
        inbox_answers.c.client_id,
        inbox_answers.c.channel,
        inbox_answers.c.waited_since,
        inbox_answers.c.answered_at,
        inbox_answers.c.overdue,
    ).where(and_(inbox_answers.c.answered_at >= start, inbox_answers.c.answered_at < end))
    if client_id is not None:
        query = query.where(inbox_answers.c.client_id == client_id)
    rows = conn.execute(query.order_by(inbox_answers.c.id))
    return [(r.client_id, r.channel, (r.answered_at - r.waited_since).total_seconds(), r.overdue) for r in rows]


def unanswered_channels(conn: Connection, client_id: str, before: datetime) -> list[tuple[str, bool]]:
    """(channel, past its deadline before `before`) of each conversation of this client still waiting that
    began before `before`."""
    query = select(inbox.c.channel, inbox.c.overdue_at).where(
        inbox.c.client_id == client_id, inbox.c.state == State.WAITING.value, inbox.c.waiting_since < before
    )
    return [(channel, overdue_at is not None and overdue_at < before) for channel, overdue_at in conn.execute(query)]
