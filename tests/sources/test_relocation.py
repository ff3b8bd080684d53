"""D9 Gone / moved over real loopback HTTP and a real database, on a fake clock.

A 301/308 is adopted only after CONFIRMATIONS consecutive polls ending on the same permanent
target (then polled directly, kept across restarts, forgotten when config.toml names another URL);
a 404 turns a source GONE only once it has lasted `[daemon] gone_after`.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.daemon import make_config
from tests.support.feedgen import feed_items, rss
from tests.support.server import LocalServer, Response
from veille.cli import cli
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.errors import PermanentFetchError
from veille.core.models import ErrorKind, SourceStatus
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.pipeline import Pipeline, failure_schedule
from veille.sources.relocation import CONFIRMATIONS, Relocation, advance, describe, from_cursor
from veille.store.engine import make_engine

FEED = rss(feed_items(7, 3, matching_ratio=1.0))


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[HttpClient]:
    async with HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0), clock=clock) as client:
        yield client


async def open_pipeline(config: Config, http: HttpClient, clock: FakeClock) -> Pipeline:
    pipeline = Pipeline(config, make_engine(config.database_url), clock, http, rng=random.Random(3))
    pipeline.load()
    await pipeline.start()
    return pipeline


async def poll_n(pipeline: Pipeline, clock: FakeClock, times: int) -> None:
    """Poll the only source `times` times, each when it is due (the clock jumps to its next poll)."""
    key = next(iter(pipeline.runtimes))
    for _ in range(times):
        runtime = pipeline.runtimes[key]
        if runtime.next_poll_at is not None and runtime.next_poll_at > clock.now():
            clock.advance((runtime.next_poll_at - clock.now()).total_seconds())
        result = await pipeline.poll(key)
        assert result is not None


def moved_feed(server: LocalServer, status: int = 301, target: str = "/new") -> None:
    server.route("/old", Response(status, "", {"Location": target}))
    server.route(target.partition("?")[0], Response(200, FEED, {"Content-Type": "application/rss+xml"}))


# --- the decision, as a table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "adopted"),
    [
        (["B", "B"], None),
        (["B", "B", "B"], "B"),
        (["B", "C", "B", "C", "B", "C"], None),
        (["B", "B", None, "B", "B"], None),  # a poll without a permanent redirect resets the count
        (["B", "B", "C", "C", "C"], "C"),
        (["B", "B", "B", None, None], "B"),  # adopted stays adopted (the new URL answers directly)
    ],
)
def test_adoption_needs_consecutive_confirmations(targets: list[str | None], adopted: str | None) -> None:
    state = None
    for target in targets:
        state = advance(state, origin="A", permanent_url=target)
    assert (state.adopted if state else None) == adopted


def test_stored_relocation_is_forgotten_when_the_config_url_changes() -> None:
    cursor = Relocation("https://a.example/feed", adopted="https://b.example/feed").to_cursor()
    assert from_cursor(cursor, "https://a.example/feed") == Relocation(
        "https://a.example/feed", adopted="https://b.example/feed"
    )
    assert from_cursor(cursor, "https://c.example/feed") is None
    assert from_cursor("12345", "https://a.example/feed") is None  # not ours: ignored


# --- over HTTP, through the pipeline --------------------------------------------------------------


async def test_301_seen_twice_is_not_adopted_three_times_is(
    tmp_path: Path,
    db_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    moved_feed(server, 301)
    config = make_config(tmp_path, db_url, {"resto": [server.url("/old")]})
    pipeline = await open_pipeline(config, http, clock)
    await poll_n(pipeline, clock, 2)
    assert len(server.requests_to("/old")) == 2
    await poll_n(pipeline, clock, 1)  # third confirmation: adopted from the next poll on
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await poll_n(pipeline, clock, 2)
    await pipeline.stop()
    assert len(server.requests_to("/old")) == 3
    assert len(server.requests_to("/new")) == 5
    assert not [r for r in caplog.records if "moved permanently" in r.getMessage()]  # told once, before


async def test_308_is_adopted_and_the_user_is_told_once_without_the_query(
    tmp_path: Path,
    sqlite_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    moved_feed(server, 308, "/new?token=S3CRET")
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/old")]})
    pipeline = await open_pipeline(config, http, clock)
    with caplog.at_level(logging.INFO):
        await poll_n(pipeline, clock, CONFIRMATIONS + 2)
    await pipeline.stop()
    told = [r.getMessage() for r in caplog.records if "moved permanently" in r.getMessage()]
    assert len(told) == 1 and "config.toml" in told[0] and "resto/f0" in told[0]
    assert server.url("/new") in told[0]
    # httpx's own request log is silenced by the daemon (quiet_http_loggers); veille's never has it.
    assert not [r for r in caplog.records if r.name.startswith("veille") and "S3CRET" in r.getMessage()]
    direct = server.requests_to("/new")[-1]
    assert direct.query == {"token": ["S3CRET"]}  # the adopted URL is requested whole
    assert len(server.requests_to("/old")) == CONFIRMATIONS


@pytest.mark.parametrize("status", [302, 307])
async def test_temporary_redirects_are_never_adopted(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock, status: int
) -> None:
    moved_feed(server, status)
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/old")]})
    pipeline = await open_pipeline(config, http, clock)
    await poll_n(pipeline, clock, 6)
    await pipeline.stop()
    assert len(server.requests_to("/old")) == 6


async def test_alternating_targets_are_never_adopted(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    flip = iter(range(100))
    server.route("/old", lambda _r: Response(301, "", {"Location": "/b" if next(flip) % 2 else "/a"}))
    for path in ("/a", "/b"):
        server.route(path, Response(200, FEED, {"Content-Type": "application/rss+xml"}))
    config = make_config(tmp_path, sqlite_url, {"resto": [server.url("/old")]})
    pipeline = await open_pipeline(config, http, clock)
    await poll_n(pipeline, clock, 7)
    await pipeline.stop()
    assert len(server.requests_to("/old")) == 7


async def test_adoption_survives_a_restart_and_shows_in_sources_until_the_url_changes(
    tmp_path: Path,
    db_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved_feed(server, 301)
    config = make_config(tmp_path, db_url, {"resto": [server.url("/old")]})
    first = await open_pipeline(config, http, clock)
    await poll_n(first, clock, CONFIRMATIONS)
    await first.stop()
    first.engine.dispose()

    second = await open_pipeline(config, http, clock)  # a restart: state comes from the database
    await poll_n(second, clock, 1)
    await second.stop()
    second.engine.dispose()
    assert len(server.requests_to("/old")) == CONFIRMATIONS
    assert len(server.requests_to("/new")) == CONFIRMATIONS + 1

    monkeypatch.setenv("VEILLE_LANG", "fr")
    rows = json.loads(CliRunner().invoke(cli, ["sources", "--config", config.path, "--format", "json"]).output)
    assert rows[0]["note"].startswith(f"déplacé vers {server.url('/new')} (adopté")
    assert rows[0]["target"] == server.url("/old")  # config.toml still names the old URL
    monkeypatch.setenv("VEILLE_LANG", "en")
    table = CliRunner().invoke(cli, ["sources", "--config", config.path]).output
    assert "moved to" in table and "adopted" in table

    # config.toml now names another URL for the same source id: the adoption is forgotten.
    server.route("/other", Response(200, FEED, {"Content-Type": "application/rss+xml"}))
    text = Path(config.path).read_text(encoding="utf-8").replace(server.url("/old"), server.url("/other"))
    Path(config.path).write_text(text, encoding="utf-8")
    third = await open_pipeline(parse_config(text, file=config.path, environ={}), http, clock)
    await poll_n(third, clock, 1)
    await third.stop()
    third.engine.dispose()
    assert len(server.requests_to("/other")) == 1 and len(server.requests_to("/new")) == CONFIRMATIONS + 1
    rows = json.loads(CliRunner().invoke(cli, ["sources", "--config", config.path, "--format", "json"]).output)
    assert rows[0]["note"] is None


def test_notes_name_host_and_path_only() -> None:
    state = Relocation(
        "https://a.example/f", target="https://b.example/f?key=K", seen=1, adopted="https://c.example/g?key=K"
    )
    for lang in ("fr", "en"):
        note = describe(state, lang)
        assert note is not None and "key=K" not in note and "https://c.example/g" in note
        assert f"1/{CONFIRMATIONS}" in note


# --- 404 for long -> gone ------------------------------------------------------------------------


async def failing_for(
    days: float, tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> Pipeline:
    """Poll a 404 feed whenever it is due for `days` days."""
    server.route("/missing", Response(404, b"not found"))
    config = make_config(tmp_path, db_url, {"resto": [server.url("/missing")]})
    pipeline = await open_pipeline(config, http, clock)
    end = clock.now() + timedelta(days=days)
    key = next(iter(pipeline.runtimes))
    while True:
        await pipeline.poll(key)
        due = pipeline.runtimes[key].next_poll_at
        assert due is not None
        if due > end:
            break
        clock.advance((due - clock.now()).total_seconds())
    await pipeline.stop()
    return pipeline


async def test_404_for_eight_days_is_gone_with_one_error(
    tmp_path: Path,
    db_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        pipeline = await failing_for(8, tmp_path, db_url, server, http, clock)
    runtime = next(iter(pipeline.runtimes.values()))
    assert runtime.status is SourceStatus.GONE
    gone = [r for r in caplog.records if "is gone" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.ERROR
    assert "resto/f0" in gone[0].getMessage() and "config" in gone[0].getMessage()
    assert runtime.next_poll_at is not None  # never abandoned: retried at the cap
    assert runtime.next_poll_at - clock.now() >= timedelta(hours=24)
    assert len(server.requests_to("/missing")) > 8  # polled after going gone too


async def test_404_for_one_day_only_backs_off(
    tmp_path: Path,
    sqlite_url: str,
    server: LocalServer,
    http: HttpClient,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = await failing_for(1, tmp_path, sqlite_url, server, http, clock)
    runtime = next(iter(pipeline.runtimes.values()))
    assert runtime.status is SourceStatus.BACKING_OFF
    assert not [r for r in caplog.records if "is gone" in r.getMessage()]


def test_gone_after_applies_to_404s_only(clock: FakeClock) -> None:
    """The streak is judged from `failing_since` (whatever failed first); only a 404 turns it gone."""
    now = clock.now()
    args = {
        "every": timedelta(minutes=10),
        "errors": 40,
        "cap": timedelta(hours=24),
        "jitter": 0.0,
        "now": now,
        "rng": random.Random(0),
        "gone_after": timedelta(days=7),
    }
    not_found = PermanentFetchError(ErrorKind.NOT_FOUND, "HTTP 404")
    assert failure_schedule(not_found, failing_for=timedelta(days=6), **args)[0] is SourceStatus.BACKING_OFF
    assert failure_schedule(not_found, failing_for=timedelta(days=7), **args) == (
        SourceStatus.GONE,
        now + timedelta(hours=24),
    )
    other = PermanentFetchError(ErrorKind.HTTP_4XX, "HTTP 400")
    assert failure_schedule(other, failing_for=timedelta(days=30), **args)[0] is SourceStatus.BACKING_OFF
