"""The live daemons sharing the sources (fair share of source leases, `veille daemons`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import veille.store.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daemons",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("started_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("renewed_at", veille.store.schema.UtcDateTime(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("units_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_daemons")),
    )


def downgrade() -> None:
    op.drop_table("daemons")
