"""Scale-out benchmark: 1, 2 and 3 real daemons (`veille run`) on one PostgreSQL database over N local feeds.

    PYTHONPATH=$PWD .venv/bin/python bench/scale.py [--feeds 3000] [--daemons 1 2 3] [--window 60]
        [--hosts 16] [--latency-ms 50] [--every 30s]

Serves N generated feeds (bench/feedhost.py, its own process: short French reviews, 70 % with ETag and
Last-Modified, 50 ms latency) on 16 loopback addresses. For each daemon count: a fresh PostgreSQL schema
(127.0.0.1:5432, user postgres, db test), the same config for every daemon (one client, alerting on with a
console contact, every source polled every 30 s, the minimum, so that the daemons never wait for a due poll
when they cannot keep up), lease 6 s. Once every feed has been polled and the shares are even, it measures
for `--window` seconds, each daemon's figures taken when it rewrites its health file (its poll counters)
and its CPU (daemon and parse workers, from /proc) sampled at that moment:
- the cold round: from the start until every feed was polled once (every answer a 200 to parse and score:
  the daemons cannot keep up, so this round measures their throughput, lease hand-overs included);
- polls/s of all daemons afterwards, and the round time: how long polling every feed once takes at that rate
  (when the daemons keep up, the round is the 30 s interval: then only the CPU says how far they are from
  their limit);
- each daemon's share of the polls and the leases it holds;
- CPU-seconds per daemon and per 1,000 polls (this one does not depend on how many cores the machine has);
- how many cores the daemons kept busy, and the feed host's CPU (it runs on the same cores);
- the feeds polled during the window, and whether any entry was stored twice.
Asserts nothing. With 3 daemons the round can be 2.5 times shorter than with 1 only on >= 3 free cores:
on 2 cores, 3 daemons share the same 2 cores that 1 daemon could already fill.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedhost
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from veille.store.engine import make_engine
from veille.store.migrate import upgrade
from veille.store.schema import hits, sources

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEYWORDS = ["chez gégé", "#chezgege", "@chezgege", "-recrutement"]  # the example config's client
CRISIS_WORDS = ["intoxication", "cafard", "hygiène"]


def seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def config_text(url: str, feed_urls: list[str], health: Path, every: str) -> str:
    lines = [
        'lang = "fr"',
        'timezone = "Europe/Paris"',
        f'[database]\nurl = "{url}"',
        "[http]\nallow_private_addresses = true\nper_host_limit = 8",
        f'[daemon]\nconcurrency = 50\nlease = "6s"\nstartup_spread = "5s"\nhealth_file = "{health}"',
        '[alerting]\nenabled = true\ndigest_at = "off"',
        '[[contacts]]\nid = "camille"\nchannel = "console"\naddress = "-"\nclients = ["*"]',
        "[[clients]]",
        'id = "resto"\nname = "Chez Gégé"\nlang = "fr"',
        f"keywords = {json.dumps(KEYWORDS, ensure_ascii=False)}",
        f"crisis_words = {json.dumps(CRISIS_WORDS, ensure_ascii=False)}",
    ]
    for n, feed in enumerate(feed_urls):
        lines.append(f'[[clients.sources]]\nkind = "rss"\nid = "f{n}"\nurl = "{feed}"\nevery = "{every}"')
    return "\n".join(lines) + "\n"


def tree_cpu(process: psutil.Process) -> float:
    """CPU-seconds of a process and its children (parse workers), alive ones only."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for p in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


@dataclass
class Sample:
    at: float  # the health file's own time (seconds)
    polls: int
    cpu: float


def polls_of(report: dict[str, object]) -> int:
    extra = report.get("extra")
    polls = extra.get("polls", {}) if isinstance(extra, dict) else {}
    return sum(int(n) for outcomes in polls.values() for n in outcomes.values())


def sample_at_rewrite(health: Path, process: psutil.Process, timeout: float = 30.0) -> Sample:
    """Wait for the daemon to rewrite its health file, then read it and the CPU at once (aligned samples)."""
    before = health.stat().st_mtime_ns if health.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health.exists() and health.stat().st_mtime_ns != before:
            cpu = tree_cpu(process)
            with contextlib.suppress(ValueError, OSError):
                report = json.loads(health.read_text(encoding="utf-8"))
                at = datetime.fromisoformat(report["updated_at"]).timestamp()
                return Sample(at, polls_of(report), cpu)
        time.sleep(0.05)
    raise RuntimeError(f"{health} was not rewritten within {timeout:.0f} s")


