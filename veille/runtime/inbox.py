"""The reply inbox, wired: every new hit addressed to a client goes through the "needs an answer" rules and
into the inbox, in the hits' own write transaction (a crash loses neither or both); the alerting tick turns
waiting conversations into reminder and overdue signals (alerting.deadlines)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from veille.alerting import deadlines as deadline_rules
from veille.alerting.deadlines import Wait
from veille.config import Config
from veille.core.incidents import Cause, Incident, Signal
from veille.core.models import Channel, StoredHit
from veille.notify.digest import Awaiting
from veille.sources.registry import leading_mentions_address, sees_own_answers
from veille.store import inbox as inbox_store


def inbox_messages(hits: Sequence[StoredHit]) -> list[inbox_store.Message]:
    """The hits the inbox follows (addressed to the client, first copy only, from a kind of source that shows
    the client's own answers: nothing else could close its conversations) as inbox messages."""
    # Here, not at the top: its rules compile about 20 ms of patterns at import, which a `veille run --once` over
    # feeds (no kind of source that shows the client's answers) never uses.
    from veille.alerting.replies import Need, needs_answer_reason

    messages = []
    for hit in hits:
        if hit.channel is None or hit.conversation is None or hit.duplicate_of is not None:
            continue
        if not sees_own_answers(hit.kind):
            continue
        text = f"{hit.title}\n{hit.text}".strip()
        need = (
            None if hit.from_client else needs_answer_reason(text, tags_friends=not leading_mentions_address(hit.kind))
        )
        messages.append(
            inbox_store.Message(
                client_id=hit.client_id,
                source_key=hit.source_key,
                channel=hit.channel.value,
                conversation=hit.conversation,
                at=hit.published_at,
                from_client=hit.from_client,
                need=need.value if need is not None and need is not Need.NONE else None,
                author=hit.author,
                text=hit.text or hit.title,
                url=hit.url,
                hit_id=hit.id,
            )
        )
    return messages


def record_hits(conn: Connection, hits: Sequence[StoredHit]) -> list[inbox_store.InboxItem]:
    """Open, reopen or close the inbox items these new hits concern."""
    return inbox_store.record(conn, inbox_messages(hits))


def deadline_of(item: inbox_store.InboxItem, config: Config) -> datetime | None:
    """When the item is overdue: its channel's deadline for its client (`veille inbox`, the dashboard)."""
    client = config.client(item.client_id)
    if client is None:
        return None
    return deadline_rules.due_times(item.waiting_since, Channel(item.channel), client.inbox, config.tz)[1]


def _wait(item: inbox_store.InboxItem) -> Wait:
    from veille.alerting.replies import Need

    return Wait(
        item_id=item.id,
        client_id=item.client_id,
        channel=Channel(item.channel),
        waiting_since=item.waiting_since,
        complaint=item.need == Need.COMPLAINT.value,
        waiting=item.state is inbox_store.State.WAITING,
        author=item.author,
        excerpt=item.excerpt,
    )


def reply_signals(
    conn: Connection, config: Config, client_ids: set[str], active: Sequence[Incident], now: datetime
) -> tuple[list[Signal], list[datetime]]:
    """The reminder and overdue signals of these clients' waiting conversations (and the closing ones of
    conversations whose incidents are still open); when the next one is due."""
    open_keys = {i.key for i in active}
    followed = [i for i in active if i.cause in (Cause.REPLY, Cause.REPLY_DUE) and i.subject.startswith("#")]
    items = {item.id: item for item in inbox_store.waiting(conn, sorted(client_ids))}
    missing = {int(i.subject[1:]) for i in followed if i.subject[1:].isdigit()} - set(items)
    items.update({item.id: item for item in inbox_store.by_ids(conn, missing)})
    signals: list[Signal] = []
    dues: list[datetime] = []
    for item in items.values():
        client = config.client(item.client_id)
        if client is None:
            continue
        wait = _wait(item)
        reminder, overdue = deadline_rules.reply_signals(wait, client.inbox, now, config.tz)
        signals.extend(s for s in (reminder, overdue) if s.firing or s.key in open_keys)
        if wait.waiting and ((reminder.firing and not item.reminded_at) or (overdue.firing and not item.overdue_at)):
            remind_at, deadline = deadline_rules.due_times(item.waiting_since, wait.channel, client.inbox, config.tz)
            inbox_store.mark(
                conn,
                item.id,
                reminded_at=remind_at if reminder.firing else None,
                overdue_at=deadline if overdue.firing else None,
            )
        if wait.waiting and (due := deadline_rules.next_due(wait, client.inbox, now, config.tz)) is not None:
            dues.append(due)
    return signals, dues


def awaiting_answers(conn: Connection, client_ids: Sequence[str], now: datetime) -> list[Awaiting]:
    """The conversations of these clients still awaiting an answer, for the morning digest."""
    return [
        Awaiting(i.id, i.client_id, i.channel, i.author, i.excerpt, i.waiting_since)
        for i in inbox_store.waiting(conn, list(client_ids))
        if i.waiting_since <= now
    ]
