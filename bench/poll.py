"""Polling benchmark: `veille run --once`, as a user runs it, against the obvious poller, over N loopback feeds.

    .venv/bin/python bench/poll.py [--feeds 100 1000] [--profiles feed article] [--hosts 16] [--latency-ms 50]
        [--timeline]

Serves N generated feeds per profile (bench/feedhost.py, in its own process) on 16 loopback addresses
(127.0.0.2...) with 50 ms latency, 70 % of them with ETag/Last-Modified:
- `feed`: short French reviews (20-50 items, one-line description);
- `article`: full-length French news articles (20-50 per feed, an HTML lead in the description, a 1-3 KB
  `content:encoded` or Atom `content`, categories; the client named in the title, lead, body or a category).
Then, for each profile and N, in the same run:
- obvious: one process, one httpx client, a semaphore of 50, feedparser on the event loop, matching on
  title + summary, one transaction per feed (it neither scores nor alerts). Cold is its first poll of every
  feed, warm the second (with the ETags it kept);
- veille: `veille db upgrade` (not timed), then `veille run --once --config ...` twice on the same database
  (cold, then warm), exactly as from cron: one client with the example config's kind of keywords and crisis
  words, alerting on with a console contact, the bundled scorer, the parse workers.
Each run is timed from the process start to its exit (interpreter, imports and model load included). Prints
wall seconds, feeds/s, new hits, CPU seconds per process kind (daemon = the main process, parse workers,
scorer; sampled every 0.1 s from /proc, the main process's share being the exact total from wait4 minus its
helpers'), peak RSS of the main process and of the whole tree (sum of each process's own peak: an upper
bound; and the most the tree held at one sampled instant), the speed-up (feeds/s of veille / feeds/s of
obvious, per round) and how many served feeds the fast feed reader takes. After the warm round it checks
that every entry naming the client in any field (title, description, content, categories), minus the
client's exclusion word, is stored exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import feedhost
import psutil

ROOT = Path(__file__).resolve().parents[1]
VEILLE = Path(sys.executable).with_name("veille")
KEYWORDS = ["chez gégé", "#chezgege", "@chezgege", "-recrutement"]  # the example config's client
CRISIS_WORDS = ["intoxication", "cafard", "hygiène"]
TICK = os.sysconf("SC_CLK_TCK")
_TAG = re.compile(r"<[^>]*>")


def feed_urls(profile: str, n: int, hosts: int, port: int) -> list[str]:
    return [f"http://127.0.0.{2 + i % hosts}:{port}/{profile}/{i}" for i in range(n)]


# --- measuring a process tree from outside ---------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def _proc_status(pid: int, field: str) -> int:
    """A /proc/PID/status size field (VmHWM: the peak RSS, VmRSS: the RSS now) in bytes; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _proc_hwm(pid: int) -> int:
    return _proc_status(pid, "VmHWM:")


