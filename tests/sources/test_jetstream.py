"""Jetstream consumer against a local websocket server: matching for all clients, batches, cursor resume,
reconnects with backoff, a failing store, zstd frames; and the config-only driver."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fake_jetstream import BASE_US, FakeJetstream, other_event, post_event
from veille.core.backoff import EQUAL, BackoffPolicy
from veille.core.clock import SystemClock
from veille.core.errors import PermanentFetchError, Problems
from veille.core.matching import Matcher, fold
from veille.core.models import Item
from veille.core.polling import PollState
from veille.sources.jetstream import DEFAULT_URL, JetstreamConsumer, JetstreamDriver, MatcherIndex, event_item

LOG = logging.getLogger("tests.jetstream")
MATCHERS = {
    "gege": Matcher(["chez gégé", "@chezgege.bsky.social", "-recrutement"]),
    "lucie": Matcher(["boulangerie lucie", "#painlucie"]),
}


class Store:
    """Plays the lead's on_batch: keeps items per client and the last cursor; can fail on demand."""

    def __init__(self, cursor: int | None = None) -> None:
        self.items: dict[str, list[Item]] = {}
        self.cursor = cursor
        self.batches = 0
        self.fail_next = 0
        self.loads = 0

    async def load(self) -> int | None:
        self.loads += 1
        return self.cursor

    async def on_batch(self, items: dict[str, list[Item]], cursor: int) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database is locked")
        self.batches += 1
        for client, found in items.items():
            self.items.setdefault(client, []).extend(found)
        self.cursor = cursor

    def ids(self, client: str) -> set[str]:
        return {i.external_id for i in self.items.get(client, [])}


def consumer(url: str, **kw: object) -> JetstreamConsumer:
    settings_ = {
        "batch_size": 50,
        "batch_seconds": 0.05,
        "cursor_every": 0.05,
        "reconnect": BackoffPolicy(base=0.01, cap=0.05, jitter=EQUAL),
        "close_timeout": 0.2,
        **kw,
    }
    return JetstreamConsumer(url, MATCHERS, clock=SystemClock(), log=LOG, **settings_)  # type: ignore[arg-type]


async def run_until(
    c: JetstreamConsumer,
    store: Store,
    done: Callable[[], bool],
    timeout: float = 10.0,
    on_batch: Callable[..., Awaitable[None]] | None = None,
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, store.load, on_batch or store.on_batch))
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def corpus(n: int = 300) -> list[dict]:
    events = []
    for seq in range(n):
        if seq % 50 == 7:
            events.append(post_event(seq, f"Dîner chez Gégé ce soir {seq}"))
        elif seq % 50 == 8:
            events.append(post_event(seq, f"@chezgege.bsky.social merci ! {seq}"))
        elif seq % 50 == 9:
            events.append(post_event(seq, f"Chez Gégé recrutement {seq}"))  # excluded for gege
        elif seq % 50 == 10:
            events.append(post_event(seq, f"La BOULANGERIE Lucie #painlucie {seq}"))
        elif seq % 10 == 3:
            events.append(other_event(seq, "identity"))
        else:
            events.append(post_event(seq, f"just a post about nothing {seq}", langs=("en",)))
    return events


async def test_matches_every_client_and_reports_the_cursor() -> None:
    fake = FakeJetstream(events=corpus())
    store = Store()
    async with fake.running():
        c = consumer(fake.url)
        await run_until(c, store, lambda: store.cursor == BASE_US + 299 * 1000)
    assert len(store.ids("gege")) == 12 and len(store.ids("lucie")) == 6
    direct = [i for i in store.items["gege"] if i.direct]
    assert len(direct) == 6 and all("@chezgege" in i.text for i in direct)
    assert not any("recrutement" in i.text for i in store.items["gege"])
    item = store.items["lucie"][0]
    assert item.external_id == "at://did:plc:alice/app.bsky.feed.post/rk000010"
    assert item.url == "https://bsky.app/profile/did:plc:alice/post/rk000010"
    assert item.author == "did:plc:alice" and item.lang == "fr" and item.published_at is not None
    assert fake.queries[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert "cursor" not in fake.queries[0]  # nothing stored yet: start live


async def test_resumes_from_the_stored_cursor_minus_a_rewind() -> None:
    fake = FakeJetstream(events=corpus())
    store = Store(cursor=BASE_US + 200 * 1000)
    async with fake.running():
        c = consumer(fake.url, rewind_us=20_000)  # 20 events of 1 ms
        await run_until(c, store, lambda: store.cursor == BASE_US + 299 * 1000)
    assert fake.queries[0]["cursor"] == [str(BASE_US + 180 * 1000)]
    assert store.ids("gege") == {f"at://did:plc:alice/app.bsky.feed.post/rk{s:06}" for s in (207, 208, 257, 258)}


async def test_reconnects_and_resumes_without_losing_a_match() -> None:
    fake = FakeJetstream(events=corpus(), close_after=60)
    store = Store()
    async with fake.running():
        c = consumer(fake.url, batch_size=10, rewind_us=2_000)
        await run_until(c, store, lambda: store.cursor == BASE_US + 299 * 1000)
    assert len(fake.queries) >= 5
    assert all("cursor" in q for q in fake.queries[1:])
    assert len(store.ids("gege")) == 12 and len(store.ids("lucie")) == 6


async def test_a_failing_store_replays_the_batch() -> None:
    fake = FakeJetstream(events=corpus(60))
    store = Store()
    store.fail_next = 1
    async with fake.running():
        c = consumer(fake.url, batch_size=5, rewind_us=2_000)
        await run_until(c, store, lambda: store.cursor == BASE_US + 59 * 1000)
    assert len(fake.queries) >= 2  # reconnected from the stored cursor after the failure
    assert store.ids("gege") == {f"at://did:plc:alice/app.bsky.feed.post/rk{s:06}" for s in (7, 8, 57, 58)}
    assert len(store.ids("lucie")) == 1


async def test_connection_refused_backs_off_and_stops_promptly() -> None:
    fake = FakeJetstream()
    async with fake.running():
        url = fake.url
    store = Store()
    c = consumer(url, reconnect=BackoffPolicy(base=0.01, cap=0.02, jitter=EQUAL))
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop, store.load, store.on_batch))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert store.loads >= 3 and c.connections == 0


