"""Poll -> match -> store through real HTTP on loopback and a real database (D1, D2, D4, D5, D17, A13)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import event, select

from tests.support.daemon import make_config
from tests.support.feedgen import feed_items, rss
from tests.support.server import LocalServer, Request, Response
from veille.config import Config
from veille.core.clock import FakeClock
from veille.core.errors import RateLimited, RetryableFetchError, StorageError
from veille.core.models import ErrorKind, SourceStatus
from veille.net.http import HttpClient
from veille.runtime.pipeline import Pipeline, failure_schedule
from veille.sources import registry
from veille.store.engine import make_engine, read_conn
from veille.store.schema import hits, sources


def etag_feed(body: str, etag: str = '"v1"') -> Any:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(304, b"", {"ETag": etag})
        return Response(200, body, {"ETag": etag, "Content-Type": "application/rss+xml"})

    return handler


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[HttpClient]:
    from veille.net.options import HttpConfig

    client = HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0), clock=clock)
    yield client
    await client.aclose()


async def started(config: Config, http: HttpClient, clock: FakeClock) -> Pipeline:
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    return pipeline


def stored(config: Config) -> list[Any]:
    engine = make_engine(config.database_url)
    with read_conn(engine) as conn:
        rows = conn.execute(select(hits).order_by(hits.c.id)).all()
    engine.dispose()
    return rows


async def test_poll_stores_matching_items_once_and_uses_conditional_get(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    items = feed_items(1, 30)
    server.route("/feed", etag_feed(rss(items)))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/feed")]})
    pipeline = await started(config, http, clock)
    key = next(iter(pipeline.runtimes))
    first = await pipeline.poll(key)
    second = await pipeline.poll(key)
    await pipeline.stop()
    expected = sum(1 for i in items if i["matches"])
    assert first is not None and first.new_hits == expected > 0
    assert second is not None and second.outcome is not None and second.outcome.not_modified
    assert second.new_hits == 0
    assert server.requests_to("/feed")[1].headers.get("If-None-Match") == '"v1"'
    rows = stored(config)
    assert len(rows) == expected
    assert {r.external_id for r in rows} == {i["guid"] for i in items if i["matches"]}


async def test_failures_back_off_then_recovery_resets(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    state = {"fail": True}
    body = rss(feed_items(2, 5, matching_ratio=1.0))
    server.route("/flaky", lambda r: Response(500, b"boom") if state["fail"] else Response(200, body))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/flaky")]})
    pipeline = await started(config, http, clock)
    key = next(iter(pipeline.runtimes))
    runtime = pipeline.runtimes[key]
    delays = []
    for _ in range(4):
        result = await pipeline.poll(key)
        assert result is not None and result.error is not None and result.error.kind is ErrorKind.HTTP_5XX
        assert runtime.next_poll_at is not None
        delays.append((runtime.next_poll_at - clock.now()).total_seconds())
        assert await pipeline.poll(key) is None  # not due: backing off
        clock.advance(delays[-1] + 1)
    assert runtime.consecutive_errors == 4
    assert runtime.status is SourceStatus.BACKING_OFF
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(delays))
    state["fail"] = False
    result = await pipeline.poll(key)
    await pipeline.stop()
    assert result is not None and result.error is None and result.new_hits == 5
    assert runtime.consecutive_errors == 0 and runtime.next_poll_at is None and runtime.status is SourceStatus.OK
    engine = make_engine(sqlite_url)
    with read_conn(engine) as conn:
        row = conn.execute(select(sources)).one()
    assert row.status == "ok" and row.consecutive_errors == 0 and row.last_error_kind is None


async def test_retry_after_is_honoured_and_others_unaffected(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    server.route("/limited", Response(429, b"slow down", {"Retry-After": "120"}))
    server.route("/fine", Response(200, rss(feed_items(3, 4, matching_ratio=1.0))))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/limited"), server.url("/fine")]})
    pipeline = await started(config, http, clock)
    limited, fine = (k for k in sorted(pipeline.runtimes))
    results = await asyncio.gather(pipeline.poll(limited), pipeline.poll(fine))
    assert isinstance(results[0].error, RateLimited)  # type: ignore[union-attr]
    assert results[1].new_hits == 4  # type: ignore[union-attr]
    runtime = pipeline.runtimes[limited]
    assert runtime.status is SourceStatus.RATE_LIMITED
    assert runtime.next_poll_at is not None and runtime.next_poll_at >= clock.now() + timedelta(seconds=120)
    assert await pipeline.poll(limited, force=True) is None  # even --once waits for Retry-After
    clock.advance(200)
    assert await pipeline.poll(limited) is not None
    await pipeline.stop()


def test_backoff_schedule_is_capped_and_never_infinite() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(0)
    error = RetryableFetchError(ErrorKind.NETWORK, "refused")
    for errors in (1, 5, 50, 10_000):
        _status, at = failure_schedule(
            error, every=timedelta(minutes=10), errors=errors, cap=timedelta(hours=24), jitter=0.1, now=now, rng=rng
        )
        assert now < at <= now + timedelta(hours=24) * 1.1
    _, at = failure_schedule(
        RateLimited("x", retry_after=10 * 365 * 86400),
        every=timedelta(minutes=10),
        errors=1,
        cap=timedelta(hours=24),
        jitter=0.0,
        now=now,
        rng=rng,
    )
    assert at == now + timedelta(hours=24)


class ExplodingDriver:
    kind: ClassVar[str] = "rss"

    def parse_options(self, raw: Any, path: str, problems: Any) -> Any:
        return registry.get_driver("rss").parse_options(raw, path, problems)

    async def poll(self, ctx: Any, options: Any, state: Any) -> Any:
        if "explode" in options.target:
            raise ZeroDivisionError("driver bug")
        return await registry.get_driver("rss").poll(ctx, options, state)


async def test_unexpected_exception_is_isolated(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    server.route("/fine", Response(200, rss(feed_items(4, 3, matching_ratio=1.0))))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/explode"), server.url("/fine")]})
    pipeline = await started(config, http, clock)
    exploding = ExplodingDriver()
    for runtime in pipeline.runtimes.values():
        runtime.driver = exploding  # type: ignore[assignment]
    results = await asyncio.gather(*(pipeline.poll(k) for k in sorted(pipeline.runtimes)))
    await pipeline.stop()
    assert results[0].error is not None and results[0].error.kind is ErrorKind.INTERNAL  # type: ignore[union-attr]
    assert "ZeroDivisionError" in results[0].error.message  # type: ignore[union-attr]
    assert results[1].new_hits == 3  # type: ignore[union-attr]


async def test_failed_commit_does_not_advance_etag(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """A13: the database refuses the write; the next poll re-fetches (no If-None-Match) and stores."""
    server.route("/feed", etag_feed(rss(feed_items(5, 6, matching_ratio=1.0))))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/feed")]})
    engine = make_engine(config.database_url)
    read_only = {"on": True}

    @event.listens_for(engine, "begin")
    def _maybe_read_only(conn: Any) -> None:
        conn.exec_driver_sql(f"PRAGMA query_only = {1 if read_only['on'] else 0}")

    pipeline = Pipeline(config, make_engine(config.database_url), clock, http)
    pipeline.load()
    pipeline.engine = engine
    await pipeline.start()
    key = next(iter(pipeline.runtimes))
    with pytest.raises(StorageError):
        await pipeline.poll(key)
    assert not pipeline.storage_ok
    assert pipeline.runtimes[key].state.etag is None
    read_only["on"] = False
    result = await pipeline.poll(key, force=True)
    await pipeline.stop()
    assert result is not None and result.new_hits == 6
    assert "If-None-Match" not in server.requests_to("/feed")[1].headers
    assert pipeline.storage_ok


async def test_gone_source_backs_off_to_the_cap_and_long_failures_are_noticed_once(
    tmp_path: Path,
    sqlite_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.route("/gone", Response(410, b"gone"))
    server.route("/down", Response(503, b"down"))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/gone"), server.url("/down")]})
    pipeline = await started(config, http, clock)
    gone, down = sorted(pipeline.runtimes)
    result = await pipeline.poll(gone)
    assert result is not None and result.error is not None and result.error.kind is ErrorKind.GONE
    assert pipeline.runtimes[gone].status is SourceStatus.GONE
    assert pipeline.runtimes[gone].next_poll_at >= clock.now() + timedelta(hours=24)  # type: ignore[operator]
    notices = 0
    for _ in range(12):  # seven hours of failures, polled whenever due
        clock.advance(3600)
        pipeline.runtimes[down].next_poll_at = None
        await pipeline.poll(down)
        notices = sum("has been failing since" in r.getMessage() for r in caplog.records)
    await pipeline.stop()
    assert notices == 1
    assert pipeline.runtimes[down].failing_notice_at is not None


class RecordingHooks:
    def __init__(self) -> None:
        self.new: list[Any] = []
        self.refreshed: list[Any] = []

    def on_new_hits(self, conn: Any, hits: list[Any]) -> None:
        self.new.extend(hits)

    def on_hits_refreshed(self, conn: Any, hits: list[Any]) -> None:
        self.refreshed.extend(hits)

    def on_source_health(self, *args: Any) -> None:
        return None


class RefreshingDriver:
    """The RSS driver plus a `refresh` that reports growing engagement, like the social drivers."""

    kind: ClassVar[str] = "rss"
    refreshes: ClassVar[bool] = True

    def __init__(self) -> None:
        self.likes = 0

    def parse_options(self, raw: Any, path: str, problems: Any) -> Any:
        return registry.get_driver("rss").parse_options(raw, path, problems)

    async def poll(self, ctx: Any, options: Any, state: Any) -> Any:
        return await registry.get_driver("rss").poll(ctx, options, state)

    async def refresh(self, ctx: Any, options: Any, external_ids: list[str]) -> list[Any]:
        from veille.core.models import Engagement, Item

        self.likes += 100
        return [
            Item(external_id=e, text="Chez Gégé, scandale", engagement=Engagement(likes=self.likes, reposts=40))
            for e in external_ids
        ]


async def test_risky_hits_are_refetched_and_engagement_recorded(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    from veille.store.engine import read_conn as reader
    from veille.store.hits import hits_for_refresh
    from veille.store.schema import engagement

    server.route("/feed", Response(200, rss(feed_items(6, 2, matching_ratio=1.0))))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/feed")]})
    hooks = RecordingHooks()
    pipeline = Pipeline(config, make_engine(config.database_url), clock, http, hooks=hooks)
    pipeline.load()
    await pipeline.start()
    key = next(iter(pipeline.runtimes))
    driver = RefreshingDriver()
    pipeline.runtimes[key].driver = driver  # type: ignore[assignment]
    await pipeline.poll(key)
    first = hooks.new[0]
    with reader(pipeline.engine) as conn:
        grouped = hits_for_refresh(conn, [first.id])
    assert grouped == {key: [first.external_id]}
    state_before = pipeline.runtimes[key].state
    for _ in range(2):
        clock.advance(600)
        assert await pipeline.refresh_hits(grouped) == 1
    await pipeline.stop()
    assert [h.engagement.likes for h in hooks.refreshed] == [100, 200]
    assert hooks.refreshed[0].id == first.id and hooks.refreshed[0].sentiment == first.sentiment
    assert pipeline.runtimes[key].state == state_before  # a refresh never moves the poll state
    with reader(pipeline.engine) as conn:
        likes = [r.likes for r in conn.execute(select(engagement).order_by(engagement.c.id))]
    assert likes == [100, 200]


async def test_one_writer_batch_links_a_post_seen_by_two_sources_of_a_client(
    tmp_path: Path, db_url: str, http: HttpClient, clock: FakeClock
) -> None:
    from veille.core.models import Item

    config = make_config(
        tmp_path,
        db_url,
        {"resto": ["https://a.example/feed", "https://b.example/feed"], "tapis": ["https://c.example/feed"]},
    )
    hooks = RecordingHooks()
    pipeline = Pipeline(config, make_engine(config.database_url), clock, http, hooks=hooks)
    pipeline.load()
    transactions = itertools.count()
    event.listen(pipeline.engine, "begin", lambda _conn: next(transactions))
    await pipeline.start()
    post = Item(
        external_id="at://post/1",
        text="Chez Gégé : pizza froide et serveur désagréable ce soir",
        url="https://bsky.app/profile/x/post/1",
    )
    keys = sorted(pipeline.runtimes)
    await pipeline.store_stream_batch(keys, {"resto": [post], "tapis": [post]}, cursor=42)
    await pipeline.stop()
    assert next(transactions) == 2  # the known-hits read, then one write for the three sources
    by_source = {h.source_key: h for h in hooks.new}
    assert sorted(by_source) == keys
    assert by_source["resto/f0"].duplicate_of is None and by_source["tapis/f0"].duplicate_of is None
    assert by_source["resto/f1"].duplicate_of == by_source["resto/f0"].id  # counted once for resto
    assert all(pipeline.runtimes[k].state.cursor == "42" for k in keys)
    with read_conn(pipeline.engine) as conn:
        counts = dict(conn.execute(select(sources.c.key, sources.c.hits_count)).all())
        cursors = {r.cursor for r in conn.execute(select(sources.c.cursor))}
    assert counts == {"resto/f0": 1, "resto/f1": 1, "tapis/f0": 1} and cursors == {"42"}


NEWS_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Actu</title>
<item><guid>urn:lead-only</guid><title>Le centre-ville se réinvente</title>
<description>&lt;p&gt;Le restaurant Chez Gégé rouvre ses portes lundi.&lt;/p&gt;</description>
<content:encoded><![CDATA[<p>La municipalité a présenté son plan.</p>
<p>Les travaux dureront un an.</p>]]></content:encoded>
</item>
<item><guid>urn:lead-repeated</guid><title>Inspection sanitaire</title>
<description>&lt;p&gt;Chez Gégé reconnaît une intoxication.&lt;/p&gt;</description>
<content:encoded><![CDATA[<p>Chez Gégé reconnaît une intoxication.</p>
<p>Le gérant présente ses excuses.</p>]]></content:encoded>
</item>
<item><guid>urn:category-only</guid><title>Le salon de la gastronomie ouvre</title><category>Économie</category>
<category>Chez Gégé</category><description>Une centaine d'exposants.</description></item>
<item><guid>urn:elsewhere</guid><title>Le budget voté</title><description>Rien à voir.</description>
<content:encoded><![CDATA[<p>Le conseil municipal a voté.</p>]]></content:encoded></item>
</channel></rss>"""