def _kind(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    if "veille.sources.rss.worker" in command:
        return "parse workers"
    if "veille.scoring" in command:
        return "scorer"
    return "other"


@dataclass
class Measure:
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # per process kind
    peaks: dict[str, int] = field(default_factory=dict)  # per helper kind: the sum of its processes' peaks
    peak_main: int = 0
    peak_tree: int = 0  # the sum of each process's own peak: an upper bound
    peak_together: int = 0  # the most the tree held at one sampled instant (every 0.1 s)
    # (seconds since start, cumulated CPU seconds per kind) about every 0.5 s, for --timeline
    timeline: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    stdout: str = ""
    returncode: int = 0

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


def measure(command: list[str], env: dict[str, str]) -> Measure:
    """Run `command`, sampling its tree every 0.1 s (the kernel's VmHWM is a peak, so sampling misses none)."""
    result = Measure()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env=env, text=True)
        main = psutil.Process(proc.pid)
        helpers: dict[int, tuple[str, float, int]] = {}  # pid -> (kind, cpu, peak)
        stop = threading.Event()

        def sample() -> None:
            ticks = 0
            while not stop.is_set():
                result.peak_main = max(result.peak_main, _proc_hwm(proc.pid))
                if ticks % 5 == 0:
                    try:
                        for child in main.children(recursive=True):
                            if child.pid not in helpers:
                                helpers[child.pid] = (_kind(child), 0.0, 0)
                    except psutil.Error:
                        pass
                together = _proc_status(proc.pid, "VmRSS:")
                for pid, (kind, cpu, peak) in list(helpers.items()):
                    now_cpu = _proc_cpu(pid)
                    helpers[pid] = (kind, cpu if now_cpu is None else now_cpu, max(peak, _proc_hwm(pid)))
                    together += _proc_status(pid, "VmRSS:")
                result.peak_together = max(result.peak_together, together)
                if ticks % 5 == 0:
                    cumulated = {"daemon": _proc_cpu(proc.pid) or 0.0}
                    for kind, cpu, _peak in helpers.values():
                        cumulated[kind] = cumulated.get(kind, 0.0) + cpu
                    result.timeline.append((time.perf_counter() - started, cumulated))
                ticks += 1
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        result.seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        result.returncode = proc.returncode
        out.seek(0)
        result.stdout = out.read()
    total = usage.ru_utime + usage.ru_stime  # the process and every helper it waited for
    for kind, cpu, peak in helpers.values():
        result.cpu[kind] = result.cpu.get(kind, 0.0) + cpu
        result.peaks[kind] = result.peaks.get(kind, 0) + peak
    result.cpu["daemon"] = max(0.0, total - sum(result.cpu.values()))
    result.peak_tree = result.peak_main + sum(peak for _, _, peak in helpers.values())
    return result


# --- veille, as a user runs it -----------------------------------------------------------------


def veille_config(workdir: Path, urls: list[str]) -> Path:
    lines = [
        'lang = "fr"',
        'timezone = "Europe/Paris"',
        f'[database]\nurl = "sqlite:///{workdir / "veille.db"}"',
        "[http]\nallow_private_addresses = true\nper_host_limit = 8",
        "[daemon]\nconcurrency = 100",
        '[alerting]\nenabled = true\ndigest_at = "off"',
        '[[contacts]]\nid = "camille"\nchannel = "console"\naddress = "-"\nclients = ["*"]',
        "[[clients]]",
        'id = "resto"\nname = "Chez Gégé"\nlang = "fr"',
        f"keywords = {json.dumps(KEYWORDS, ensure_ascii=False)}",
        f"crisis_words = {json.dumps(CRISIS_WORDS, ensure_ascii=False)}",
    ]
    for n, url in enumerate(urls):
        lines.append(f'[[clients.sources]]\nkind = "rss"\nid = "f{n}"\nurl = "{url}"\nevery = "10m"')
    path = workdir / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_veille(urls: list[str], workdir: Path) -> list[tuple[Measure, int, int]]:
    """(measure, new hits, failed sources) of the cold and the warm `veille run --once`."""
    config = veille_config(workdir, urls)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VEILLE_TELEGRAM_TOKEN", None)
    # Bytecode as an installed package has it (pip compiles it; the poller's httpx and feedparser have theirs):
    # with PYTHONDONTWRITEBYTECODE set, every run would compile veille's modules again.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "veille")], check=True, capture_output=True)
    subprocess.run([str(VEILLE), "db", "upgrade", "--config", str(config)], env=env, check=True, capture_output=True)
    rounds = []
    for _ in ("cold", "warm"):
        result = measure([str(VEILLE), "run", "--once", "--config", str(config)], env)
        lines = result.stdout.splitlines()
        new_hits = sum(int(m.group(1)) for line in lines if (m := re.search(r"ok, (\d+) nouveau", line)))
        failed = sum(1 for line in lines if ": ERREUR" in line)
        rounds.append((result, new_hits, failed))
    return rounds


