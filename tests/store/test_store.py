"""Storage: pragmas, idempotent inserts, cross-source linking, engagement series, UTC round-trips."""

from __future__ import annotations

import gc
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from veille.core.matching import MatchResult
from veille.core.models import Engagement, Item, SentimentLabel, SentimentResult
from veille.core.polling import PollOutcome, PollState
from veille.store import sources as source_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.hits import (
    HitQuery,
    MatchedItem,
    SourceRef,
    query_hits,
    store_batch,
    store_items,
    stored_versions,
)
from veille.store.migrate import upgrade
from veille.store.schema import clients, engagement, hits, sources
from veille.store.sources import Success

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
        source_id = conn.execute(
            sources.insert()
            .values(
                key=key,
                client_id=client,
                kind=kind,
                target=key,
                every_seconds=600,
                enabled=True,
                in_config=True,
                status="new",
                consecutive_errors=0,
                hits_count=0,
            )
            .returning(sources.c.id)
        ).scalar_one()
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


def test_a_non_durable_write_skips_the_sync_of_its_own_commit_only(db_url: str) -> None:
    """The alerting tick's transactions commit without waiting for the disk; the pooled connection they used
    is durable again for the next writer (on SQLite the level is the connection's, not the transaction's)."""
    engine = make_engine(db_url)  # one pooled connection at a time: the next transaction reuses the same one
    sqlite = engine.dialect.name == "sqlite"
    level = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
    durable, relaxed = (2, 1) if sqlite else ("on", "off")
    with write_tx(engine, durable=False) as conn:
        assert conn.exec_driver_sql(level).scalar() == relaxed
        conn.exec_driver_sql("CREATE TABLE kept (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO kept VALUES (1)")
    with write_tx(engine) as conn:
        assert conn.exec_driver_sql(level).scalar() == durable
    with read_conn(engine) as conn:
        assert conn.exec_driver_sql(level).scalar() == durable
        assert conn.exec_driver_sql("SELECT n FROM kept").scalar() == 1
    engine.dispose()


def test_no_garbage_collection_while_a_process_holds_the_sqlite_write_lock(tmp_path: Path) -> None:
    """Issue 17: a full collection inside a transaction held the lock for tens of ms, and the writer's thread
    waited for the GIL the switch interval at every row. Both paused/shortened while any of the process's write
    transactions is open (two threads on two databases here), after a rollback too, and restored once the last
    one ends."""
    from veille.store.engine import LOCKED_SWITCH_INTERVAL

    usual = sys.getswitchinterval()
    assert usual > LOCKED_SWITCH_INTERVAL
    first, second = make_engine(f"sqlite:///{tmp_path / 'a.db'}"), make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    inside, first_done = threading.Event(), threading.Event()
    seen: list[tuple[bool, float]] = []

    def other() -> None:
        with write_tx(second):
            inside.set()
            first_done.wait(10)
            seen.append((gc.isenabled(), sys.getswitchinterval()))  # the first one has ended: this one holds its lock
        seen.append((gc.isenabled(), sys.getswitchinterval()))

    with pytest.raises(RuntimeError), write_tx(first):
        assert not gc.isenabled() and sys.getswitchinterval() == LOCKED_SWITCH_INTERVAL
        raise RuntimeError("rolled back")
    assert gc.isenabled() and sys.getswitchinterval() == usual
    thread = threading.Thread(target=other)
    with write_tx(first):
        thread.start()
        assert inside.wait(10) and not gc.isenabled()
    first_done.set()
    thread.join(10)
    assert seen == [(False, LOCKED_SWITCH_INTERVAL), (True, usual)] and gc.isenabled()
    first.dispose()
    second.dispose()


@pytest.mark.pg
def test_postgresql_writers_leave_the_garbage_collector_alone(pg_url: str) -> None:
    """Its writers do not share one lock (and may overlap for long): nothing to pause for."""
    engine = make_engine(pg_url)
    usual = sys.getswitchinterval()
    with write_tx(engine):
        assert gc.isenabled() and sys.getswitchinterval() == usual
    engine.dispose()


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
        linked = store_items(
            conn, alerts, [item("g1", "Chez Gégé: autre titre", url="https://example.org/article/42/")], NOW
        )
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
        store_items(
            conn,
            source,
            [MatchedItem(Item("n", "Chez Gégé dégoûté 😥"), MATCH, verdict), item("p", "Chez Gégé 100%_top")],
            NOW,
        )
    with read_conn(engine) as conn:
        negative = query_hits(conn, HitQuery(label="neg"))
        assert negative[0]["sentiment_reasons"] == ["dégoûté", "😥"]
        assert [r["external_id"] for r in query_hits(conn, HitQuery(search="100%_"))] == ["p"]
        assert query_hits(conn, HitQuery(search="'; DROP TABLE hits; --")) == []
        assert query_hits(conn, HitQuery(since=NOW + timedelta(seconds=1))) == []


