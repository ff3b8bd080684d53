"""Polling benchmark: veille's poller and store against the obvious poller, over N loopback feeds.

    .venv/bin/python bench/poll.py [--feeds 100 1000] [--hosts 16] [--latency-ms 50]

Serves N generated feeds (20-50 French items each, 50 ms latency, 70 % with ETag/Last-Modified) on
16 loopback addresses (127.0.0.2...), then, each in its own child process, runs:
- veille: the real Pipeline (shared HttpClient, parse worker processes, batching writer, scorer);
- obvious: one httpx client, a semaphore of 50, feedparser on the event loop, one transaction per feed.
Cold is the first poll of every feed, warm the second. Prints sources/s, hits stored/s, CPU seconds
(process and its children) and peak RSS (process, plus its parse workers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import feedhost
import psutil

ROOT = Path(__file__).resolve().parents[1]
CLIENT_KEYWORDS = {
    "resto": "chez gégé",
    "tapis": "tapis royal",
    "osteo": "ostéo lemoine",
    "zoe": "boutique zoé",
    "garage": "garage martin",
}


class PeakSampler:
    """Peak RSS of this process and of its children (parse workers), from the kernel's high-water marks.

    VmHWM is the kernel's own peak, so rare sampling misses nothing: the thread only has to look at
    each child (every 0.25 s; new children are looked for every 5 s after the first 2 s) before it
    exits. Scanning /proc for children every few milliseconds, as an earlier version did, cost the
    measured process a whole second of CPU per round. The tree figure is the sum of each process's own
    peak (an upper bound: the peaks need not coincide).
    """

    def __init__(self) -> None:
        self.peak_self = 0
        self._children: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak_tree(self) -> int:
        return self.peak_self + sum(self._children.values())

    def _run(self) -> None:
        me = psutil.Process()
        ticks = 0
        while True:
            self.peak_self = max(self.peak_self, high_water_mark(me.pid))
            if ticks < 8 or ticks % 20 == 0:  # listing children scans all of /proc: rarely once started
                for child in me.children(recursive=True):
                    self._children.setdefault(child.pid, 0)
            for pid, peak in list(self._children.items()):
                self._children[pid] = max(peak, high_water_mark(pid))
            ticks += 1
            if self._stop.wait(0.25):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_self = max(self.peak_self, high_water_mark(os.getpid()))


def high_water_mark(pid: int) -> int:
    """Peak resident set size of a live process in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def urls(n: int, hosts: int, port: int) -> list[str]:
    return [f"http://127.0.0.{2 + i % hosts}:{port}/feed/{i}" for i in range(n)]


async def run_veille(feed_urls: list[str], workdir: Path) -> list[dict[str, float]]:
    from veille.config import parse_config
    from veille.core.clock import SystemClock
    from veille.net.http import HttpClient
    from veille.runtime.pipeline import Pipeline
    from veille.scoring.process import ScoringProcess
    from veille.sources.rss.parsepool import FeedParsePool
    from veille.store.engine import make_engine
    from veille.store.migrate import upgrade

    db_url = f"sqlite:///{workdir / 'veille.db'}"
    parts = [
        f'[database]\nurl = "{db_url}"\n[http]\nallow_private_addresses = true\nper_host_limit = 8\n'
        "[daemon]\nconcurrency = 100\n"
    ]
    clients = list(CLIENT_KEYWORDS)
    for client in clients:
        parts.append(f'[[clients]]\nid = "{client}"\nkeywords = ["{CLIENT_KEYWORDS[client]}"]\n')
        for n, url in enumerate(feed_urls):
            if clients[n % len(clients)] == client:
                parts.append(f'[[clients.sources]]\nkind = "rss"\nid = "f{n}"\nurl = "{url}"\nevery = "10m"\n')
    config = parse_config("\n".join(parts), environ={})
    engine = make_engine(db_url)
    upgrade(engine)
    clock = SystemClock()
    http = HttpClient(config.http, clock=clock)
    pool = FeedParsePool(workers=0, timeout=5.0, max_entries=200)
    scorer = ScoringProcess(config.sentiment).start()  # as the daemon does
    pipeline = Pipeline(config, engine, clock, http, scorer=scorer, parse_feed=pool.parse)
    pipeline.load()
    await pool.start()  # as the daemon does at start-up
    await pipeline.start()

    async def poll(key: str) -> tuple[int, bool]:
        result = await pipeline.poll(key, force=True)  # keep counts only, as the daemon does
        return (result.new_hits, result.error is not None) if result else (0, False)

    rounds = []
    for _ in ("cold", "warm"):
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(*(poll(k) for k in pipeline.runtimes))
        elapsed = time.perf_counter() - t0
        new_hits = sum(hits for hits, _ in results)
        errors = sum(1 for _, failed in results if failed)
        rounds.append(
            {
                "seconds": elapsed,
                "sources_per_s": len(results) / elapsed,
                "hits": new_hits,
                "hits_per_s": new_hits / elapsed,
                "cpu_s": cpu_seconds() - cpu0,
                "errors": errors,
            }
        )
    await pipeline.stop()
    await http.aclose()
    pool.close()
    scorer.close()
    return rounds


