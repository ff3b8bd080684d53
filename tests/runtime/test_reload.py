"""I4 Reload, in process: a real Pipeline and scheduler (paused), real SQLite, the config file rewritten.

The signal itself, on the real daemon process, is tested in tests/runtime/test_daemon.py.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.daemon import config_text, make_config
from veille.core.clock import FakeClock
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.daemon import Daemon
from veille.runtime.pipeline import Pipeline
from veille.runtime.wiring import Components
from veille.store.engine import make_engine, read_conn
from veille.store.schema import sources


@pytest.fixture
async def daemon(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> AsyncIterator[Daemon]:
    config = make_config(
        tmp_path,
        sqlite_url,
        {"resto": ["https://a.example/feed", "https://b.example/feed"], "tapis": ["https://c.example/feed"]},
        every="10m",
    )
    http = HttpClient(HttpConfig(), clock=clock)
    engine = make_engine(sqlite_url)
    pipeline = Pipeline(config, engine, clock, http, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    running = Daemon(config, Components(engine=engine, http=http, pipeline=pipeline), clock=clock, rng=random.Random(2))
    running.scheduler.start(paused=True)  # jobs are scheduled, never run: this test is about the plan
    running.schedule_sources()
    yield running
    running.scheduler.shutdown(wait=False)
    await pipeline.stop()
    await http.aclose()
    engine.dispose()


def rewrite(daemon: Daemon, text: str) -> None:
    Path(daemon.config.path).write_text(text, encoding="utf-8")


def jobs(daemon: Daemon) -> dict[str, float]:
    return {job.id: job.trigger.interval.total_seconds() for job in daemon.scheduler.get_jobs()}


async def test_valid_file_adds_removes_and_changes_sources_in_place(
    daemon: Daemon, sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = daemon.components.pipeline.runtimes["resto/f0"]
    assert jobs(daemon) == {"resto/f0": 600, "resto/f1": 600, "tapis/f0": 600}
    monkeypatch.setenv("RELOAD_TEST_TOKEN", "s3cr3t-value-xyz")
    rewrite(
        daemon,
        config_text(
            sqlite_url,
            {"resto": ["https://a.example/feed"], "bijou": ["https://d.example/x"]},
            keywords='["nouveau mot"]',
            every="20m",
            timeout="7s",
            extra='[telegram]\ntoken_env = "RELOAD_TEST_TOKEN"\n',
        ),
    )
    with caplog.at_level(logging.INFO):
        assert await daemon.reload()
    pipeline = daemon.components.pipeline
    assert jobs(daemon) == {"resto/f0": 1200, "bijou/f0": 1200}
    assert set(pipeline.runtimes) == {"resto/f0", "bijou/f0"}
    assert pipeline.runtimes["resto/f0"] is kept  # its poll state and backoff are kept
    assert kept.matcher.match("un nouveau mot ici").matched and not kept.matcher.match("chez gégé").matched
    with read_conn(daemon.components.engine) as conn:
        enabled = dict(conn.execute(select(sources.c.key, sources.c.enabled)).all())
    assert enabled == {"resto/f0": True, "resto/f1": False, "tapis/f0": False, "bijou/f0": True}
    messages = [r.getMessage() for r in caplog.records]
    assert "config reload: [http] changed; it takes effect at the next restart" in messages
    assert "config reload: [telegram] changed; it takes effect at the next restart" in messages
    assert any("1 sources added, 2 removed, 1 changed" in m for m in messages)
    assert daemon.config.http.timeout == 5.0  # not applied: the HTTP client was built with the old one
    logging.getLogger("veille.test").error("leak? s3cr3t-value-xyz")
    assert "s3cr3t-value-xyz" not in caplog.records[-1].getMessage()  # a newly named secret is protected


async def test_invalid_file_keeps_the_running_config_and_logs_every_problem(
    daemon: Daemon, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = (daemon.config, dict(daemon.components.pipeline.runtimes), jobs(daemon))
    text = config_text(sqlite_url, {"resto": ["https://a.example/feed"]}, every="banana")
    rewrite(daemon, text.replace("[http]", "[http]\ncolour = 1"))
    assert not await daemon.reload()
    assert (daemon.config, dict(daemon.components.pipeline.runtimes), jobs(daemon)) == before
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("config reload refused") and "2 problem(s)" in errors[0]
    assert any("clients[0].sources[0].every" in e for e in errors[1:])
    assert any("http.colour" in e for e in errors[1:])


async def test_a_syntax_error_is_refused_too(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    before = jobs(daemon)
    rewrite(daemon, "[[clients]\nid = ")
    assert not await daemon.reload()
    assert jobs(daemon) == before
    assert any("(syntax)" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_file_config_check_refuses_is_refused(
    daemon: Daemon, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A forbidden address is a `veille config check` problem: a reload refuses it like a start does."""
    before = jobs(daemon)
    text = config_text(sqlite_url, {"resto": ["http://127.0.0.1:9/feed"]})
    rewrite(daemon, text.replace("allow_private_addresses = true", "allow_private_addresses = false"))
    assert not await daemon.reload()
    assert jobs(daemon) == before
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("config reload refused") and "1 problem(s)" in errors[0]
    assert "sources.resto/f0.url" in errors[1] or "resto" in errors[1]
