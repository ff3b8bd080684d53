"""The clients' own channels: hits say whether they are private and where they sit in their platform's
threads (thread and parent ids, for the reply inbox); `audience` keeps one figure per account per day.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veille.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audience",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("observed_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_audience_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audience")),
        sa.UniqueConstraint("source_key", "metric", "day", name=op.f("uq_audience_source_key_metric_day")),
    )
    with op.batch_alter_table("audience", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audience_client_id_day"), ["client_id", "day"], unique=False)
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("thread_id", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.String(length=512), nullable=True))
        batch_op.create_index(batch_op.f("ix_hits_client_id_thread_id"), ["client_id", "thread_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hits_client_id_thread_id"))
        batch_op.drop_column("parent_id")
        batch_op.drop_column("thread_id")
        batch_op.drop_column("private")
    with op.batch_alter_table("audience", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audience_client_id_day"))
    op.drop_table("audience")
