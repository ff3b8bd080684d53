"""G8, as it happens in production: PostgreSQL goes away under a running daemon, then comes back.

The real daemon process talks to PostgreSQL through a loopback TCP proxy that the test cuts (live
connections closed, new ones refused: the server died) and restores. The outage lasts until every
source has been polled during it (about one poll interval, 30 s: the shortest interval the config
allows), instead of the 60 s of the checklist: the behaviour is the same, only the number of
backoff steps differs. Meanwhile the feeds keep changing and a new alert becomes due.
The same daemon on SQLite whose write lock another process holds goes through the same states.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.support.daemon import CONSOLE_ALERTING, config_text
from tests.support.feedgen import rss
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer, Request, Response
from tests.support.tcpproxy import TcpProxy
from veille.runtime.health import check_health
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import hits, outbox

ROOT = REPO_ROOT
pytestmark = pytest.mark.slow
NEWS = 3  # calm feeds that grow at every request
ANGRY = [
    "Intoxication alimentaire après un repas chez Gégé, honte à eux, scandale !",
    "Chez Gégé : plus jamais, service odieux et nourriture avariée, je porte plainte",
    "Chez Gégé m'a rendu malade, arnaque totale, fuyez, c'est dégueulasse",
]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (WARNING|ERROR|CRITICAL) ", re.M)


class GrowingFeed:
    """A feed that gains one item at every request until frozen: the source changes during the outage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.guids: list[str] = []
        self.requests: list[float] = []
        self.frozen = False
        self._lock = threading.Lock()

    def __call__(self, _: Request) -> Response:
        with self._lock:
            self.requests.append(time.monotonic())
            if not self.frozen:
                self.guids.append(f"urn:{self.name}:{len(self.guids)}")
            guids = list(self.guids)
        now = datetime.now(UTC)
        items = [
            {
                "title": f"Article sur Chez Gégé n°{n}",
                "text": f"Chez Gégé ouvre une terrasse, article {n}",
                "guid": guid,
                "link": f"https://news.example.org/{self.name}/{n}",
                "date": format_datetime(now - timedelta(minutes=n)),
            }
            for n, guid in enumerate(guids)
        ]
        return Response(200, rss(items), {"Content-Type": "application/rss+xml"})

    def polled_since(self, moment: float) -> bool:
        with self._lock:
            return any(t > moment for t in self.requests)


def angry_feed(name: str) -> str:
    now = datetime.now(UTC)
    return rss(
        [
            {
                "title": text[:60],
                "text": f"{text} ({name} {n})",
                "guid": f"urn:{name}:{n}",
                "link": f"https://news.example.org/{name}/{n}",
                "date": format_datetime(now - timedelta(minutes=n)),
            }
            for n, text in enumerate(ANGRY)
        ]
    )


def through(proxy: TcpProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


class Run:
    """A real daemon on `daemon_url`, with calm growing feeds and two angry ones; the test reads `url`."""

    def __init__(self, tmp_path: Path, server: LocalServer, url: str, daemon_url: str) -> None:
        self.engine = make_engine(url)  # the test's own view (not through the proxy)
        upgrade(self.engine)
        self.news = [GrowingFeed(f"news{n}") for n in range(NEWS)]
        for n, feed in enumerate(self.news):
            server.route(f"/news{n}", feed)
        self.tapis_body = rss([])
        server.route(
            "/resto-angry", lambda _r: Response(200, angry_feed("resto"), {"Content-Type": "application/rss+xml"})
        )
        server.route("/tapis-angry", lambda _r: Response(200, self.tapis_body, {"Content-Type": "application/rss+xml"}))
        self.health_file = tmp_path / "health.json"
        extra = f"""
[daemon]
startup_spread = "1s"
health_file = "{self.health_file}"
{CONSOLE_ALERTING}"""
        feeds = {
            "resto": [server.url(f"/news{n}") for n in range(NEWS)] + [server.url("/resto-angry")],
            "tapis": [server.url("/tapis-angry")],
        }
        self.config = tmp_path / "config.toml"
        self.config.write_text(config_text(daemon_url, feeds, extra=extra, every="30s"), encoding="utf-8")
        self.log_file = tmp_path / "daemon.log"
        self._output = self.log_file.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "veille", "run", "--config", str(self.config)],
            cwd=ROOT,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._output.close()
        self.engine.dispose()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll `predicate`, failing at once if the daemon exited (a crash loop would be restarted by Docker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the daemon exited:\n{self.log_file.read_text()[-3000:]}"
            if predicate():
                return True
            time.sleep(0.2)
        return False

    def alerts(self, client: str) -> list[str]:
        with read_conn(self.engine) as conn:
            return list(conn.execute(select(outbox.c.state).where(outbox.c.client_id == client)).scalars())

    def stored(self) -> tuple[int, int]:
        """Hits stored, and distinct (source, external_id) among them."""
        with read_conn(self.engine) as conn:
            total = conn.execute(select(func.count()).select_from(hits)).scalar_one()
            distinct = conn.execute(
                select(func.count()).select_from(select(hits.c.source_id, hits.c.external_id).distinct().subquery())
            ).scalar_one()
        return total, distinct

    def storage_reported(self) -> bool:
        return "database writes are failing" in check_health(self.health_file, datetime.now(UTC))

    def veille_health(self) -> subprocess.CompletedProcess[str]:
        """`veille health`, the command Docker's HEALTHCHECK runs."""
        return subprocess.run(
            [sys.executable, "-m", "veille", "health", "--config", str(self.config)],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "VEILLE_LANG": "en"},  # the assertions read the English wording
        )


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    direct = make_url(pg_url)
    with TcpProxy((direct.host or "127.0.0.1", direct.port or 5432)) as relay:
        yield relay