def stored_hits(workdir: Path) -> tuple[int, int]:
    """(hits stored, distinct (source, entry) keys among them)."""
    with sqlite3.connect(workdir / "veille.db") as db:
        total, distinct = db.execute(
            "SELECT count(*), count(DISTINCT source_id || ' ' || external_id) FROM hits"
        ).fetchone()
    return int(total), int(distinct)


def fast_path_taken(profile: str, count: int) -> int:
    """How many of the served documents `veille.sources.rss.fastpath` reads itself (feedparser costs
    8 to 17 ms of CPU per document more)."""
    from veille.sources.rss.fastpath import parse_plain_feed

    make = feedhost.PROFILES[profile]
    return sum(parse_plain_feed(make(n), "http://127.0.0.2/", "application/rss+xml") is not None for n in range(count))


def expected_hits(profile: str, count: int) -> int:
    """Entries that name the client in any field (exclusion word honoured), read straight from the XML."""
    from veille.core.matching import Matcher

    matcher = Matcher(KEYWORDS)
    make = feedhost.PROFILES[profile]
    expected = 0
    for n in range(count):
        root = ElementTree.fromstring(make(n))  # our own generated document
        for node in root.iter():
            if node.tag in ("item", "{http://www.w3.org/2005/Atom}entry"):
                parts = [
                    *(child.text or "" for child in node.iter()),
                    *(child.get("term", "") for child in node.iter()),
                ]
                text = html.unescape(_TAG.sub(" ", html.unescape(" ".join(parts))))
                expected += matcher.match(text).matched
    return expected


# --- the obvious poller ----------------------------------------------------------------------------


async def run_obvious(urls: list[str], workdir: Path) -> list[dict[str, float]]:
    """What most people write first: correct, simple, and single-core."""
    import feedparser
    import httpx

    from veille.core.matching import Matcher

    db = sqlite3.connect(workdir / "obvious.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE hits (feed TEXT, guid TEXT, title TEXT, text TEXT, UNIQUE(feed, guid))")
    matcher = Matcher(KEYWORDS)
    state: dict[str, tuple[str | None, str | None]] = {}
    semaphore = asyncio.Semaphore(50)
    failed: list[str] = []

    async def poll(client: httpx.AsyncClient, url: str) -> int:
        async with semaphore:
            etag, modified = state.get(url, (None, None))
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
            for attempt in (1, 2):  # on a loaded machine the loopback host now and then resets a connection
                try:
                    response = await client.get(url, headers=headers)
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        failed.append(url)
                        return 0
            if response.status_code == 304:
                return 0
            parsed = feedparser.parse(response.content)
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
            t0 = time.perf_counter()
            failed.clear()
            counts = await asyncio.gather(*(poll(client, u) for u in urls))
            rounds.append({"seconds": time.perf_counter() - t0, "hits": sum(counts), "failed": len(failed)})
    return rounds