async def run_obvious(feed_urls: list[str], workdir: Path) -> list[dict[str, float]]:
    """What most people write first: correct, simple, and single-core."""
    import sqlite3

    import feedparser
    import httpx

    from veille.core.matching import Matcher

    db = sqlite3.connect(workdir / "obvious.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE hits (feed TEXT, guid TEXT, title TEXT, text TEXT, UNIQUE(feed, guid))")
    clients = list(CLIENT_KEYWORDS)
    matchers = {c: Matcher([CLIENT_KEYWORDS[c]]) for c in clients}
    state: dict[str, tuple[str | None, str | None]] = {}
    semaphore = asyncio.Semaphore(50)

    async def poll(client: httpx.AsyncClient, n: int, url: str) -> int:
        async with semaphore:
            etag, modified = state.get(url, (None, None))
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
            response = await client.get(url, headers=headers)
            if response.status_code == 304:
                return 0
            parsed = feedparser.parse(response.content)
            matcher = matchers[clients[n % len(clients)]]
            rows = [
                (url, e.get("id", e.get("link")), e.get("title", ""), e.get("summary", ""))
                for e in parsed.entries
                if matcher.match(f"{e.get('title', '')} {e.get('summary', '')}").matched
            ]
            db.execute("BEGIN")
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO hits VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
            state[url] = (response.headers.get("etag"), response.headers.get("last-modified"))
            return db.total_changes - before

    rounds = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:
        for _ in ("cold", "warm"):
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            counts = await asyncio.gather(*(poll(client, n, u) for n, u in enumerate(feed_urls)))
            elapsed = time.perf_counter() - t0
            rounds.append(
                {
                    "seconds": elapsed,
                    "sources_per_s": len(feed_urls) / elapsed,
                    "hits": sum(counts),
                    "hits_per_s": sum(counts) / elapsed,
                    "cpu_s": cpu_seconds() - cpu0,
                    "errors": 0,
                }
            )
    return rounds


def child(variant: str, feeds: int, hosts: int, port: int) -> None:
    feed_urls = urls(feeds, hosts, port)
    with tempfile.TemporaryDirectory() as tmp, PeakSampler() as sampler:
        runner = run_veille if variant == "veille" else run_obvious
        rounds = asyncio.run(runner(feed_urls, Path(tmp)))
    print(
        json.dumps(
            {"rounds": rounds, "peak_rss_mb": sampler.peak_self / 2**20, "peak_tree_rss_mb": sampler.peak_tree / 2**20}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "FEEDS", "HOSTS", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, feeds, hosts, port = args.child
        child(variant, int(feeds), int(hosts), int(port))
        return
    with feedhost.running(args.hosts, max(args.feeds), args.latency_ms) as port:
        _compare(args, port)


def _compare(args: argparse.Namespace, port: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(
        f"{'feeds':>6} {'poller':>8} {'round':>5} {'s':>7} {'feeds/s':>8} {'hits':>6} {'hits/s':>8} "
        f"{'CPU s':>6} {'peak RSS MB (main / with workers)':>34}"
    )
    for feeds in args.feeds:
        figures = {}
        for variant in ("obvious", "veille"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, str(feeds), str(args.hosts), str(port)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            data = json.loads(out.stdout.strip().splitlines()[-1])
            figures[variant] = data
            for name, r in zip(("cold", "warm"), data["rounds"], strict=True):
                print(
                    f"{feeds:>6} {variant:>8} {name:>5} {r['seconds']:>7.2f} {r['sources_per_s']:>8.1f} "
                    f"{r['hits']:>6} {r['hits_per_s']:>8.1f} {r['cpu_s']:>6.2f} "
                    f"{data['peak_rss_mb']:>16.0f} / {data['peak_tree_rss_mb']:.0f}"
                )
        for index, name in enumerate(("cold", "warm")):
            ratio = (
                figures["veille"]["rounds"][index]["sources_per_s"]
                / figures["obvious"]["rounds"][index]["sources_per_s"]
            )
            print(f"{feeds:>6} speed-up {name}: x{ratio:.1f}")


if __name__ == "__main__":
    main()
