"""The daemon as users run it: real process, signals, SIGKILL mid-cycle, scheduler semantics (D18, D19)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from tests.support.daemon import config_text, wait_for
from tests.support.feedgen import feed_items, rss
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer, Request, Response
from veille.runtime.health import check_health
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import hits

ROOT = REPO_ROOT
pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, server: LocalServer, feeds: int, *, every: str = "30s") -> tuple[Path, str]:
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    extra = f'[daemon]\nstartup_spread = "1s"\nhealth_file = "{tmp_path / "health.json"}"\n'
    text = config_text(db_url, {"resto": [server.url(f"/f{n}") for n in range(feeds)]}, extra=extra, every=every)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return path, db_url


def start(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "veille", "run", "--config", str(config), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def count_hits(db_url: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        total = conn.execute(select(func.count()).select_from(hits)).scalar_one()
        distinct = conn.execute(select(func.count(func.distinct(hits.c.external_id)))).scalar_one()
    engine.dispose()
    return total, distinct


def serve_feeds(server: LocalServer, feeds: int, items: int, delay: float = 0.0) -> int:
    expected = 0
    for n in range(feeds):
        generated = feed_items(n, items)
        expected += sum(1 for i in generated if i["matches"])
        body = rss(generated)

        def handler(_: Request, body: str = body) -> Response:
            if delay:
                time.sleep(random.uniform(0, delay))
            return Response(200, body, {"Content-Type": "application/rss+xml"})

        server.route(f"/f{n}", handler)
    return expected


def test_sigterm_drains_and_exits_zero(tmp_path: Path, server: LocalServer) -> None:
    expected = serve_feeds(server, 5, 20)
    config, db_url = write_config(tmp_path, server, 5)
    process = start(config)
    try:
        assert wait_for(lambda: count_hits(db_url)[0] == expected, 40), "daemon stored nothing"
        assert check_health(tmp_path / "health.json", datetime.now(UTC)) == []
        assert wait_for(
            lambda: json.loads((tmp_path / "health.json").read_text())["extra"]["parse_pool"]["parses"] >= 5, 15
        ), "the health file reports the parse pool"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert code == 0, process.stdout.read() if process.stdout else ""
        assert time.monotonic() - started < 8
    finally:
        if process.poll() is None:
            process.kill()
    stale = datetime.now(UTC) + timedelta(minutes=5)
    assert any("not running" in p for p in check_health(tmp_path / "health.json", stale))


def test_crash_before_commit_loses_nothing(tmp_path: Path, server: LocalServer) -> None:
    expected = serve_feeds(server, 4, 25)
    config, db_url = write_config(tmp_path, server, 4)
    crashed = start(config, "--once", env={"VEILLE_TEST_CRASH_AT": "pipeline.before_commit"})
    assert crashed.wait(timeout=60) == 137
    assert count_hits(db_url) == (0, 0)
    again = start(config, "--once")
    assert again.wait(timeout=60) == 0, again.stdout.read() if again.stdout else ""
    assert count_hits(db_url) == (expected, expected)


def test_sigkill_mid_cycle_then_restart_neither_loses_nor_duplicates(tmp_path: Path, server: LocalServer) -> None:
    expected = serve_feeds(server, 30, 30, delay=0.4)
    config, db_url = write_config(tmp_path, server, 30)
    for _ in range(3):
        process = start(config)
        wait_for(lambda: count_hits(db_url)[0] > 0, 30)
        time.sleep(random.uniform(0.05, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        total, distinct = count_hits(db_url)
        assert total == distinct  # never a duplicate, even mid-cycle
    final = start(config, "--once")
    assert final.wait(timeout=90) == 0
    assert count_hits(db_url) == (expected, expected)
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()


async def test_scheduler_never_overlaps_a_source_and_coalesces_after_a_pause() -> None:
    """D18 with the exact job options the daemon uses."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    running = 0
    peak = 0
    runs = 0

    async def slow_poll() -> None:
        nonlocal running, peak, runs
        runs += 1
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(1.5)
        running -= 1

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        slow_poll,
        IntervalTrigger(seconds=0.5),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    await asyncio.sleep(3.2)
    assert peak == 1
    scheduler.pause()
    await asyncio.sleep(0.3)
    before = runs
    await asyncio.sleep(3.0)  # a "freeze": many runs missed
    scheduler.resume()
    await asyncio.sleep(1.0)
    scheduler.shutdown(wait=False)
    assert runs - before <= 1


