"""Long CLI work shows a progress bar on a terminal (stderr a TTY), and nothing of it when piped."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT
from tests.support.seed import add_rss_source
from veille.core.matching import MatchResult
from veille.core.models import Item
from veille.store.engine import make_engine, write_tx
from veille.store.hits import MatchedItem, store_items
from veille.store.migrate import upgrade
from veille.store.schema import clients

pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    upgrade(engine)
    old = datetime.now(UTC) - timedelta(days=30)
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Chez Gégé", updated_at=old))
        ref = add_rss_source(conn)
        match = MatchResult(True, False, ("chez gege",))
        store_items(conn, ref, [MatchedItem(Item(f"h{n}", f"Chez Gégé {n}"), match) for n in range(30)], old)
    engine.dispose()
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[[clients]]\nid = "resto"\nkeywords = ["chez gégé"]\n', "utf-8")
    return path


def _run(args: list[str], *, terminal: bool) -> str:
    """stderr of `veille ARGS`, through a pseudo-terminal when `terminal`."""
    env = {**os.environ, "VEILLE_LANG": "en", "TERM": "xterm"}
    command = [sys.executable, "-m", "veille", *args]
    if not terminal:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True).stderr
    main, secondary = pty.openpty()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other end closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (["purge", "--older-than", "7d"], "Deleting old hits"),
        (["report", "--month", "2026-10"], "Monthly reports"),
        (["replay", str(REPO_ROOT / "bench" / "scenarios" / "press_mild.jsonl")], "Replaying the timeline"),
    ],
    ids=["purge", "report", "replay"],
)
def test_progress_on_a_terminal_only(config: Path, args: list[str], shows: str) -> None:
    assert shows in _run([*args, "--config", str(config)], terminal=True)
    assert shows not in _run([*args, "--config", str(config)], terminal=False)