def obvious_child(profile: str, feeds: int, hosts: int, port: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rounds = asyncio.run(run_obvious(feed_urls(profile, feeds, hosts, port), Path(tmp)))
    print(json.dumps(rounds))


# --- the comparison ------------------------------------------------------------------------------


def _row(feeds: int, profile: str, poller: str, name: str, seconds: float, hits: int, m: Measure, cpu: str) -> str:
    return (
        f"{profile:>8} {feeds:>6} {poller:>8} {name:>5} {seconds:>7.2f} {feeds / seconds:>8.1f} {hits:>6} "
        f"{cpu:>32} {m.peak_main / 2**20:>9.0f} {m.peak_tree / 2**20:>9.0f}"
    )


def print_timeline(m: Measure) -> None:
    """Cores busy per process kind, half a second at a time: where the run waits and on whom."""
    kinds = ("daemon", "parse workers", "scorer")
    print(f"{'':>8} {'t s':>6} " + " ".join(f"{k:>13}" for k in kinds) + "   cores busy")
    for (t0, before), (t1, after) in itertools.pairwise(m.timeline):
        busy = [(after.get(k, 0.0) - before.get(k, 0.0)) / (t1 - t0) for k in kinds]
        bar = "".join(c * round(b * 10) for c, b in zip("dws", busy, strict=True))
        print(f"{'':>8} {t1:6.1f} " + " ".join(f"{b:13.2f}" for b in busy) + f"   {sum(busy):4.2f} {bar}")


def compare(profile: str, feeds: int, hosts: int, port: int, timeline: bool = False) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    urls = feed_urls(profile, feeds, hosts, port)
    obvious = measure([sys.executable, __file__, "--child", profile, str(feeds), str(hosts), str(port)], env)
    if obvious.returncode != 0:
        raise SystemExit(f"the obvious poller failed (exit {obvious.returncode})")
    obvious_rounds = json.loads(obvious.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        veille_rounds = run_veille(urls, Path(tmp))
        stored, distinct = stored_hits(Path(tmp))
    for name, r in zip(("cold", "warm"), obvious_rounds, strict=True):
        print(_row(feeds, profile, "obvious", name, r["seconds"], r["hits"], obvious, "(one process, both rounds)"))
        if r["failed"]:
            print(f"{'':>8} {'':>6} {'obvious':>8} {name:>5} {r['failed']} feeds failed twice (connection errors)")
    print(f"{'':>8} {'':>6} {'obvious':>8} {'both':>5} CPU s {obvious.cpu_total:.1f}")
    for name, (m, hits, failed) in zip(("cold", "warm"), veille_rounds, strict=True):
        cpu = " / ".join(f"{m.cpu.get(k, 0.0):.1f}" for k in ("daemon", "parse workers", "scorer"))
        print(_row(feeds, profile, "veille", name, m.seconds, hits, m, f"{cpu} (= {m.cpu_total:.1f})"))
        peaks = ", ".join(f"{kind} {peak / 2**20:.0f}" for kind, peak in sorted(m.peaks.items()))
        print(
            f"{'':>8} {'':>6} {'veille':>8} {name:>5} helpers' peak RSS MB: {peaks or 'none'}; the whole tree at "
            f"one instant (sampled every 0.1 s) {m.peak_together / 2**20:.0f} MB"
        )
        if failed or m.returncode:
            print(f"{'':>8} {'':>6} {'veille':>8} {name:>5} {failed} sources failed, exit {m.returncode}")
        if timeline:
            print_timeline(m)
    for index, name in enumerate(("cold", "warm")):
        ratio = obvious_rounds[index]["seconds"] / veille_rounds[index][0].seconds
        print(f"{profile:>8} {feeds:>6} speed-up {name}: x{ratio:.1f}")
    taken = fast_path_taken(profile, feeds)
    print(f"{profile:>8} {feeds:>6} fast path: {taken} of {feeds} feeds (the others went to feedparser)")
    expected = expected_hits(profile, feeds)
    print(
        f"{profile:>8} {feeds:>6} entries naming the client: {expected}; veille stored {stored} "
        f"({distinct} distinct){'' if stored == distinct == expected else '  <-- MISMATCH'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--profiles", nargs="+", default=["feed", "article"], choices=sorted(feedhost.PROFILES))
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--timeline", action="store_true", help="print the cores each process kind kept busy")
    parser.add_argument("--child", nargs=4, metavar=("PROFILE", "FEEDS", "HOSTS", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        profile, feeds, hosts, port = args.child
        obvious_child(profile, int(feeds), int(hosts), int(port))
        return
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"{'profile':>8} {'feeds':>6} {'poller':>8} {'round':>5} {'s':>7} {'feeds/s':>8} {'hits':>6} "
        f"{'CPU s daemon / workers / scorer':>32} {'RSS main':>9} {'RSS tree':>9}"
    )
    with feedhost.running(args.hosts, max(args.feeds), args.latency_ms) as port:
        for profile in args.profiles:
            for feeds in args.feeds:
                compare(profile, feeds, args.hosts, port, args.timeline)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
