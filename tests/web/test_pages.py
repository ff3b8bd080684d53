"""The overview's per-hour cache gives exactly what one full query gives, also after hours turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from tests.store.test_store import engine, item, make_source  # noqa: F401 - the engine fixture
from veille.store import dashboard
from veille.store.engine import read_conn, write_tx
from veille.store.hits import store_items
from veille.store.schema import hits
from veille.web.pages import ActivityCache

START = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)


def full(engine: Engine, now: datetime, day_start: datetime) -> dict[str, dashboard.Activity]:  # noqa: F811
    hour = now.replace(minute=0, second=0, microsecond=0)
    with read_conn(engine) as conn:
        found = dashboard.activity(
            conn,
            ["resto", "tapis"],
            day_start=day_start,
            week_start=hour - timedelta(days=7),
            since=hour - timedelta(days=35),
        )
    return {c: found.get(c, dashboard.Activity()) for c in ("resto", "tapis")}


def test_cached_counts_equal_a_full_query_across_hours(engine: Engine) -> None:  # noqa: F811
    resto = make_source(engine, "resto/a")
    tapis = make_source(engine, "tapis/a", client="tapis")
    ages = [
        timedelta(minutes=10),
        timedelta(hours=3),
        timedelta(days=2),
        timedelta(days=8),
        timedelta(days=30),
        timedelta(days=40),
    ]
    with write_tx(engine) as conn:
        for n, age in enumerate(ages):
            store_items(conn, resto, [item(f"r{n}", f"Chez Gégé numéro {n}")], START - age)
            store_items(conn, tapis, [item(f"t{n}", f"Tapis numéro {n}")], START - age)
        conn.execute(update(hits).where(hits.c.external_id.in_(["r0", "r2", "t3"])).values(sentiment_label="neg"))
    cache = ActivityCache()
    day_start = START.replace(hour=0, minute=0)
    with read_conn(engine) as conn:
        first = cache.activity(conn, ["resto", "tapis"], START, day_start)
    assert first == full(engine, START, day_start)
    assert first["resto"].week == 3 and first["resto"].before == 2  # 40 days ago is out of the window
    later = START + timedelta(hours=2, minutes=5)
    with write_tx(engine) as conn:  # new hits in the hour that closes meanwhile and in the current one
        store_items(conn, resto, [item("r-new1", "Chez Gégé encore")], START + timedelta(minutes=30))
        store_items(conn, resto, [item("r-new2", "Chez Gégé toujours")], later - timedelta(minutes=1))
    with read_conn(engine) as conn:
        second = cache.activity(conn, ["resto", "tapis"], later, day_start)
        again = cache.activity(conn, ["resto", "tapis"], later, day_start)
    assert second == again == full(engine, later, day_start)
    assert second["resto"].today == first["resto"].today + 2


def test_the_client_page_tells_hits_not_scored_yet_from_hits_in_a_language_never_scored(
    engine: Engine,  # noqa: F811
) -> None:
    """'3 not scored yet' means the scorer will come back to them; a Spanish post it does not read is not one."""
    resto = make_source(engine, "resto/a")
    with write_tx(engine) as conn:
        store_items(conn, resto, [item(f"r{n}", f"Chez Gégé numéro {n}") for n in range(4)], START)
        conn.execute(update(hits).where(hits.c.external_id == "r0").values(sentiment_label="neg", scored_at=START))
        conn.execute(  # what the pipeline stores for a post in a language it does not score (issue 16)
            update(hits).where(hits.c.external_id == "r1").values(sentiment_lang="es", scored_at=START)
        )
    with read_conn(engine) as conn:
        counts = dashboard.label_counts(conn, "resto", START - timedelta(days=1))
    assert counts == {"neg": 1, dashboard.UNSCORED_LANGUAGE: 1, None: 2}
