"""The reply inbox, wired: every new hit addressed to a client goes through the "needs an answer" rules and
into the inbox, in the hits' own write transaction (a crash loses neither or both)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from veille.alerting.replies import Need, needs_answer_reason
from veille.core.models import StoredHit
from veille.store import inbox as inbox_store


def inbox_messages(hits: Sequence[StoredHit]) -> list[inbox_store.Message]:
    """The hits the inbox follows (addressed to the client, first copy only) as inbox messages."""
    messages = []
    for hit in hits:
        if hit.channel is None or hit.conversation is None or hit.duplicate_of is not None:
            continue
        need = None if hit.from_client else needs_answer_reason(f"{hit.title}\n{hit.text}".strip())
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