def test_unscored_languages_are_stored_with_their_language_and_filtered(engine: Engine) -> None:
    """Issue 16: a Spanish post keeps its language and no sentiment; `lang` filters on either."""
    source = make_source(engine)
    with write_tx(engine) as conn:
        store_items(
            conn,
            source,
            [
                MatchedItem(Item("es", "Chez Gégé, una estafa total"), MATCH, SentimentResult.unscored("es")),
                MatchedItem(Item("fr", "Chez Gégé dégoûté"), MATCH, SentimentResult(SentimentLabel.NEG, -0.8, "fr")),
                item("none"),  # stored without a scorer: no sentiment either
            ],
            NOW,
        )
    with read_conn(engine) as conn:
        rows = {r["external_id"]: r for r in query_hits(conn, HitQuery())}
        spanish = rows["es"]
        assert (spanish["sentiment_label"], spanish["sentiment_score"], spanish["sentiment_lang"]) == (None, None, "es")
        assert spanish["scored_at"] is not None

        def ids(lang: str) -> list[str]:
            return sorted(r["external_id"] for r in query_hits(conn, HitQuery(lang=lang)))

        assert ids("es") == ["es"]
        assert ids("fr") == ["fr"]
        assert ids("unscored") == ["es", "none"]
        assert ids("de") == []
        (stored,) = stored_versions(conn, source, [MatchedItem(Item("es", "Chez Gégé, una estafa total"), MATCH)])
        assert stored.sentiment == SentimentResult.unscored("es")


def test_search_ignores_case_accents_and_ligatures_as_keywords_do(engine: Engine) -> None:
    source = make_source(engine)
    with write_tx(engine) as conn:
        store_items(
            conn,
            source,
            [
                item("g", "Chez Gégé, service lent"),
                item("o", "Une ŒUVRE  d'art\nchez gégé", title="CAFÉ"),
                item("a", "rien à voir", author="Hélène"),
            ],
            NOW,
        )
    with read_conn(engine) as conn:

        def found(text: str) -> list[str]:
            return sorted(r["external_id"] for r in query_hits(conn, HitQuery(search=text)))

        assert found("gege") == ["g", "o"]
        assert found("GÉGÉ") == ["g", "o"]
        assert found("oeuvre d'art chez") == ["o"]
        assert found("café") == found("cafe") == ["o"]
        assert found("helene") == ["a"]
        assert found("gégés") == []
        assert found("cafe une") == []  # within one field, never across the title and the text
    with write_tx(engine) as conn:  # a hit written by older code, without its folded search text
        conn.execute(update(hits).where(hits.c.external_id == "a").values(search_text=None))
    with read_conn(engine) as conn:
        assert [r["external_id"] for r in query_hits(conn, HitQuery(search="HELENE"))] == ["a"]


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
    with read_conn(engine) as conn:  # the search reads the latest version
        assert len(query_hits(conn, HitQuery(search=f"gege version {CONTENT_CHANGE_LIMIT}"))) == 1
        assert query_hits(conn, HitQuery(search="gege version 0")) == []


# --- one writer batch across sources (store_batch, record_successes) ---------------------------------------


def test_same_post_through_two_sources_in_one_batch_is_linked_and_counted_once(engine: Engine) -> None:
    news = make_source(engine, "resto/news")
    alerts = make_source(engine, "resto/alerts")
    other_client = make_source(engine, "tapis/news", client="tapis")
    text = "Chez Gégé a encore servi une pizza froide à toute la tablée, inadmissible"
    url = "https://www.example.org/article/42?utm_source=rss"
    with write_tx(engine) as conn:
        first, copies, separate = store_batch(
            conn,
            [
                (news, [item("n1", url=url), item("n2", text)]),
                (
                    alerts,
                    [
                        item("g1", "Chez Gégé: autre titre", url="https://example.org/article/42/"),
                        item("g2", text + "  "),
                    ],
                ),
                (other_client, [item("t1", url=url)]),
            ],
            NOW,
        )
    originals = {h.external_id: h.id for h in first}
    assert [h.duplicate_of for h in first] == [None, None]
    assert {h.external_id: h.duplicate_of for h in copies} == {"g1": originals["n1"], "g2": originals["n2"]}
    assert separate[0].duplicate_of is None  # another client's copy is its own hit
    with read_conn(engine) as conn:
        stored = {r["external_id"]: r["duplicate_of"] for r in query_hits(conn, HitQuery(include_duplicates=True))}
        assert stored == {"n1": None, "n2": None, "g1": originals["n1"], "g2": originals["n2"], "t1": None}
        assert len(query_hits(conn, HitQuery(client_id="resto"))) == 2
        counts = {s["key"]: s["hits_count"] for s in source_store.list_sources(conn)}
    assert counts == {"resto/news": 2, "resto/alerts": 2, "tapis/news": 1}


