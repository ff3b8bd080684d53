"""Monthly reports sent through the outbox: one row per client, month and contact (`[reports] send`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veille.store.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_sends",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("contact", sa.String(length=80), nullable=False),
        sa.Column("outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "month", "contact", name=op.f("pk_report_sends")),
    )


def downgrade() -> None:
    op.drop_table("report_sends")
