"""The dashboard's own table: its users and their password hashes (migration 0005).

A user named like a contact sees that contact's clients (the bot's scoping); `clients` narrows or
replaces it (JSON list, "*" for all). Hashes are argon2 strings made by `veille web passwd`.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, String, Table, Text

from veille.store.schema import UtcDateTime, metadata

web_users = Table(
    "web_users",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("password_hash", Text(), nullable=False),
    Column("clients", JSON(), nullable=True),  # None: the clients of the contact with the same id
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
