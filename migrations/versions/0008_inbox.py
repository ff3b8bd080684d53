"""The reply inbox: hits say whether the client's own account wrote them; one `inbox` row per conversation
awaiting (or having had) the client's answer, one `inbox_answers` row per answer (response times).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veille.store.schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_client", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "inbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("conversation", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("need", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=300), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("hit_id", _ID, nullable=True),
        sa.Column("waiting_since", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("last_message_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("closed_at", veille.store.schema.UtcDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("reminded_at", veille.store.schema.UtcDateTime(), nullable=True),
        sa.Column("overdue_at", veille.store.schema.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_inbox_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("source_key", "conversation", name=op.f("uq_inbox_source_key_conversation")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_client_id_state_waiting_since"), ["client_id", "state", "waiting_since"], unique=False
        )
    op.create_table(
        "inbox_answers",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("waited_since", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("answered_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_inbox_answers_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_answers")),
    )
    with op.batch_alter_table("inbox_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_answers_client_id_answered_at"), ["client_id", "answered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_answers_client_id_answered_at"))
    op.drop_table("inbox_answers")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_client_id_state_waiting_since"))
    op.drop_table("inbox")
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.drop_column("from_client")
