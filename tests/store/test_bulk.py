"""veille.store.bulk: SQLite inserts with the driver's own parameters store what SQLAlchemy's insert stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text, create_engine, insert, select

from veille.store import bulk
from veille.store.schema import UtcDateTime


def test_rows_in_pages_are_stored_as_sqlalchemy_stores_them_and_conflicts_return_nothing() -> None:
    metadata = MetaData()
    table = Table(
        "t",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("key", Text, unique=True),
        Column("data", JSON),
        Column("at", UtcDateTime),
        Column("count", Integer, default=7),  # left out: its default, as SQLAlchemy's insert gives it
    )
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    rows = [
        {
            "key": f"k{n}",
            "data": None if n % 3 else {"n": [n], "é": "ü"},
            "at": None if n % 5 == 0 else start + timedelta(seconds=n),
        }
        for n in range(301)  # pages of 256, 16, 16, 4, 4, 4 and 1
    ]
    with engine.begin() as conn:
        conn.execute(insert(table), [{**row, "key": "ref-" + row["key"]} for row in rows])
        returned = bulk.insert_rows(
            conn, table, ("key", "data", "at"), rows, "ON CONFLICT (key) DO NOTHING RETURNING key"
        )
        bulk.insert_rows(conn, table, ("key", "data", "at"), [{**row, "key": "many-" + row["key"]} for row in rows])
        again = bulk.insert_rows(
            conn, table, ("key", "data", "at"), rows[:5], "ON CONFLICT (key) DO NOTHING RETURNING key"
        )
        query = select(table.c.key, table.c.data, table.c.at, table.c.count)
        stored = {key: (data, at, count) for key, data, at, count in conn.execute(query)}
    engine.dispose()
    assert sorted(key for (key,) in returned) == sorted(row["key"] for row in rows) and again == []
    for row in rows:
        expected = (row["data"], row["at"], 7)
        assert stored[row["key"]] == stored["ref-" + row["key"]] == stored["many-" + row["key"]] == expected
