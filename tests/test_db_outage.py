"""G8, as it happens in production: PostgreSQL goes away under a running daemon, then comes back.

The real daemon process talks to PostgreSQL through a loopback TCP proxy that the test cuts (live
connections closed, new ones refused: the server died) and restores. The outage lasts until every
source has been polled during it (about one poll interval, 30 s: the shortest interval the config
allows), instead of the 60 s of the checklist: the behaviour is the same, only the number of
backoff steps differs. Meanwhile the feeds keep changing and a new alert becomes due.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.support.daemon import config_text
from tests.support.feedgen import rss
from tests.support.server import LocalServer, Request, Response
from tests.support.tcpproxy import TcpProxy
from veille.health import check_health
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import hits, outbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.pg]
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
        items = [{"title": f"Article sur Chez Gégé n°{n}", "text": f"Chez Gégé ouvre une terrasse, article {n}",
                  "guid": guid, "link": f"https://news.example.org/{self.name}/{n}",
                  "date": format_datetime(now - timedelta(minutes=n))} for n, guid in enumerate(guids)]
        return Response(200, rss(items), {"Content-Type": "application/rss+xml"})

    def polled_since(self, moment: float) -> bool:
        with self._lock:
            return any(t > moment for t in self.requests)


def angry_feed(name: str) -> str:
    now = datetime.now(UTC)
    return rss([{"title": text[:60], "text": f"{text} ({name} {n})", "guid": f"urn:{name}:{n}",
                 "link": f"https://news.example.org/{name}/{n}", "date": format_datetime(now - timedelta(minutes=n))}
                for n, text in enumerate(ANGRY)])


def wait_for(predicate: object, timeout: float, process: subprocess.Popen[str] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "the daemon exited"
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_postgres_outage_backs_off_quietly_and_resumes_without_duplicates(
        tmp_path: Path, server: LocalServer, pg_url: str) -> None:
    direct = make_url(pg_url)
    with TcpProxy((direct.host or "127.0.0.1", direct.port or 5432)) as proxy:
        proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(pg_url)  # the test's own view, not through the proxy
        upgrade(engine)

        news = [GrowingFeed(f"news{n}") for n in range(NEWS)]
        for n, feed in enumerate(news):
            server.route(f"/news{n}", feed)
        tapis_body = {"rss": rss([])}
        server.route("/resto-angry", lambda _r: Response(200, angry_feed("resto"),
                                                           {"Content-Type": "application/rss+xml"}))
        server.route("/tapis-angry", lambda _r: Response(200, tapis_body["rss"],
                                                           {"Content-Type": "application/rss+xml"}))
        health_file = tmp_path / "health.json"
        extra = f"""
[daemon]
startup_spread = "1s"
health_file = "{health_file}"

[alerting]
enabled = true
group_wait = "0s"

[[contacts]]
id = "camille"
name = "Camille"
channel = "console"
clients = ["*"]
digest_at = "off"
"""
        feeds = {"resto": [server.url(f"/news{n}") for n in range(NEWS)] + [server.url("/resto-angry")],
                 "tapis": [server.url("/tapis-angry")]}
        config = tmp_path / "config.toml"
        config.write_text(config_text(proxied, feeds, extra=extra, every="30s"), encoding="utf-8")
        log_file = tmp_path / "daemon.log"
        output = log_file.open("w")
        process = subprocess.Popen([sys.executable, "-m", "veille", "run", "--config", str(config)], cwd=ROOT,
                                   stdout=output, stderr=subprocess.STDOUT, text=True)

        def alerts(client: str) -> list[str]:
            with read_conn(engine) as conn:
                return list(conn.execute(select(outbox.c.state).where(outbox.c.client_id == client)).scalars())

        try:
            # Before: every source polled once, the first alert committed and delivered.
            assert wait_for(lambda: alerts("resto") == ["sent"], 40, process), log_file.read_text()
            assert wait_for(lambda: all(f.requests for f in news), 10, process)

            # The database dies; the feeds change; a second client's alert becomes due.
            proxy.cut()
            cut_at, log_at_cut = time.monotonic(), log_file.stat().st_size
            tapis_body["rss"] = angry_feed("tapis")
            assert wait_for(lambda: any("database writes are failing" in p or "storage" in p
                                        for p in check_health(health_file, datetime.now(UTC))), 25, process), \
                "veille health never reported the outage"
            assert wait_for(lambda: all(f.polled_since(cut_at) for f in news), 45, process), \
                "some source was not polled during the outage"
            time.sleep(2)  # let the writer fail those polls and back off
            outage = time.monotonic() - cut_at
            log_at_restore = log_file.stat().st_size
            proxy.restore()
            restored_at = time.monotonic()
            for feed in news:
                feed.frozen = True  # what the next poll sees is final

            # After: every item stored exactly once, the second alert delivered once, health green.
            expected = sum(len(f.guids) for f in news) + 2 * len(ANGRY)

            def stored() -> tuple[int, int]:
                with read_conn(engine) as conn:
                    total = conn.execute(select(func.count()).select_from(hits)).scalar_one()
                    distinct = conn.execute(select(func.count()).select_from(
                        select(hits.c.source_id, hits.c.external_id).distinct().subquery())).scalar_one()
                return total, distinct

            assert wait_for(lambda: stored()[1] >= expected, 60, process), (stored(), expected)
            assert stored() == (expected, expected)
            assert wait_for(lambda: alerts("tapis") == ["sent"], 30, process), alerts("tapis")
            assert wait_for(lambda: check_health(health_file, datetime.now(UTC)) == [], 30, process), \
                check_health(health_file, datetime.now(UTC))
            recovered = time.monotonic() - restored_at
            assert alerts("resto") == ["sent"]

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            output.close()
            engine.dispose()

    log = log_file.read_text(encoding="utf-8")
    during = log.encode()[log_at_cut:log_at_restore].decode(errors="replace")
    after = log.encode()[log_at_restore:].decode(errors="replace")
    noisy = LOG_LINE.findall(during)
    print(f"outage {outage:.1f}s, {len(noisy)} warning/error lines during it, recovered in {recovered:.1f}s")
    assert "Traceback" not in log, log
    assert len(noisy) <= 3, during  # one storage_lost warning, not one per poll, tick or relay
    assert during.count("storage_lost") == 1, during
    assert after.count("storage_back") == 1, after
    assert not LOG_LINE.findall(after), after  # no dead pooled connection reused after the restore
    # Each alert reached the console once: as many messages as sent rows, and none tagged as a copy.
    assert log.count("--- camille") == 2, log
    assert "outbox_possible_duplicate" not in log