def test_batch_links_to_a_stored_original_before_one_of_the_batch(engine: Engine) -> None:
    old = make_source(engine, "resto/old")
    news = make_source(engine, "resto/news")
    alerts = make_source(engine, "resto/alerts")
    url = "https://example.org/article/7"
    text = "Chez Gégé a encore servi une pizza froide à toute la tablée, inadmissible"
    with write_tx(engine) as conn:
        original, by_text = store_items(conn, old, [item("o1", url=url), item("o2", text)], NOW)
    other_url = "https://example.org/article/8"
    with write_tx(engine) as conn:
        first, second = store_batch(
            conn,
            [
                (news, [item("n1", url=url), item("n2", url=other_url), item("n3", text, url=other_url)]),
                (alerts, [item("g1", url=url)]),
            ],
            NOW,
        )
    assert first[0].duplicate_of == second[0].duplicate_of == original.id
    # Rows of one poll never point at each other (as before batching), but still at a stored copy.
    assert [h.duplicate_of for h in first[1:]] == [None, by_text.id]


def test_batch_mixes_new_known_and_churned_items_across_sources(engine: Engine) -> None:
    a = make_source(engine, "resto/a")
    b = make_source(engine, "resto/b")
    c = make_source(engine, "tapis/c", client="tapis", kind="mastodon")
    with write_tx(engine) as conn:
        store_batch(
            conn,
            [
                (a, [item("a1", "Chez Gégé, version 1"), item("a2", "Chez Gégé, stable")]),
                (b, [item("b1", "Chez Gégé, un avis de b")]),
            ],
            NOW,
        )
    later = NOW + timedelta(minutes=10)
    verdict = SentimentResult(SentimentLabel.NEG, -0.6, "fr", ("froide",))
    with write_tx(engine) as conn:
        new = store_batch(
            conn,
            [
                (
                    a,
                    [
                        MatchedItem(Item("a1", "Chez Gégé, version 2"), MATCH, verdict),
                        item("a2", "Chez Gégé, stable"),
                        item("a3", "Chez Gégé, nouveau"),
                    ],
                ),
                (
                    b,
                    [
                        item("b1", "Chez Gégé, un avis de b"),
                        item("b2", "Chez Gégé, encore b"),
                        item("b2", "Chez Gégé, encore b"),
                    ],
                ),
                (c, [item("c1", "Tapis Royal", engagement=Engagement(likes=3))]),
            ],
            later,
        )
    assert [[h.external_id for h in part] for part in new] == [["a3"], ["b2"], ["c1"]]
    with read_conn(engine) as conn:
        rows = {r["external_id"]: r for r in query_hits(conn, HitQuery(include_duplicates=True, limit=100))}
        counts = {s["key"]: s["hits_count"] for s in source_store.list_sources(conn)}
        observations = conn.execute(select(engagement.c.hit_id, engagement.c.likes)).all()
    assert sorted(rows) == ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert (rows["a1"]["text"], rows["a1"]["content_changes"], rows["a1"]["sentiment_label"]) == (
        "Chez Gégé, version 2",
        1,
        "neg",
    )
    assert rows["a2"]["content_changes"] == 0 and rows["b1"]["fetched_at"] == NOW  # known: untouched
    assert counts == {"resto/a": 3, "resto/b": 2, "tapis/c": 1}
    assert observations == [(rows["c1"]["id"], 3)]