@pytest.mark.parametrize("parse_workers", [0, 1], ids=["in-process", "parse-worker"])
async def test_every_field_is_matched_and_the_lead_is_stored_once(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock, parse_workers: int
) -> None:
    """A news article naming the client in its description alone, or in a category alone, is stored once;
    a description the content repeats is not stored twice."""
    from veille.sources.rss.parsepool import FeedParsePool

    server.route("/news", etag_feed(NEWS_RSS))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/news")]})
    pool = FeedParsePool(workers=parse_workers, timeout=5.0, max_entries=200) if parse_workers else None
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, parse_feed=pool.parse if pool else None)
    pipeline.load()
    await pipeline.start()
    try:
        for key in pipeline.runtimes:
            await pipeline.poll(key, force=True)
        clock.advance(3600)
        for key in pipeline.runtimes:  # the same entries again: nothing new
            await pipeline.poll(key, force=True)
    finally:
        await pipeline.stop()
        if pool is not None:
            pool.close()
    rows = {row.external_id: row for row in stored(config)}
    assert sorted(rows) == ["urn:category-only", "urn:lead-only", "urn:lead-repeated"]
    lead_only = rows["urn:lead-only"].text
    assert lead_only == (
        "Le restaurant Chez Gégé rouvre ses portes lundi.\n\nLa municipalité a présenté son plan.\n\n"
        "Les travaux dureront un an."
    )
    assert rows["urn:lead-repeated"].text.count("intoxication") == 1
    assert rows["urn:category-only"].extra["categories"] == "Économie, Chez Gégé"


