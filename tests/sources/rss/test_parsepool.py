"""FeedParsePool: real worker processes, killed and replaced on timeout, crash or memory exhaustion (E5)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from tests.support import feeds
from tests.support.server import LocalServer, Response
from veille.core.errors import PermanentFetchError
from veille.core.models import ErrorKind
from veille.sources.rss.entries import parse_document
from veille.sources.rss.parsepool import FeedParsePool

URL = "https://example.org/feed.xml"


@pytest.fixture
async def pool() -> AsyncIterator[FeedParsePool]:
    parse_pool = FeedParsePool(workers=2, timeout=1.0, max_entries=50)
    yield parse_pool
    parse_pool.close()


async def test_parses_like_the_in_process_parser(pool: FeedParsePool) -> None:
    body = feeds.atom(5)
    parsed = await pool.parse(body, URL, {"Content-Type": "application/atom+xml"})
    assert parsed == parse_document(body, URL, {"content-type": "application/atom+xml"}, max_entries=50)
    assert len(parsed.entries) == 5


async def test_max_entries_is_applied_in_the_worker(pool: FeedParsePool) -> None:
    parsed = await pool.parse(feeds.rss(120), URL, {})
    assert parsed.total_entries == 120 and len(parsed.entries) == 50


async def test_error_kinds_cross_the_process_boundary(pool: FeedParsePool) -> None:
    cases = {
        feeds.quadratic_blowup(): ErrorKind.UNSAFE_XML,
        feeds.HTML_LOGIN_PAGE: ErrorKind.NOT_A_FEED,
        feeds.GARBAGE: ErrorKind.PARSE_ERROR,
    }
    for body, kind in cases.items():
        with pytest.raises(PermanentFetchError) as info:
            await pool.parse(body, URL, {})
        assert info.value.kind is kind


async def test_external_dtd_is_not_fetched_by_a_worker(pool: FeedParsePool) -> None:
    with LocalServer() as server:
        server.route("/evil.dtd", Response(200, '<!ENTITY x "LEAKED">', {"Content-Type": "application/xml-dtd"}))
        parsed = await pool.parse(feeds.external_dtd(server.url("/evil.dtd")), URL, {})
        assert [e.title for e in parsed.entries] == ["ok"]
        assert server.requests == []


async def test_redos_author_times_out_and_the_worker_is_replaced(pool: FeedParsePool) -> None:
    await asyncio.gather(pool.parse(feeds.rss(1), URL, {}), pool.parse(feeds.rss(1), URL, {}))
    before = set(pool.pids)
    assert None not in before

    async def good() -> int:
        return len((await pool.parse(feeds.rss(3), URL, {})).entries)

    results = await asyncio.gather(
        pool.parse(feeds.redos_authors(), URL, {}), *(good() for _ in range(6)), return_exceptions=True
    )
    error = results[0]
    assert isinstance(error, PermanentFetchError) and error.kind is ErrorKind.PARSE_TIMEOUT
    assert results[1:] == [3] * 6  # the other parses were unaffected
    assert pool.timeouts == 1 and pool.restarts == 1
    assert await good() == 3 and await good() == 3
    after = set(pool.pids)
    assert len(before - after) == 1  # exactly one worker was replaced
    for pid in before - after:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # really gone, and reaped


async def test_worker_killed_during_a_parse_fails_that_parse_only() -> None:
    pool = FeedParsePool(workers=1, timeout=30.0)
    try:
        await pool.parse(feeds.rss(1), URL, {})
        pid = pool.pids[0]
        assert pid is not None
        slow = asyncio.create_task(pool.parse(feeds.redos_authors(), URL, {}))
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(PermanentFetchError) as info:
            await slow
        assert info.value.kind is ErrorKind.PARSE_ERROR
        assert len((await pool.parse(feeds.rss(2), URL, {})).entries) == 2
        assert pool.pids[0] != pid and pool.restarts == 1
    finally:
        pool.close()


async def test_worker_that_died_while_idle_is_restarted(pool: FeedParsePool) -> None:
    await asyncio.gather(pool.parse(feeds.rss(1), URL, {}), pool.parse(feeds.rss(1), URL, {}))
    for pid in pool.pids:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.1)
    results = await asyncio.gather(*(pool.parse(feeds.rss(2), URL, {}) for _ in range(4)))
    assert [len(r.entries) for r in results] == [2, 2, 2, 2]


async def test_memory_cap_is_set_and_exhaustion_is_too_large() -> None:
    limit = 64 * 1024 * 1024
    pool = FeedParsePool(workers=1, timeout=20.0, memory_limit=limit)
    try:
        await pool.parse(feeds.rss(1), URL, {})
        with open(f"/proc/{pool.pids[0]}/limits") as limits:
            line = next(row for row in limits if row.startswith("Max address space"))
        assert str(limit) in line.split()
        huge = feeds.Feed(entries=[feeds.Entry(description="😀" * 4_000_000)]).bytes()  # 16 MB
        with pytest.raises(PermanentFetchError) as info:
            await pool.parse(huge, URL, {})
        assert info.value.kind is ErrorKind.TOO_LARGE
        assert len((await pool.parse(feeds.rss(2), URL, {})).entries) == 2
    finally:
        pool.close()


async def test_cancelled_parse_does_not_hand_a_busy_worker_to_another(pool: FeedParsePool) -> None:
    slow = asyncio.create_task(pool.parse(feeds.redos_authors(), URL, {}))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    results = await asyncio.gather(*(pool.parse(feeds.rss(1), URL, {}) for _ in range(5)))
    assert all(len(r.entries) == 1 for r in results)


async def test_close_stops_the_workers() -> None:
    pool = FeedParsePool(workers=2)
    await asyncio.gather(pool.parse(feeds.rss(1), URL, {}), pool.parse(feeds.rss(1), URL, {}))
    pids = list(pool.pids)
    pool.close()
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        await pool.parse(feeds.rss(1), URL, {})


def test_workers_zero_means_one_per_core() -> None:
    assert FeedParsePool(workers=0).size == len(os.sched_getaffinity(0))


async def test_with_keywords_only_the_clients_matching_entries_come_back(pool: FeedParsePool) -> None:
    entries = [
        feeds.Entry(guid=f"g{i}", title=title)
        for i, title in enumerate(["Chez Gégé : super", "autre chose", "CHEZ GEGE encore", "merci @chezgege"])
    ]
    body = feeds.Feed(entries=entries).bytes()
    parsed = await pool.parse(body, URL, {}, keywords=("chez gégé", "@chezgege"), now=1.8e9, max_entries=None)
    assert [(e.guid, e.terms, e.direct) for e in parsed.entries] == [
        ("g0", ("chez gege",), False),
        ("g2", ("chez gege",), False),
        ("g3", ("@chezgege",), True),
    ]
    assert parsed.total_entries == 4
    capped = await pool.parse(body, URL, {}, keywords=("chez gégé",), now=1.8e9, max_entries=1)
    assert [e.guid for e in capped.entries] == ["g0"]


async def test_started_ahead_workers_serve_at_once_and_a_parse_during_start_waits() -> None:
    pool = FeedParsePool(workers=2, timeout=5.0)
    try:
        starting = asyncio.create_task(pool.start())
        early = asyncio.create_task(pool.parse(feeds.rss(3), URL, {}))  # queued until a worker is ready
        await starting
        assert all(pid is not None for pid in pool.pids)
        assert len((await early).entries) == 3
        assert pool.restarts == 0
    finally:
        pool.close()


async def test_workers_run_nicer_than_the_daemon(pool: FeedParsePool) -> None:
    """Issue 17: parsing keeps the cores busy on a first poll; the daemon (its writer holding the database's lock)
    goes first."""
    from veille.core.workerproc import HELPER_NICENESS

    await pool.parse(feeds.rss(2), URL, {})
    pids = [pid for pid in pool.pids if pid is not None]
    assert pids
    for pid in pids:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICENESS)
