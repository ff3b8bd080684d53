"""`veille run --once` (cron): it polls, stores and delivers what is due before it exits (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import func, select

from tests.support.daemon import config_text
from tests.support.feedgen import rss
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer, Response
from veille.store import alerts as alert_store
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import hits

CONTACT = """
[alerting]
no_data_after = "off"

[[contacts]]
id = "camille"
name = "Camille"
channel = "console"
"""


def article(text: str, guid: str) -> dict[str, str]:
    return {
        "title": text[:80],
        "text": text,
        "guid": guid,
        "link": f"https://presse.example/{guid}",
        "date": format_datetime(datetime.now(UTC)),
    }


def run_once(
    tmp_path: Path, server: LocalServer, *items: dict[str, str], extra: str = "", drip: float = 0.0
) -> tuple[subprocess.CompletedProcess[str], str]:
    server.route("/feed", Response(200, rss(list(items)), {"Content-Type": "application/rss+xml"}, drip=drip))
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    config = tmp_path / "config.toml"
    config.write_text(config_text(db_url, {"resto": [server.url("/feed")]}, extra=CONTACT + extra), encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "veille", "run", "--once", "--config", str(config)],
        cwd=REPO_ROOT,
        env={**os.environ, "VEILLE_LANG": "fr"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, db_url


def test_a_severe_article_is_printed_before_the_one_shot_run_exits(tmp_path: Path, server: LocalServer) -> None:
    severe = article(
        "Intoxication alimentaire chez Gégé : douze clients aux urgences, les familles portent plainte", "severe"
    )
    done, db_url = run_once(tmp_path, server, severe)
    assert done.returncode == 0, done.stderr
    alert = done.stdout.split("--- camille\n", 1)[1]  # the console alert, printed before the poll summary
    assert "#INC-1" in alert and "resto" in alert and "urgences" in alert and "veille ack 1" in alert
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        incidents = alert_store.active_incidents(conn)
        rows = alert_store.outbox_rows(conn)
    engine.dispose()
    assert [i.status.value for i in incidents] == ["open"]  # not left pending for a daemon to send
    assert rows and all(r.state == "sent" for r in rows)


def test_a_mild_article_prints_nothing(tmp_path: Path, server: LocalServer) -> None:
    mild = article("Chez Gégé : attente un peu longue, mais service efficace", "mild")
    done, db_url = run_once(tmp_path, server, mild)
    assert done.returncode == 0, done.stderr
    assert "--- camille" not in done.stdout
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        assert conn.execute(select(func.count()).select_from(hits)).scalar_one() == 1  # stored, rang nobody
        assert alert_store.active_incidents(conn) == []
    engine.dispose()


def test_a_model_that_cannot_load_stops_the_run_in_one_line_and_stores_nothing(
    tmp_path: Path, server: LocalServer
) -> None:
    """The model loads while the feeds are fetched; when it cannot, the run still stops as the daemon does."""
    done, db_url = run_once(
        tmp_path, server, article("Chez Gégé : service efficace", "one"), extra=damaged_model(tmp_path)
    )
    assert_stopped_by_the_model(done, db_url, stored=0)


def damaged_model(tmp_path: Path) -> str:
    """A [sentiment] section pointing at a file that is not a model."""
    damaged = tmp_path / "model.json.gz"
    damaged.write_bytes(b"not a model")
    return f'\n[sentiment]\nmodel_path = "{damaged}"\n'


def assert_stopped_by_the_model(done: subprocess.CompletedProcess[str], db_url: str, *, stored: int) -> None:
    """The run failed in one line naming the model, and the database holds only the hits stored before it."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "model" in done.stderr, done.stderr
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        assert conn.execute(select(func.count()).select_from(hits)).scalar_one() == stored
    engine.dispose()


def test_a_run_with_nothing_new_does_not_load_the_model_and_a_run_with_news_still_checks_it(
    tmp_path: Path, server: LocalServer
) -> None:
    """From cron, most runs find nothing new: they never start the scorer, so a model damaged since the
    last run goes unnoticed until a hit needs it, and then it stops the run with nothing of that hit stored."""
    first = article("Chez Gégé : service efficace", "one")
    done, db_url = run_once(tmp_path, server, first)
    assert done.returncode == 0, done.stderr
    extra = damaged_model(tmp_path)
    done, _ = run_once(tmp_path, server, first, extra=extra)  # the same feed: nothing to score
    assert done.returncode == 0, done.stderr
    assert "model" not in done.stderr
    done, _ = run_once(tmp_path, server, first, article("Chez Gégé : pizza froide", "two"), extra=extra)
    assert_stopped_by_the_model(done, db_url, stored=1)


def test_a_first_run_loads_the_model_from_the_start(tmp_path: Path, server: LocalServer) -> None:
    """A source never polled brings its whole backlog, so the model loads alongside the first fetches instead
    of after the first match: here the feed takes seconds to arrive and names nobody, yet the damaged model is
    found meanwhile and stops the run (a lazy start would never have loaded it)."""
    unrelated = article("Marché de Noël : les chalets ouvrent samedi", "noel")
    done, db_url = run_once(tmp_path, server, unrelated, extra=damaged_model(tmp_path), drip=0.01)
    assert_stopped_by_the_model(done, db_url, stored=0)


def test_the_once_path_leaves_out_what_it_never_runs() -> None:
    """`veille run --once` imports neither httpx's command-line client (rich, pygments), nor psutil (the health
    check's), nor the reply rules (their patterns compile at import; feeds never need them): each start pays them."""
    code = (
        "import sys, veille.cli.core, veille.runtime.once; "
        "print(sorted(m for m in ('rich', 'pygments', 'psutil', 'veille.alerting.replies') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "[]"


def test_the_start_up_is_frozen_out_of_the_collectors_sight_and_the_collector_runs_on(
    tmp_path: Path, server: LocalServer
) -> None:
    """The objects built at start-up are frozen (full collections of the run skip them); the collector itself
    is on again for the polls (a daemon that left it off would keep every cycle it makes)."""
    server.route("/feed", Response(200, rss([article("Chez Gégé : service efficace", "one")]), {}))
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    config = tmp_path / "config.toml"
    config.write_text(config_text(db_url, {"resto": [server.url("/feed")]}, extra=CONTACT), encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    probe = (
        "import atexit, gc, runpy, sys\n"
        "from veille.runtime import once\n"
        "real = once.run_once\n"
        "async def watched(*args, **kwargs):\n"
        "    print('polls with collector', gc.isenabled(), 'frozen', gc.get_freeze_count() > 10000, file=sys.stderr)\n"
        "    return await real(*args, **kwargs)\n"
        "once.run_once = watched\n"
        "sys.argv = ['veille', 'run', '--once', '--config', sys.argv[1]]\n"
        "runpy.run_module('veille', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(config)],
        cwd=REPO_ROOT,
        env={**os.environ, "VEILLE_LANG": "fr", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "polls with collector True frozen True" in done.stderr
