"""Rows that several tests and benchmarks start from, written with the store's own tables."""

from __future__ import annotations

from sqlalchemy import Connection

from veille.store.hits import SourceRef
from veille.store.schema import sources


def add_rss_source(
    conn: Connection, *, client_id: str = "resto", key: str = "resto/rss-1", target: str = "https://example.org/f.xml"
) -> SourceRef:
    """An enabled, healthy feed source of `client_id` (the client row must exist); its reference for store_items."""
    source_id = conn.execute(
        sources.insert()
        .values(
            key=key,
            client_id=client_id,
            kind="rss",
            target=target,
            every_seconds=600,
            enabled=True,
            in_config=True,
            status="ok",
            consecutive_errors=0,
            hits_count=0,
        )
        .returning(sources.c.id)
    ).scalar_one()
    return SourceRef(source_id, key, client_id, "rss")
