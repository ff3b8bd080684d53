"""Telegram's own tables: routes (migrated or gone chats), channel state (persisted flood wait,
auth failure), sent messages and the opaque callback tokens behind inline buttons.

Same `metadata` as the core so one Alembic history covers everything (migration 0003).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text

from veille.store.schema import Id, UtcDateTime, metadata

# One row per configured address (the chat id in config / the outbox). `chat_id` follows group ->
# supergroup migrations (B4); `state` is "ok" or "gone" (bot blocked or kicked, B3).
telegram_routes = Table(
    "telegram_routes",
    metadata,
    Column("address", String(40), primary_key=True),
    Column("chat_id", String(40), nullable=False),
    Column("state", String(20), nullable=False, default="ok"),
    Column("reason", Text(), nullable=True),
    Column("gone_at", UtcDateTime(), nullable=True),
    Column("moved_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Key/value channel state that must survive a restart: "retry_until" (global flood wait, B8),
# "auth_failed" (401/404, B5).
telegram_state = Table(
    "telegram_state",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("until", UtcDateTime(), nullable=True),
    Column("value", Text(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# A message carrying buttons: its HTML is kept so a press can edit it ("taken by X at 23:14").
telegram_messages = Table(
    "telegram_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("chat_id", String(40), nullable=False),
    Column("message_id", String(20), nullable=True),
    Column("incident_id", Id, nullable=True),
    Column("client_id", String(40), nullable=True),
    Column("tag", String(40), nullable=False, default=""),
    Column("lang", String(5), nullable=False, default="fr"),
    Column("html", Text(), nullable=False),  # the text of the message carrying the buttons
    Column("parse_mode", String(10), nullable=True),  # "HTML", or NULL after the plain-text fallback
    Column("handled_by", String(200), nullable=True),
    Column("handled_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "chat_id", "message_id"),
)

# Opaque random tokens as callback_data (H4): the press is looked up here, so a forged token
# matches nothing and a replayed one is already used.
telegram_callbacks = Table(
    "telegram_callbacks",
    metadata,
    Column("token", String(40), primary_key=True),
    Column("message_row", Id, ForeignKey("telegram_messages.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(10), nullable=False),  # ack | snooze | mute | hits
    Column("incident_id", Id, nullable=True),
    Column("client_id", String(40), nullable=True),
    Column("chat_id", String(40), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("used_by", String(40), nullable=True),
    Index(None, "message_row"),
)