@pytest.mark.pg
def test_postgres_outage_backs_off_quietly_and_resumes_without_duplicates(
    tmp_path: Path, server: LocalServer, pg_url: str, proxy: TcpProxy
) -> None:
    run = Run(tmp_path, server, pg_url, through(proxy, pg_url))
    try:
        # Before: every source polled once, the first alert committed and delivered.
        assert run.wait_for(lambda: run.alerts("resto") == ["sent"], 40), run.log_file.read_text()
        assert run.wait_for(lambda: all(f.requests for f in run.news), 10)

        # The database dies; the feeds change; a second client's alert becomes due.
        proxy.cut()
        cut_at, log_at_cut = time.monotonic(), run.log_file.stat().st_size
        run.tapis_body = angry_feed("tapis")
        assert run.wait_for(run.storage_reported, 25), "the health file never reported the outage"
        down = run.veille_health()
        assert down.returncode == 1 and "database writes are failing" in down.stderr, down
        assert run.wait_for(lambda: all(f.polled_since(cut_at) for f in run.news), 45), (
            "some source was not polled during the outage"
        )
        time.sleep(2)  # let the writer fail those polls and back off
        outage = time.monotonic() - cut_at
        log_at_restore = run.log_file.stat().st_size
        proxy.restore()
        restored_at = time.monotonic()
        for feed in run.news:
            feed.frozen = True  # what the next poll sees is final

        # After: every item stored exactly once, the second alert delivered once, health green.
        expected = sum(len(f.guids) for f in run.news) + 2 * len(ANGRY)
        assert run.wait_for(lambda: run.stored()[1] >= expected, 60), (run.stored(), expected)
        assert run.stored() == (expected, expected)
        assert run.wait_for(lambda: run.alerts("tapis") == ["sent"], 30), run.alerts("tapis")
        assert run.wait_for(lambda: check_health(run.health_file, datetime.now(UTC)) == [], 30), check_health(
            run.health_file, datetime.now(UTC)
        )
        recovered = time.monotonic() - restored_at
        assert run.veille_health().returncode == 0
        assert run.alerts("resto") == ["sent"]

        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=15) == 0
    finally:
        run.close()

    log = run.log_file.read_bytes()
    during = log[log_at_cut:log_at_restore].decode(errors="replace")
    after = log[log_at_restore:].decode(errors="replace")
    noisy = LOG_LINE.findall(during)
    print(
        f"outage {outage:.1f}s, {len(noisy)} warning/error lines during it, all stored and health green "
        f"{recovered:.1f}s after the restore"
    )
    text = log.decode(errors="replace")
    assert "Traceback" not in text, text
    assert len(noisy) <= 3, during  # one storage_lost warning, not one per poll, tick or relay
    assert during.count("storage_lost") == 1, during
    assert after.count("storage_back") == 1, after
    assert not LOG_LINE.findall(after), after  # no dead pooled connection reused after the restore
    # Each alert reached the console once: as many messages as sent rows, and none tagged as a copy.
    assert text.count("--- camille") == 2, text
    assert "outbox_possible_duplicate" not in text


@pytest.mark.pg
def test_sigterm_while_the_database_is_down_exits_cleanly_within_the_grace(
    tmp_path: Path, server: LocalServer, pg_url: str, proxy: TcpProxy
) -> None:
    """A restart during an outage (the operator, or an orchestrator reacting to the red health)."""
    run = Run(tmp_path, server, pg_url, through(proxy, pg_url))
    try:
        assert run.wait_for(lambda: run.alerts("resto") == ["sent"], 40), run.log_file.read_text()
        proxy.cut()
        assert run.wait_for(lambda: "storage_lost" in run.log_file.read_text(), 15)
        assert run.wait_for(run.storage_reported, 25)
        started = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=15) == 0, run.log_file.read_text()
        assert time.monotonic() - started < 8  # Docker's 10 s stop timeout, with margin
    finally:
        run.close()
    assert "Traceback" not in run.log_file.read_text()


def test_sqlite_locked_by_another_process_is_the_same_outage(
    tmp_path: Path, server: LocalServer, sqlite_url: str
) -> None:
    """Another process holds SQLite's write lock (a backup, a stuck `sqlite3` shell) longer than the
    busy timeout: every write fails with "database is locked", like PostgreSQL going away."""
    run = Run(tmp_path, server, sqlite_url, sqlite_url)
    try:
        assert run.wait_for(lambda: run.alerts("resto") == ["sent"], 40), run.log_file.read_text()
        before = run.stored()
        holder = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # WAL: readers go on, every writer waits, then fails
        log_at_lock = run.log_file.stat().st_size
        try:
            assert run.wait_for(run.storage_reported, 40), "the health file never reported the lock"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        log_at_release = run.log_file.stat().st_size
        assert run.wait_for(lambda: "storage_back" in run.log_file.read_text(), 40)
        assert run.wait_for(lambda: check_health(run.health_file, datetime.now(UTC)) == [], 30)
        assert run.stored()[0] == run.stored()[1] >= before[0]
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=15) == 0
    finally:
        run.close()
    log = run.log_file.read_bytes()
    during = log[log_at_lock:log_at_release].decode(errors="replace")
    assert "Traceback" not in log.decode(errors="replace")
    assert during.count("storage_lost") == 1 and len(LOG_LINE.findall(during)) <= 3, during