def test_a_source_twice_in_one_batch_is_stored_in_order(engine: Engine) -> None:
    source = make_source(engine, kind="mastodon")
    with write_tx(engine) as conn:
        first, second = store_batch(
            conn,
            [
                (source, [item("s1", "Chez Gégé, premier jet", engagement=Engagement(likes=1))]),
                (source, [item("s1", "Chez Gégé, corrigé", engagement=Engagement(likes=5)), item("s2")]),
            ],
            NOW,
        )
    assert [h.external_id for h in first] == ["s1"] and [h.external_id for h in second] == ["s2"]
    with read_conn(engine) as conn:
        row = next(r for r in query_hits(conn, HitQuery()) if r["external_id"] == "s1")
        likes = [r.likes for r in conn.execute(select(engagement.c.likes).order_by(engagement.c.id))]
        assert source_store.list_sources(conn)[0]["hits_count"] == 2
    assert (row["text"], row["content_changes"]) == ("Chez Gégé, corrigé", 1)
    assert likes == [1, 5]


def test_poll_state_of_many_sources_recorded_together(engine: Engine) -> None:
    fresh, unchanged, stream = (make_source(engine, key) for key in ("resto/fresh", "resto/same", "resto/stream"))
    with write_tx(engine) as conn:
        conn.execute(
            sources.update()
            .where(sources.c.id == unchanged.id)
            .values(etag='"old"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT", status="failing", consecutive_errors=2)
        )
    later = NOW + timedelta(minutes=5)
    with write_tx(engine) as conn:
        source_store.record_successes(
            conn,
            [
                Success(fresh.id, PollOutcome(etag='"v2"', note="ok"), PollState(), None),
                Success(unchanged.id, PollOutcome(not_modified=True), PollState(etag='"old"'), later),
                Success(stream.id, PollOutcome(cursor="10"), PollState(), None),
                Success(stream.id, PollOutcome(cursor="12", content_hash="h"), PollState(cursor="10"), None),
            ],
            NOW,
        )
    with read_conn(engine) as conn:
        rows = {s["key"]: s for s in source_store.list_sources(conn)}
    assert (rows["resto/fresh"]["etag"], rows["resto/fresh"]["note"], rows["resto/fresh"]["status"]) == (
        '"v2"',
        "ok",
        "ok",
    )
    same = rows["resto/same"]
    assert (same["etag"], same["last_modified"]) == ('"old"', "Mon, 01 Jan 2024 00:00:00 GMT")  # 304: kept
    assert (same["consecutive_errors"], same["next_poll_at"], same["last_success_at"]) == (0, later, NOW)
    assert (rows["resto/stream"]["cursor"], rows["resto/stream"]["content_hash"]) == ("12", "h")  # later poll last


def test_sync_config_writes_only_what_the_config_changes(engine: Engine, db_url: str) -> None:
    """A `veille run --once` from cron syncs the same config every time: an unchanged one writes nothing."""
    from sqlalchemy import event

    from tests.support.daemon import config_text
    from veille.config import parse_config

    def config(every: str, feeds: list[str], name: str = "resto") -> Any:
        text = config_text(db_url, {"resto": feeds}, every=every).replace('name = "resto"', f'name = "{name}"')
        return parse_config(text, file="config.toml", environ={})

    first = config("10m", ["http://a.example/1", "http://a.example/2", "http://a.example/3"])
    with write_tx(engine) as conn:
        refs = source_store.sync_config(conn, first.clients, first.sources, NOW)
    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with write_tx(engine) as conn:
            assert source_store.sync_config(conn, first.clients, first.sources, NOW) == refs
        assert writes == []
        second = config("30m", ["http://a.example/1", "http://a.example/2"], name="Chez Gégé")
        with write_tx(engine) as conn:
            source_store.sync_config(conn, second.clients, second.sources, NOW)
        assert writes  # the new name, the new intervals, the removed source
    finally:
        event.remove(engine, "before_cursor_execute", count)
    with read_conn(engine) as conn:
        rows = {r.key: r for r in conn.execute(select(sources))}
        assert conn.execute(select(clients.c.name)).scalar_one() == "Chez Gégé"
    assert [rows[k].every_seconds for k in ("resto/f0", "resto/f1")] == [1800, 1800]
    assert (rows["resto/f2"].in_config, rows["resto/f2"].enabled, rows["resto/f2"].every_seconds) == (False, False, 600)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=80))
def test_a_hit_folded_once_gets_the_fingerprint_of_its_whole_text(title: str, text: str) -> None:
    """The store folds a hit's title and text once for its duplicate fingerprint and its search column."""
    from veille.core.matching import fold
    from veille.store.urls import text_fingerprint

    whole = text_fingerprint(f"{title} {text}", "rss:x")
    assert text_fingerprint(f"{title} {text}", "rss:x", folded=f"{fold(title)} {fold(text)}") == whole