@contextlib.contextmanager
def fresh_schema(tag: str) -> Iterator[str]:
    schema = f"bench_scale_{tag}_{int(time.time() * 1000)}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def held_and_polled(url: str) -> tuple[Counter[str], int, datetime | None]:
    """Leases held per daemon, sources polled at least once, and the oldest last poll."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        owners = Counter(
            owner
            for (owner,) in conn.execute(
                select(sources.c.lease_owner).where(sources.c.lease_owner.is_not(None), sources.c.lease_until > now)
            )
        )
        polled = conn.execute(
            select(func.count()).select_from(sources).where(sources.c.last_polled_at.is_not(None))
        ).scalar_one()
        oldest = conn.execute(select(func.min(sources.c.last_polled_at))).scalar()
    engine.dispose()
    return owners, int(polled), oldest


def polled_since(url: str, since: datetime) -> tuple[int, int, int]:
    """Sources polled since `since`; hits stored and distinct (source, entry) among them."""
    engine = make_engine(url)
    with engine.connect() as conn:
        polled = conn.execute(
            select(func.count()).select_from(sources).where(sources.c.last_polled_at >= since)
        ).scalar_one()
        total = conn.execute(select(func.count()).select_from(hits)).scalar_one()
        distinct = conn.execute(
            select(func.count()).select_from(select(hits.c.source_id, hits.c.external_id).distinct().subquery())
        ).scalar_one()
    engine.dispose()
    return int(polled), int(total), int(distinct)


@dataclass
class Result:
    daemons: int
    spans: list[float]  # each daemon's measured interval (its health file's times)
    polls: list[int]
    cpu: list[float]
    held: list[int]
    polled: int
    cold: float  # seconds from the start until every feed was polled once (the cold round: every answer a 200)
    stored: int
    distinct: int
    host_cpu: float

    @property
    def window(self) -> float:
        return sum(self.spans) / len(self.spans)

    @property
    def rate(self) -> float:
        return sum(p / s for p, s in zip(self.polls, self.spans, strict=True) if s > 0)

    def round_seconds(self, feeds: int) -> float:
        return feeds / self.rate if self.rate else float("inf")

    @property
    def cpu_per_1000(self) -> float:
        return sum(self.cpu) / sum(self.polls) * 1000 if sum(self.polls) else float("nan")


def measure(count: int, feeds: list[str], args: argparse.Namespace, host: psutil.Process, work: Path) -> Result:
    with fresh_schema(str(count)) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("VEILLE_TELEGRAM_TOKEN", None)
        daemons: list[subprocess.Popen[bytes]] = []
        health = [work / f"{count}-{i}-health.json" for i in range(count)]
        try:
            for i in range(count):
                config = work / f"{count}-{i}.toml"
                config.write_text(config_text(url, feeds, health[i], args.every), encoding="utf-8")
                with (work / f"{count}-{i}.log").open("wb") as log:
                    daemons.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "veille", "run", "--config", str(config)],
                            cwd=ROOT,
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            # Settle: every feed polled once (the cold round, all 200s) and the shares even (within 10 %).
            started = time.monotonic()
            deadline = started + args.settle
            cold = float("nan")
            while time.monotonic() < deadline:
                owners, polled, _ = held_and_polled(url)
                if polled == len(feeds) and cold != cold:
                    cold = time.monotonic() - started
                fair = len(feeds) / count
                even = len(owners) == count and all(abs(n - fair) <= 0.1 * fair + 1 for n in owners.values())
                if polled == len(feeds) and even:
                    break
                for i, d in enumerate(daemons):
                    if d.poll() is not None:
                        tail = (work / f"{count}-{i}.log").read_text(encoding="utf-8", errors="replace")[-3000:]
                        raise RuntimeError(f"daemon {i} of {count} exited ({d.returncode}):\n{tail}")
                time.sleep(1)
            else:
                print(f"  ({count} daemons: not settled after {args.settle:.0f} s: {dict(owners)}, {polled} polled)")
            processes = [psutil.Process(d.pid) for d in daemons]
            window_start = datetime.now(UTC)
            host_before = tree_cpu(host)
            first = [sample_at_rewrite(h, p) for h, p in zip(health, processes, strict=True)]
            time.sleep(args.window)
            last = [sample_at_rewrite(h, p) for h, p in zip(health, processes, strict=True)]
            host_cpu = tree_cpu(host) - host_before
            owners, _, _ = held_and_polled(url)
            polled, stored, distinct = polled_since(url, window_start)
            order = sorted(owners)
            return Result(
                daemons=count,
                spans=[b.at - a.at for a, b in zip(first, last, strict=True)],
                polls=[b.polls - a.polls for a, b in zip(first, last, strict=True)],
                cpu=[b.cpu - a.cpu for a, b in zip(first, last, strict=True)],
                held=[owners[o] for o in order],
                polled=polled,
                cold=cold,
                stored=stored,
                distinct=distinct,
                host_cpu=host_cpu,
            )
        finally:
            for d in daemons:
                if d.poll() is None:
                    d.send_signal(signal.SIGTERM)
            for d in daemons:
                try:
                    d.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    d.kill()
                    d.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, default=3000)
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured once settled")
    parser.add_argument(
        "--settle", type=float, default=900.0, help="seconds allowed for the cold round and even shares"
    )
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--every", default="30s")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the daemons and the feed host on the way out
    cores = os.cpu_count() or 1
    print(
        f"{args.feeds} feeds on {args.hosts} loopback hosts ({args.latency_ms:.0f} ms), every {args.every}, "
        f"PostgreSQL; {cores} cores, load average {os.getloadavg()[0]:.1f} at start; window {args.window:.0f} s"
    )
    results: list[Result] = []
    with feedhost.running(args.hosts, args.feeds, args.latency_ms) as port, tempfile.TemporaryDirectory() as tmp:
        host = next(p for p in psutil.Process().children() if str(port) in " ".join(p.cmdline()))
        feeds = [f"http://127.0.0.{2 + i % args.hosts}:{port}/feed/{i}" for i in range(args.feeds)]
        print(
            f"{'daemons':>7} {'cold round s':>13} {'round s':>8} {'polls/s':>8} {'polled':>7} {'share of polls %':>20}"
            f" {'leases held':>17} {'CPU s per daemon':>22} {'CPU s/1000 polls':>17} {'cores busy':>11}"
            f" {'feed host CPU s':>16} {'stored twice':>13}  keeps up with every {args.every}"
        )
        for count in args.daemons:
            r = measure(count, feeds, args, host, Path(tmp))
            results.append(r)
            total = sum(r.polls) or 1
            keeps = r.rate >= 0.9 * args.feeds / seconds(args.every)
            shares = "/".join(f"{100 * p / total:.0f}" for p in r.polls)
            print(
                f"{count:>7} {r.cold:>13.1f} {r.round_seconds(args.feeds):>8.1f} {r.rate:>8.1f} {r.polled:>7}"
                f" {shares:>20}"
                f" {'/'.join(map(str, r.held)):>17} {'/'.join(f'{c:.1f}' for c in r.cpu):>22}"
                f" {r.cpu_per_1000:>17.2f} {sum(r.cpu) / r.window:>11.2f} {r.host_cpu:>16.1f}"
                f" {r.stored - r.distinct:>13}  {'yes (the interval bounds the round)' if keeps else 'no'}",
                flush=True,
            )
    if not results:
        return
    base = results[0]
    for r in results[1:]:
        faster = base.round_seconds(args.feeds) / r.round_seconds(args.feeds)
        print(
            f"{r.daemons} daemons against {base.daemons}: cold round {base.cold / r.cold:.2f} times shorter,"
            f" steady round {faster:.2f} times shorter,"
            f" CPU per 1,000 polls {r.cpu_per_1000 / base.cpu_per_1000:.2f} times"
        )
    busiest = max(sum(r.cpu) / r.window + r.host_cpu / r.window for r in results)
    print(
        f"This machine has {cores} cores; the daemons and the feed host kept up to {busiest:.1f} of them busy "
        f"(load average {os.getloadavg()[0]:.1f} now, other work included). A round 2.5 times shorter with 3 "
        f"daemons needs the CPU of 2.5 single daemons: >= 3 free cores. The CPU-seconds per 1,000 polls do not "
        f"depend on the cores: with C free cores the daemons poll at most C / (CPU per poll) feeds a second."
    )


if __name__ == "__main__":
    main()
