"""Index hits.duplicate_of: deleting a hit makes the database look up the hits linked to it (the
foreign key's ON DELETE SET NULL); without an index that is a scan of every hit per deleted hit.
Measured on SQLite, purging 20,000 hits: 23 s of CPU and 2.7 s per 1,000-hit batch without it,
0.3 s and 27 ms with it (G10).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 00:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hits_duplicate_of"), ["duplicate_of"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hits_duplicate_of"))
