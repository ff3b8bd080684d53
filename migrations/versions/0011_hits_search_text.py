"""Hits keep their searched fields folded (`search_text`): a search is one LIKE, not SQL folding per row.

The client page's search took 680 ms at p95 on PostgreSQL over a million hits (issue 15's bench): the
`translate` chain ran on the title, text and author of every hit of the client's period. Existing hits
are filled here in batches with the same `fold` the code writes new hits with (veille.store.search).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from veille.store.search import search_text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 5_000


def upgrade() -> None:
    op.add_column("hits", sa.Column("search_text", sa.Text(), nullable=True))
    hits = sa.table(
        "hits",
        sa.column("id", sa.BigInteger()),
        sa.column("title", sa.Text()),
        sa.column("text", sa.Text()),
        sa.column("author", sa.String()),
        sa.column("search_text", sa.Text()),
    )
    conn = op.get_bind()
    fill = sa.update(hits).where(hits.c.id == sa.bindparam("_id")).values(search_text=sa.bindparam("_text"))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(hits.c.id, hits.c.title, hits.c.text, hits.c.author)
            .where(hits.c.id > last)
            .order_by(hits.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(fill, [{"_id": r.id, "_text": search_text(r.title, r.text, r.author)} for r in rows])
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("hits") as batch:
        batch.drop_column("search_text")
