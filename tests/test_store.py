"""Storage: pragmas, idempotent inserts, cross-source linking, engagement series, UTC round-trips."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from veille.matching import MatchResult
from veille.models import Engagement, Item, SentimentLabel, SentimentResult
from veille.store import sources as source_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.hits import HitQuery, MatchedItem, SourceRef, query_hits, store_items
from veille.store.migrate import upgrade
from veille.store.schema import clients, engagement, hits, sources

NOW = datetime(2026, 11, 20, 2, 13, tzinfo=UTC)
MATCH = MatchResult(True, False, ("chez gege",))


@pytest.fixture
def engine(db_url: str) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def make_source(engine: Engine, key: str = "resto/rss-a", client: str = "resto", kind: str = "rss") -> SourceRef:
    with write_tx(engine) as conn:
        if conn.execute(select(clients.c.id).where(clients.c.id == client)).first() is None:
            conn.execute(clients.insert().values(id=client, name=client, updated_at=NOW))
        source_id = conn.execute(sources.insert().values(
            key=key, client_id=client, kind=kind, target=key, every_seconds=600, enabled=True, in_config=True,
            status="new", consecutive_errors=0, hits_count=0).returning(sources.c.id)).scalar_one()
    return SourceRef(source_id, key, client, kind)


def item(external_id: str, text: str = "Chez Gégé, service lent", **kwargs: object) -> MatchedItem:
    return MatchedItem(Item(external_id=external_id, text=text, **kwargs), MATCH)  # type: ignore[arg-type]


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with read_conn(engine) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_hit_stored_once(engine: Engine) -> None:
    source = make_source(engine)
    with write_tx(engine) as conn:
        first = store_items(conn, source, [item("a"), item("b", "Chez Gégé autre avis"), item("a")], NOW)
    with write_tx(engine) as conn:
        again = store_items(conn, source, [item("a"), item("b", "Chez Gégé autre avis")], NOW)
    assert [h.external_id for h in first] == ["a", "b"]
    assert again == []
    with read_conn(engine) as conn:
        assert len(query_hits(conn, HitQuery())) == 2
        assert source_store.list_sources(conn)[0]["hits_count"] == 2


def test_concurrent_inserts_of_same_hit_give_one_row(engine: Engine) -> None:
    source = make_source(engine)
    errors: list[BaseException] = []

    def insert() -> None:
        try:
            for _ in range(5):
                with write_tx(engine) as conn:
                    store_items(conn, source, [item(f"id-{n}") for n in range(20)], NOW)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=insert) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with read_conn(engine) as conn:
        assert conn.execute(select(hits.c.id)).all().__len__() == 20


def test_same_post_through_two_sources_is_linked(engine: Engine) -> None:
    news = make_source(engine, "resto/news")
    alerts = make_source(engine, "resto/alerts")
    other_client = make_source(engine, "tapis/news", client="tapis")
    url = "https://www.example.org/article/42?utm_source=rss#top"
    with write_tx(engine) as conn:
        store_items(conn, news, [item("n1", url=url)], NOW)
        linked = store_items(conn, alerts, [item("g1", "Chez Gégé: autre titre", url="https://example.org/article/42/")],
                             NOW)
        text = "Chez Gégé a encore servi une pizza froide à toute la tablée, inadmissible"
        store_items(conn, news, [item("n2", text)], NOW)
        by_text = store_items(conn, alerts, [item("g2", text + "  ")], NOW)
        separate = store_items(conn, other_client, [item("t1", url=url)], NOW)
    assert linked[0].duplicate_of is not None
    assert by_text[0].duplicate_of is not None
    assert separate[0].duplicate_of is None  # another client's copy is its own hit
    with read_conn(engine) as conn:
        assert len(query_hits(conn, HitQuery(client_id="resto"))) == 2
        assert len(query_hits(conn, HitQuery(client_id="resto", include_duplicates=True))) == 4


def test_engagement_is_a_time_series(engine: Engine) -> None:
    source = make_source(engine, kind="mastodon")
    with write_tx(engine) as conn:
        store_items(conn, source, [item("s1", engagement=Engagement(likes=1, reposts=0))], NOW)
    with write_tx(engine) as conn:
        store_items(conn, source, [item("s1", engagement=Engagement(likes=1, reposts=0))], NOW + timedelta(minutes=5))
    with write_tx(engine) as conn:
        store_items(conn, source, [item("s1", engagement=Engagement(likes=9, reposts=40))], NOW + timedelta(minutes=10))
    with read_conn(engine) as conn:
        rows = conn.execute(select(engagement).order_by(engagement.c.id)).all()
    assert [(r.likes, r.reposts) for r in rows] == [(1, 0), (9, 40)]
    assert rows[1].observed_at == NOW + timedelta(minutes=10)


def test_times_round_trip_as_aware_utc(engine: Engine) -> None:
    source = make_source(engine)
    paris = timezone(timedelta(hours=1))
    published = datetime(2026, 11, 20, 3, 13, tzinfo=paris)
    with write_tx(engine) as conn:
        store_items(conn, source, [item("t", published_at=published)], NOW)
    with read_conn(engine) as conn:
        row = query_hits(conn, HitQuery())[0]
    assert row["published_at"] == published and row["published_at"].tzinfo is not None
    assert row["published_at"].utcoffset() == timedelta(0)
    assert row["fetched_at"] == NOW


def test_utf8_round_trip(engine: Engine) -> None:
    source = make_source(engine)
    text = "Chez Gégé 😥❤ — « génial » \u200b 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
    with write_tx(engine) as conn:
        store_items(conn, source, [item("u", text)], NOW)
    with read_conn(engine) as conn:
        assert query_hits(conn, HitQuery())[0]["text"] == text


def test_sentiment_and_query_filters(engine: Engine) -> None:
    source = make_source(engine)
    verdict = SentimentResult(SentimentLabel.NEG, -0.8, "fr", ("dégoûté", "😥"))
    with write_tx(engine) as conn:
        store_items(conn, source, [MatchedItem(Item("n", "Chez Gégé dégoûté 😥"), MATCH, verdict),
                                   item("p", "Chez Gégé 100%_top")], NOW)
    with read_conn(engine) as conn:
        negative = query_hits(conn, HitQuery(label="neg"))
        assert negative[0]["sentiment_reasons"] == ["dégoûté", "😥"]
        assert [r["external_id"] for r in query_hits(conn, HitQuery(search="100%_"))] == ["p"]
        assert query_hits(conn, HitQuery(search="'; DROP TABLE hits; --")) == []
        assert query_hits(conn, HitQuery(since=NOW + timedelta(seconds=1))) == []


def test_churning_content_updated_a_bounded_number_of_times(engine: Engine) -> None:
    from veille.store.hits import CONTENT_CHANGE_LIMIT

    source = make_source(engine)
    for n in range(CONTENT_CHANGE_LIMIT + 5):
        with write_tx(engine) as conn:
            store_items(conn, source, [item("churn", f"Chez Gégé version {n}")], NOW)
    with read_conn(engine) as conn:
        row = query_hits(conn, HitQuery())[0]
    assert row["content_changes"] == CONTENT_CHANGE_LIMIT
    assert row["text"] == f"Chez Gégé version {CONTENT_CHANGE_LIMIT}"