def test_first_polls_are_spread_by_jitter(tmp_path: Path) -> None:
    """D19: 1,000 sources with one interval start across the spread window, not at once."""
    from veille.config import parse_config
    from veille.runtime.daemon import Daemon

    feeds = {"resto": [f"https://example.org/f{n}" for n in range(1000)]}
    text = config_text(f"sqlite:///{tmp_path / 'x.db'}", feeds, every="10m").replace(
        "allow_private_addresses = true", "allow_private_addresses = false"
    )
    config = parse_config(text, environ={})

    runtimes = {s.key: SimpleNamespace(config=s) for s in config.sources}
    components = SimpleNamespace(pipeline=SimpleNamespace(runtimes=runtimes))
    daemon = Daemon(config, components, rng=random.Random(3))  # type: ignore[arg-type]
    daemon.schedule_sources()
    starts = sorted(job.next_run_time.timestamp() for job in daemon.scheduler.get_jobs())
    span = starts[-1] - starts[0]
    assert span > 50  # spread over the 60 s window
    buckets = {int(s - starts[0]) // 6 for s in starts}
    assert len(buckets) >= 9  # roughly uniform: every 6-second bucket used


def test_sighup_reloads_a_valid_file_and_keeps_the_old_config_on_an_invalid_one(
    tmp_path: Path, server: LocalServer
) -> None:
    """I4, as the operator does it: edit config.toml, `kill -HUP`."""
    serve_feeds(server, 2, 10)
    config, _db_url = write_config(tmp_path, server, 1)
    original = config.read_text(encoding="utf-8")
    log_file = tmp_path / "daemon.log"
    with log_file.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "veille", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        assert wait_for(lambda: server.requests_to("/f0"), 30), "the first source was never polled"
        with_second = original.replace(
            server.url("/f0"),
            server.url("/f0") + '"\nevery = "30s"\n'
            '[[clients.sources]]\nkind = "rss"\nid = "f1"\nurl = "' + server.url("/f1"),
            1,
        )
        broken = with_second.replace('every = "30s"', 'every = "soon"', 1)
        config.write_text(broken, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "config reload refused" in log_file.read_text(), 15), log_file.read_text()
        config.write_text(with_second, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: server.requests_to("/f1"), 15), "the added source was never polled"
        # Neither reload stopped the first source: its next poll comes at its 30 s interval.
        assert wait_for(lambda: len(server.requests_to("/f0")) >= 2, 45), "the first source stopped"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = log_file.read_text()
    assert "clients[0].sources[0].every" in log and "still running with the previous config" in log
    assert "1 sources added, 0 removed" in log


def test_sigterm_during_slow_polls_logs_each_cancelled_poll_calmly(tmp_path: Path, server: LocalServer) -> None:
    """Polls still waiting on their feeds when the drain gives up: one INFO line each, no ERROR, no traceback."""

    import threading

    polling = threading.Event()
    started: list[str] = []

    def slow(request: Request) -> Response:
        started.append(request.path)
        polling.set()
        time.sleep(9)  # longer than the drain waits (drain_timeout 8 s), shorter than the fetch timeout
        return Response(200, rss(feed_items(0, 3)), {"Content-Type": "application/rss+xml"})

    for n in range(3):
        server.route(f"/f{n}", slow)
    config, _ = write_config(tmp_path, server, 3)
    config.write_text(config.read_text().replace('timeout = "5s"', 'timeout = "30s"'), encoding="utf-8")
    process = start(config)
    try:
        if not polling.wait(20):
            process.kill()
            pytest.fail(f"no poll started: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.5)  # the three polls are in flight
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        output = process.stdout.read() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, output
    assert 5 < time.monotonic() - stopped < 9, output  # the grace period was given to the polls, then they were cut
    assert output.count("cancelled by the shutdown") == len(set(started)) >= 1, output
    assert "Traceback" not in output and "raised an exception" not in output and "ERROR" not in output, output
