"""How long `veille run --once` holds the database's write lock, on bench/poll.py's 1,000 loopback feeds.

    PYTHONPATH=$PWD .venv/bin/python bench/once_locks.py [--profiles feed article] [--feeds 1000]

For each profile, a fresh SQLite database, then a cold and a warm `veille run --once` exactly as bench/poll.py
runs them (same feeds, same config), each in a child process that records every write transaction's duration
(veille.store.engine.WriteStats, from BEGIN IMMEDIATE to the end of the commit) and prints their count, the
longest, the median and how many held the lock more than 100 ms (issue 17's bound). Asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import feedhost
import poll

CHILD = """
import atexit, sys
from veille.store import engine
durations = []
record = engine.WriteStats.record
def recorded(self, seconds):
    durations.append(seconds)
    return record(self, seconds)
engine.WriteStats.record = recorded
def report():
    d = sorted(durations)
    if d:
        print(f"{len(d)} write transactions, longest {1000 * d[-1]:.0f} ms, median {1000 * d[len(d) // 2]:.0f} ms, "
              f"over 100 ms: {sum(x > 0.1 for x in d)}", file=sys.stderr)
atexit.register(report)
from veille.cli import main
sys.argv = ["veille", *sys.argv[1:]]
main()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["feed", "article"], choices=sorted(feedhost.PROFILES))
    parser.add_argument("--feeds", type=int, default=1000)
    args = parser.parse_args()
    env = {"PYTHONPATH": str(poll.ROOT)}
    with feedhost.running(16, args.feeds, 50) as port:
        for profile in args.profiles:
            with tempfile.TemporaryDirectory() as tmp:
                config = poll.veille_config(Path(tmp), poll.feed_urls(profile, args.feeds, 16, port))
                upgrade = [str(poll.VEILLE), "db", "upgrade", "--config", str(config)]
                subprocess.run(upgrade, check=True, env=env, capture_output=True)
                for name in ("cold", "warm"):
                    started = time.perf_counter()
                    done = subprocess.run(
                        [sys.executable, "-c", CHILD, "run", "--once", "--config", str(config)],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=False,
                    )
                    figures = [line for line in done.stderr.splitlines() if "write transactions" in line]
                    seconds = time.perf_counter() - started
                    print(f"{profile:>8} {name:>5} {seconds:6.1f} s  {figures[-1] if figures else done.stderr[-300:]}")


if __name__ == "__main__":
    main()
