"""The dashboard's users (veille web passwd): name, argon2 password hash, optional client list.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veille.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("clients", sa.JSON(), nullable=True),
        sa.Column("created_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("updated_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_web_users")),
    )


def downgrade() -> None:
    op.drop_table("web_users")
