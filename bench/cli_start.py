"""CLI start-up: wall time of `veille --help`, `veille hits` and `veille sources` as a user runs them.

Each command runs as its own process (the installed `veille` script beside this Python), several times;
prints the median and fastest wall time, and the median CPU time (user + system: steadier on a busy
machine). The database is a migrated SQLite file with 200 hits. Bytecode caching is on, as on a user's
machine (a plain `pip install .` compiles it at install time), and one warm-up run precedes the timed ones.
Target: under 0.5 s on an idle machine (the machine's load is printed: figures on a busy one run long).
Usage: .venv/bin/python bench/cli_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.seed import add_rss_source
from veille.core.matching import MatchResult
from veille.core.models import Item
from veille.store.engine import make_engine, write_tx
from veille.store.hits import MatchedItem, store_items
from veille.store.migrate import upgrade
from veille.store.schema import clients


def seed(folder: Path) -> Path:
    url = f"sqlite:///{folder / 'veille.db'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Chez Gégé", updated_at=now))
        ref = add_rss_source(conn, target="https://example.org/feed.xml")
        match = MatchResult(True, False, ("chez gege",))
        items = [
            MatchedItem(Item(f"e{n}", f"Chez Gégé, avis numéro {n}", title=f"Avis {n}"), match) for n in range(200)
        ]
        store_items(conn, ref, items, now)
    engine.dispose()
    config = folder / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[[clients]]\nid = "resto"\nkeywords = ["chez gégé"]\n', "utf-8")
    return config


def timed(command: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of each run: CPU time says what the command costs when the machine is busy."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    veille = str(Path(sys.executable).with_name("veille"))
    # As on a user's machine: Python writes and reuses its bytecode cache (some sandboxes and CI images set
    # PYTHONDONTWRITEBYTECODE, which makes every start compile each module again); one warm-up run fills it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_") and k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        config = seed(Path(tmp))
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for label, command in (
            ("veille --help", [veille, "--help"]),
            ("veille hits", [veille, "hits", "--config", str(config)]),
            ("veille sources", [veille, "sources", "--config", str(config)]),
        ):
            timed(command, 1, env)  # warm-up: bytecode cache and the page cache
            walls, cpus = timed(command, args.runs, env)
            print(
                f"{label:16} wall median {statistics.median(walls):.3f} s, fastest {min(walls):.3f} s; "
                f"CPU median {statistics.median(cpus):.3f} s ({args.runs} runs)"
            )


if __name__ == "__main__":
    main()
