"""Tables of the reply inbox: one row per conversation a customer opened with a client, and one row per
answer (how long the customer waited: the monthly report's response time).

Same `metadata` as the core tables. No foreign key to `hits`: retention deletes old hits, the inbox keeps
its own excerpt and link.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from veille.store.schema import Id, UtcDateTime, metadata

inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(40), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("source_key", String(200), nullable=False),
    Column("channel", String(10), nullable=False),  # core.models.Channel
    Column("conversation", String(512), nullable=False),  # Item.conversation
    Column("state", String(10), nullable=False),  # waiting | answered | no_reply
    Column("need", String(10), nullable=False),  # alerting.replies.Need of the latest message that needs one
    Column("author", String(300), nullable=True),
    Column("excerpt", Text(), nullable=False),
    Column("url", Text(), nullable=True),
    Column("hit_id", Id, nullable=True),  # the latest customer message that needs an answer
    Column("waiting_since", UtcDateTime(), nullable=False),  # the first unanswered message of this wait
    Column("last_message_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("closed_by", String(200), nullable=True),  # "platform" (the client's account answered) or who
    Column("reminded_at", UtcDateTime(), nullable=True),
    Column("overdue_at", UtcDateTime(), nullable=True),
    UniqueConstraint("source_key", "conversation"),
    Index(None, "client_id", "state", "waiting_since"),
)

inbox_answers = Table(
    "inbox_answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("item_id", Id, nullable=False),
    Column("client_id", String(40), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("waited_since", UtcDateTime(), nullable=False),
    Column("answered_at", UtcDateTime(), nullable=False),
    Column("overdue", Boolean(), nullable=False),  # answered after its deadline
    Index(None, "client_id", "answered_at"),
)