async def test_the_clients_own_name_is_never_scored_as_sentiment(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """Issue 11: a client named with an opinion word ("Au Mauvais Garçon") opening a shop is news, not a
    complaint: the name is taken out before scoring."""
    from veille.scoring import load_scorer

    title = "Au Mauvais Garçon ouvre une boutique à Lyon"
    news = {
        "title": title,
        "text": title,
        "guid": "urn:garcon:1",
        "link": "https://news.example.org/garcon/1",
        "date": "Fri, 20 Nov 2026 08:00:00 +0000",
    }
    server.route("/feed", etag_feed(rss([news])))
    config = make_config(tmp_path, db_url, {"tapis": [server.url("/feed")]}, keywords='["au mauvais garçon"]')
    scorer = load_scorer(config.sentiment)
    assert scorer.score_batch([title])[0].label == "neg"  # the name alone reads as a complaint to the scorer
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, scorer=scorer, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    await pipeline.poll(next(iter(pipeline.runtimes)))
    await pipeline.stop()
    engine.dispose()
    (row,) = stored(config)
    assert row.sentiment_label != "neg", (row.sentiment_score, row.sentiment_reasons)
    assert not any("mauvais" in reason.lower() for reason in row.sentiment_reasons or ())


async def test_a_stored_result_keeps_its_counts_not_its_items(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """`veille run --once` keeps every poll's result until it exits: the stored items are not kept with them."""
    items = feed_items(1, 30)
    server.route("/feed", etag_feed(rss(items)))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/feed")]})
    pipeline = await started(config, http, clock)
    result = await pipeline.poll(next(iter(pipeline.runtimes)))
    await pipeline.stop()
    assert result is not None and result.new_hits == sum(1 for i in items if i["matches"]) > 0
    assert result.matched == [] and result.outcome is not None and result.outcome.items == []


async def test_the_next_batch_is_scored_while_the_one_before_is_stored(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """Issue 12: the scorer works in its own process, so the writer scores a batch while the batch before it is
    being stored. Here the first batch's store waits inside its transaction until the scorer is asked about
    the second batch: with the two stages in series it would wait in vain."""
    import threading

    from veille.runtime.pipeline import NoHooks
    from veille.scoring import load_scorer

    server.route("/a", etag_feed(rss(feed_items(1, 10))))
    server.route("/b", etag_feed(rss(feed_items(2, 10))))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/a"), server.url("/b")]})
    real = load_scorer(config.sentiment)
    batches: list[int] = []
    second_scored, storing = threading.Event(), threading.Event()

    class CountingScorer:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def score_batch(self, texts: Any) -> Any:
            batches.append(len(texts))
            if len(batches) == 2:
                second_scored.set()
            return real.score_batch(texts)

    overlapped: list[bool] = []

    class SlowStore(NoHooks):
        def on_new_hits(self, conn: Any, hits: Any) -> None:
            if not overlapped:
                storing.set()
                overlapped.append(second_scored.wait(timeout=10))

    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, scorer=CountingScorer(), hooks=SlowStore(), rng=random.Random(1))  # type: ignore[arg-type]
    pipeline.load()
    await pipeline.start()
    first_key, second_key = list(pipeline.runtimes)
    first = asyncio.create_task(pipeline.poll(first_key))
    assert await asyncio.to_thread(storing.wait, 10)  # the first batch is in its transaction
    second = await pipeline.poll(second_key)
    await first
    await pipeline.stop()
    engine.dispose()
    assert overlapped == [True] and len(batches) == 2
    assert (
        second is not None and second.new_hits > 0 and len(stored(config)) == first.result().new_hits + second.new_hits
    )  # type: ignore[union-attr]


async def test_while_the_model_loads_the_next_feeds_are_fetched_without_waiting_for_slots(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """Issue 12: `veille run --once` holds matched items until the model has loaded; their polls give their slots
    back meanwhile, so with one slot all three feeds are fetched before anything is stored, then stored."""
    for name in "abc":
        server.route(f"/{name}", etag_feed(rss(feed_items(ord(name), 5))))
    urls = [server.url(f"/{name}") for name in "abc"]
    config = make_config(tmp_path, db_url, {"resto": urls}, extra="[daemon]\nconcurrency = 1\n")
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, rng=random.Random(1))
    pipeline.load()
    loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    pipeline.hold_writes_until(loaded)
    await pipeline.start()
    polls = asyncio.gather(*(pipeline.poll(key) for key in pipeline.runtimes))
    for _ in range(100):
        if all(server.requests_to(f"/{name}") for name in "abc"):
            break
        await asyncio.sleep(0.05)
    fetched = [bool(server.requests_to(f"/{name}")) for name in "abc"]
    assert stored(config) == []  # nothing stored while the model loads
    loaded.set_result(None)
    results = await polls
    await pipeline.stop()
    engine.dispose()
    assert fetched == [True, True, True]
    assert len(stored(config)) == sum(r.new_hits for r in results if r is not None) > 0


async def test_a_batch_is_stored_in_short_transactions_of_whole_sources(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """Issue 17: a first poll of many feeds is stored in several write transactions, each holding whole sources,
    sized to hold the lock about TX_BUDGET; every hit is stored once and every poll is told it was stored."""
    from veille.store.engine import write_stats

    names = "abcdef"
    for name in names:
        server.route(f"/{name}", etag_feed(rss(feed_items(ord(name), 12))))
    config = make_config(tmp_path, db_url, {"resto": [server.url(f"/{name}") for name in names]})
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, clock, http, rng=random.Random(1))
    pipeline.load()
    pipeline._part_items = 1  # one source per transaction (fewer items than MIN_PART_ITEMS: never resized)
    loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    pipeline.hold_writes_until(loaded)  # every poll queues before the writer takes them: one batch
    await pipeline.start()
    polls = asyncio.gather(*(pipeline.poll(key) for key in pipeline.runtimes))
    for _ in range(100):
        if all(server.requests_to(f"/{name}") for name in names):
            break
        await asyncio.sleep(0.05)
    before = write_stats(engine).count
    loaded.set_result(None)
    results = await polls
    await pipeline.stop()
    transactions = write_stats(engine).count - before
    engine.dispose()
    matched = [r for r in results if r is not None and r.new_hits]
    assert len(matched) == len(names) and transactions >= len(names)
    assert len(stored(config)) == sum(r.new_hits for r in matched)


async def test_a_large_poll_is_split_over_transactions_with_its_state_in_the_last(
    tmp_path: Path,
    db_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: one feed's entries are stored over several write transactions, its ETag only with the last; a
    failure between them keeps what was committed and leaves the state unadvanced, so that after a restart the
    feed is fetched again in full and every entry ends up stored exactly once."""
    from veille.runtime import pipeline as module
    from veille.store.engine import write_stats

    server.route("/feed", etag_feed(rss(feed_items(7, 12, matching_ratio=1.0))))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/feed")]})
    writes: list[tuple[int, str | None]] = []  # per transaction: the items stored, the source's stored ETag
    failing = {"at": 3}
    real_store_batch = module.store_batch

    def store_batch(conn: Any, parts: Any, now: Any, **options: Any) -> Any:
        etag = conn.execute(select(sources.c.etag)).scalar_one()
        writes.append((sum(len(items) for _, items in parts), etag))
        if len(writes) == failing["at"]:
            raise StorageError("the disk is full")  # a failure (or a crash) between the parts
        return real_store_batch(conn, parts, now, **options)

    monkeypatch.setattr(module, "store_batch", store_batch)
    pipeline = await started(config, http, clock)
    pipeline._part_items = 5  # fewer than MIN_PART_ITEMS: never resized
    key = next(iter(pipeline.runtimes))
    with pytest.raises(StorageError):
        await pipeline.poll(key)
    await pipeline.stop()
    assert writes == [(5, None), (5, None), (2, None)]
    assert len(stored(config)) == 10  # the first two parts stayed committed
    assert pipeline.runtimes[key].state.etag is None

    failing["at"] = 0
    writes.clear()
    restarted = await started(config, http, clock)  # as after a crash: the state is read from the database
    restarted._part_items = 5
    before = write_stats(restarted.engine).count
    result = await restarted.poll(key)
    await restarted.stop()
    assert write_stats(restarted.engine).count - before == 3
    assert writes == [(5, None), (5, None), (2, None)]  # the ETag is written by the last transaction only
    assert "If-None-Match" not in server.requests_to("/feed")[1].headers
    assert result is not None and result.new_hits == 2
    rows = stored(config)
    assert len(rows) == len({row.external_id for row in rows}) == 12
    engine = make_engine(config.database_url)
    with read_conn(engine) as conn:
        assert conn.execute(select(sources.c.etag, sources.c.hits_count)).one() == ('"v1"', 12)
    engine.dispose()
    assert restarted.runtimes[key].state.etag == '"v1"'


async def test_the_entries_of_one_split_poll_are_not_copies_of_each_other(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """Entries of one poll never point at each other (same text, different guids), also when the poll is stored
    over several transactions (without the ids of the earlier ones, the later ones were linked to them)."""
    items = feed_items(7, 12, matching_ratio=1.0)
    # The same text under several guids (the duplicate fingerprint leaves the digits out)
    assert len({"".join(c for c in item["text"] if not c.isdigit()) for item in items}) < len(items)
    server.route("/feed", etag_feed(rss(items)))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/feed")]})
    pipeline = await started(config, http, clock)
    pipeline._part_items = 5
    result = await pipeline.poll(next(iter(pipeline.runtimes)))
    await pipeline.stop()
    rows = stored(config)
    assert result is not None and result.new_hits == len(rows) == 12
    assert [row.duplicate_of for row in rows] == [None] * 12
