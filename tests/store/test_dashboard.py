"""The dashboard's read queries on SQLite and PostgreSQL: counts against the usual level, per-hour
buckets (each backend's own date function), top authors and terms; linked copies never count twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from tests.store.test_store import MATCH, engine, item, make_source  # noqa: F401 - the engine fixture
from veille.core.matching import MatchResult
from veille.store import dashboard
from veille.store.engine import read_conn, write_tx
from veille.store.hits import MatchedItem, store_items
from veille.store.schema import hits, sources

NOW = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)


def test_activity_hours_authors_terms_and_failing_sources(engine: Engine) -> None:  # noqa: F811
    first = make_source(engine, "resto/a")
    second = make_source(engine, "resto/b")
    other = make_source(engine, "tapis/a", client="tapis")
    recent = NOW - timedelta(hours=1)
    post = "https://example.org/post/1"
    bad = MatchedItem(item("3", "Chez Gégé honte", author="bob").item, MatchResult(True, False, ("chez gege", "honte")))
    with write_tx(engine) as conn:
        fresh = [item("1", "Chez Gégé super", author="ana", url=post), item("2", "Chez Gégé bof", author="ana")]
        store_items(conn, first, [*fresh, bad], recent)
        store_items(conn, second, [item("x", "Chez Gégé", author="ana", url=post)], recent)  # the same post: linked
        store_items(conn, first, [item("old1", "ancien"), item("old2", "ancien aussi")], NOW - timedelta(days=10))
        store_items(conn, other, [item("t", "Tapis")], recent)
        conn.execute(update(hits).where(hits.c.external_id == "3").values(sentiment_label="neg"))
        conn.execute(update(hits).where(hits.c.external_id.in_(["1", "2"])).values(sentiment_label="pos"))
        conn.execute(update(sources).where(sources.c.key == "resto/b").values(failing_since=recent))
    with read_conn(engine) as conn:
        found = dashboard.activity(
            conn,
            ["resto", "tapis"],
            day_start=NOW - timedelta(hours=2),
            week_start=NOW - timedelta(days=7),
            since=NOW - timedelta(days=35),
        )
        hourly = dashboard.hourly_counts(conn, "resto", NOW - timedelta(days=2))
        authors = dashboard.top_authors(conn, "resto", NOW - timedelta(days=2), 5)
        terms = dashboard.term_groups(conn, "resto", NOW - timedelta(days=2))
        failing = dashboard.failing_counts(conn, ["resto", "tapis"])
        keys = dashboard.source_keys(conn, "resto")
    resto = found["resto"]
    assert (resto.today, resto.week, resto.week_negative, resto.week_scored, resto.before) == (3, 3, 1, 3, 2)
    assert resto.usual_week == 0.5 and resto.negative_share == 1 / 3
    assert found["tapis"].today == 1
    assert hourly == [(datetime(2026, 11, 20, 13, tzinfo=UTC), 3, 1)]
    assert authors[0] == ("ana", "rss", 2, 0) and ("bob", "rss", 1, 1) in authors
    assert sorted(terms) == [("chez gege", 2, 0), ("chez gege, honte", 1, 1)]
    assert failing == {"resto": 1}
    assert keys == ["resto/a", "resto/b"]
