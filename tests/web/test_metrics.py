"""`/metrics` and `/healthz` served by the dashboard inside a real `veille run` (`[web] enabled = true`):
the text is parsed by prometheus_client's own parser, and the figures move as the daemon polls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.paths import REPO_ROOT
from tests.support.seed import add_rss_source
from tests.support.server import Request, Response
from tests.support.web import filled_site, free_port, resto_feed, tapis_feed
from veille.core.clock import FakeClock
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients, sources
from veille.web.metrics import health_file_figures, registry_for


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return values


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_health_file_that_is_no_json_object_gives_no_daemon_figures(tmp_path: Path) -> None:
    path = tmp_path / "veille-health.json"
    read = health_file_figures(path)
    assert read() is None  # no daemon writes one
    path.write_text("[1, 2]", encoding="utf-8")
    assert read() is None  # /metrics and /healthz read it with .get(): a list made them fail
    path.write_text('{"storage_ok": true}', encoding="utf-8")
    assert read() == {"storage_ok": True}


def test_leases_held_are_shown_per_daemon_and_source_kind(tmp_path: Path) -> None:
    """Which daemon holds what: live leases only, counted per daemon id and kind (issue 17)."""
    clock = FakeClock()
    engine = make_engine(f"sqlite:///{tmp_path / 'veille.db'}")
    upgrade(engine)
    now = clock.now()
    soon, gone = now + timedelta(minutes=2), now - timedelta(seconds=1)
    holders = [("host:1:a", "rss", soon)] * 3 + [("host:1:a", "mastodon", soon), ("host:2:b", "rss", soon)]
    holders += [("host:3:c", "rss", gone), (None, "rss", None)]  # an expired lease, a free source
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=now))
        for n, (owner, kind, until) in enumerate(holders):
            ref = add_rss_source(conn, key=f"resto/s{n}", target=f"https://example.org/{n}.xml")
            conn.execute(
                sources.update().where(sources.c.id == ref.id).values(kind=kind, lease_owner=owner, lease_until=until)
            )
    text = generate_latest(registry_for(engine, clock, lambda: None)).decode()
    engine.dispose()
    samples = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "veille_leases_held"
    }
    assert samples == {
        (("daemon", "host:1:a"), ("kind", "rss")): 3,
        (("daemon", "host:1:a"), ("kind", "mastodon")): 1,
        (("daemon", "host:2:b"), ("kind", "rss")): 1,
    }


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
def test_metrics_move_as_the_daemon_works(tmp_path: Path) -> None:
    port = free_port()
    extra = '\n[daemon]\nstartup_spread = "0s"\n'
    with filled_site(tmp_path, f"sqlite:///{tmp_path / 'veille.db'}", poll=False, extra=extra) as site:
        text = site.config_path.read_text(encoding="utf-8")
        text = text.replace("[web]\n", f"[web]\nenabled = true\nport = {port}\n").replace('"5s"', '"30s"')
        site.config_path.write_text(text, encoding="utf-8")
        release = threading.Event()

        def held(answer: Response) -> Callable[[Request], Response]:
            def handler(request: Request) -> Response:  # the first polls wait until the first scrape is done
                release.wait(25)
                return answer

            return handler

        feed = {"Content-Type": "application/rss+xml"}
        site.feeds.route("/resto.xml", held(Response(200, resto_feed(), feed)))
        site.feeds.route("/tapis.xml", held(Response(200, tapis_feed(), feed)))
        site.feeds.route("/broken.xml", held(Response(500, "down")))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "veille", "run", "--config", str(site.config_path)],
            cwd=REPO_ROOT,
            env={**os.environ, "VEILLE_TELEGRAM_TOKEN": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            assert wait_until(lambda: _answers(base), 30), "the dashboard inside veille run did not answer"
            before = scrape(base)
            assert value(before, "veille_database_up") == 1
            assert value(before, "veille_hits_stored", kind="rss") == 0
            assert value(before, "veille_incidents_open", urgency="high") == 0
            release.set()

            def moved() -> bool:
                now = scrape(base)
                return (
                    value(now, "veille_polls_total", kind="rss", outcome="ok") >= 2
                    and value(now, "veille_polls_total", kind="rss", outcome="error") >= 1
                    and value(now, "veille_hits_stored", kind="rss") > 0
                    and value(now, "veille_incidents_open", urgency="high") >= 1
                )

            assert wait_until(moved, 40), scrape(base)
            after = scrape(base)
            assert value(after, "veille_sources", kind="rss", state="failing") == 1
            assert value(after, "veille_daemon_storage_ok") == 1
            assert sum(v for (name, _), v in after.items() if name == "veille_leases_held") == 3
            assert value(after, "veille_daemon_heartbeat_age_seconds") < 30
            health = httpx.get(f"{base}/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok"
        finally:
            release.set()
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, output
        assert "Traceback" not in output
        assert not _answers(base)  # the dashboard stopped with the daemon


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