async def test_zstd_frames_with_a_dictionary() -> None:
    samples = [str(post_event(i, f"sample text number {i} with some words")).encode() * 3 for i in range(400)]
    dictionary = zstandard.train_dictionary(4096, samples)
    fake = FakeJetstream(events=corpus(), compress_with=zstandard.ZstdCompressor(dict_data=dictionary))
    store = Store()
    async with fake.running():
        c = consumer(fake.url, zstd_dictionary=dictionary.as_bytes())
        await run_until(c, store, lambda: store.cursor == BASE_US + 299 * 1000)
    assert fake.queries[0]["compress"] == ["true"]
    assert len(store.ids("gege")) == 12


async def test_garbage_frames_are_skipped() -> None:
    fake = FakeJetstream(events=[{"junk": True}, post_event(1, "chez gégé"), {"kind": "commit", "time_us": "x"}])
    store = Store()
    async with fake.running():
        await run_until(consumer(fake.url), store, lambda: bool(store.items))
    assert len(store.ids("gege")) == 1


def test_event_item_ignores_non_posts_and_deletes() -> None:
    assert event_item(other_event(1, "like")) is None
    assert event_item(other_event(2, "account")) is None
    assert event_item(post_event(3, "x", operation="delete")) is None
    assert event_item({"kind": "commit", "did": "d", "commit": {"collection": "app.bsky.feed.post"}}) is None


def test_driver_validates_options_and_refuses_to_poll() -> None:
    driver = JetstreamDriver()
    problems = Problems()
    options = driver.parse_options({}, "c.s", problems)
    assert options is not None and options.url == DEFAULT_URL and not problems
    assert driver.parse_options({"url": "https://x", "nope": 1}, "c.s", problems) is None
    assert {p.path for p in problems.items} == {"c.s.url", "c.s.nope"}


async def test_poll_says_it_is_a_stream() -> None:
    with pytest.raises(PermanentFetchError):
        await JetstreamDriver().poll(None, None, PollState())  # type: ignore[arg-type]


KEYWORDS = st.lists(
    st.sampled_from(
        [
            "chez gégé",
            "pizza OR pâtes",
            '"la cave" -vin',
            "#painlucie",
            "@gege",
            "œuf",
            "l'atelier",
            "zero-dechet",
            "-spam",
            "or noir",
            "c++ dev",
        ]
    ),
    min_size=1,
    max_size=4,
)
WORDS = [
    "gégé",
    "gege",
    "pizza",
    "pâtes",
    "cave",
    "chez",
    "Œuf",
    "oeuf",
    "or",
    "noir",
    "dev",
    "c",
    "zero",
    "dechet",
    "atelier",
    "l",
    "painlucie",
    "la",
    "vin",
    "spam",
    "x",
]
SEPARATORS = ["", " ", " ", " ", "'", "-", " #", " @", "+", "+ ", ".", "\n"]
TEXT = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=12).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)


@settings(max_examples=300, deadline=None)
@given(keywords=KEYWORDS, text=TEXT)
def test_word_index_never_hides_a_match(keywords: list[str], text: str) -> None:
    matcher = Matcher(keywords)
    index = MatcherIndex({"c": matcher})
    if matcher.match(text).matched:
        assert "c" in index.candidates(fold(text))


async def test_stop_during_a_hung_handshake_returns_promptly() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # takes the upgrade request, never answers it
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        store = Store()
        c = consumer(f"ws://127.0.0.1:{port}/subscribe", open_timeout=30.0)
        stop = asyncio.Event()
        task = asyncio.create_task(c.run(stop, store.load, store.on_batch))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 3)  # not the 30 s open timeout
        assert c.connections == 0
    finally:
        server.close()
