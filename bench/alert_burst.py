"""Write locks under an alert burst: 1,000 clients open incidents at once.

    PYTHONPATH=$PWD .venv/bin/python bench/alert_burst.py [--clients 1000] [--db sqlite|pg] [--runs 3] [--budget MS]
        [--autocheckpoint] [--usual N] [--spans MS]

Stores one severe hit per client through the real AlertingService (after one quiet tick, as a daemon has
ticked from its start), 50 hits a write transaction as the poll writer does (its detections past the time
budget are left to the tick), then runs the service's ticks until every incident is notified (console
contacts, group_wait 0) while the outbox relay delivers them (its own engine: its figures are its own).
All along, another process writes a small row every 20 ms with veille's own engine (busy timeout
included): its longest wait, and the writes that failed.
Prints, per run, the longest write transaction of each writer and its 99th percentile, with the time
budget (alerting.TICK_BUDGET) and, once for reference, without it (one transaction per tick, every incident
opened in the hits' transaction), and the count of busy-timeout errors of every writer; then, over the
budgeted runs, each writer's longest transaction and how many held the lock past 100 ms. The bar is about
the longest one, and a shared machine stretches any of them: compare before/after in the same conditions,
over several runs. On SQLite a commit that crosses the WAL's auto-checkpoint threshold also copies the WAL
into the database, inside the commit call but after the write lock is released (measured: a 341 ms commit
while another connection wrote 136 times, waiting 0.3 ms at most): such a transaction's figure overstates
its hold on the lock, which the other writer's waits show. The daemon's engine does not checkpoint in commits
(a background job does, every jobs.CHECKPOINT_EVERY): so do the runs here, unless --autocheckpoint.
--usual N gives each client N usual posts of 40 words, which the summary of its incident counts.
--spans MS shows where each transaction longer than MS went: statements, commit, Python, and the thread's CPU
time (a transaction whose wall time is far above its CPU time waited for the CPU or the GIL).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import multiprocessing.synchronize
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, event, func, insert, select, text

from veille.config import parse_config
from veille.core.clock import SystemClock
from veille.core.errors import StorageError
from veille.core.models import SentimentLabel, SentimentResult, StoredHit
from veille.notify.fake import FakeNotifier
from veille.runtime import alerting
from veille.runtime.alerting import AlertingService
from veille.runtime.jobs import CHECKPOINT_EVERY
from veille.runtime.outbox import Dispatcher
from veille.store import alerts as alert_store
from veille.store.engine import checkpoint, make_engine, write_stats, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import hits, outbox
from veille.store.schema_alerts import alert_hits
from veille.store.sources import sync_config

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def config_text(db_url: str, clients: int) -> str:
    lines = ['timezone = "Europe/Paris"', f'[database]\nurl = "{db_url}"', "[alerting]", 'group_wait = "0s"', ""]
    for c in range(clients):
        lines += [
            f'[[clients]]\nid = "c{c}"\nname = "Client {c}"\nkeywords = ["marque{c}"]',
            f'  [[clients.sources]]\n  kind = "rss"\n  url = "https://example.org/{c}.xml"\n',
        ]
    lines += ['[[contacts]]\nid = "cm"\nchannel = "console"\naddress = ""\nclients = ["*"]\n']
    return "\n".join(lines)


def other_writer(
    db_url: str,
    autocheckpoint: bool,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """A second writer (another daemon's poll writer): a tiny write every 20 ms; its waits and failures."""
    engine = make_engine(db_url, autocheckpoint=autocheckpoint)
    waits: list[tuple[float, float]] = []  # (when, how long)
    failures = 0
    while not stop.is_set():
        began, started = time.time(), time.perf_counter()
        try:
            with write_tx(engine) as conn:
                conn.execute(text("UPDATE alert_kv SET value = value WHERE key = 'none'"))
        except StorageError:
            failures += 1
        waits.append((began, time.perf_counter() - started))
        ready.set()
        time.sleep(0.02)
    engine.dispose()
    queue.put((waits, failures))


def relay(dispatcher: Dispatcher, stop: threading.Event) -> None:
    """The outbox relay of the daemon: claims and delivers while the ticks enqueue."""

    async def loop() -> None:
        while not stop.is_set():
            if not await dispatcher.pump():
                await asyncio.sleep(0.05)

    asyncio.run(loop())


def checkpointer(engine: Engine, stop: threading.Event) -> None:
    """The daemon's checkpoint job (`veille.runtime.jobs.checkpoint_wal`), in a thread of its own."""
    while not stop.wait(CHECKPOINT_EVERY):
        checkpoint(engine)


def sent_count(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        counts = dict(conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all())
    return sum(counts.values()), counts.get("sent", 0)


BAR = 0.1  # seconds: issue 17's bar for any write transaction
WRITERS = ("hits", "tick", "relay")


class Spans:
    """`--spans MS`: where a write transaction longer than MS went (its slowest statements, its commit, the
    Python between them), printed as it ends. Statements are timed by engine events in the thread running
    them; a transaction ends in `WriteStats.record`, which appends to the writer's list (`Held`)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.local = threading.local()
        self.gc_spent = 0.0  # any thread's collections since the last transaction began (one collects at a time)
        self.gc_began = 0.0
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_began = time.perf_counter()
        else:
            self.gc_spent += time.perf_counter() - self.gc_began

    def watch(self, engine: Engine) -> None:
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            self.local.began = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            spent = time.perf_counter() - self.local.began
            self.statements().append((spent, " ".join(statement.split())[:90]))

        def commit(conn: Any) -> None:
            self.local.commit_at = time.perf_counter()

        def begin(conn: Any) -> None:
            self.local.statements = []
            self.local.cpu = time.thread_time()
            self.gc_spent = 0.0

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "commit", commit)
        event.listen(engine, "begin", begin)

    def statements(self) -> list[tuple[float, str]]:
        if not hasattr(self.local, "statements"):
            self.local.statements = []
        return self.local.statements  # type: ignore[no-any-return]

    def ended(self, writer: str, seconds: float) -> None:
        if seconds < self.threshold:
            return
        statements = self.statements()
        commit = time.perf_counter() - getattr(self.local, "commit_at", time.perf_counter())
        in_sql = sum(s for s, _ in statements)
        slowest = sorted(statements, reverse=True)[:3]
        cpu = time.thread_time() - getattr(self.local, "cpu", time.thread_time())
        print(
            f"    [{writer}] {seconds * 1000:.0f} ms: commit {commit * 1000:.0f}, {len(statements)} statements"
            f" {in_sql * 1000:.0f}, python {(seconds - commit - in_sql) * 1000:.0f}; this thread's CPU"
            f" {cpu * 1000:.0f}, garbage collection {self.gc_spent * 1000:.0f}"
            + "".join(f"\n        {s * 1000:5.1f} {q}" for s, q in slowest),
            flush=True,
        )


class Held(list[float]):
    """A writer's transaction durations; tells `Spans` of each as it ends."""

    def __init__(self, writer: str, spans: Spans | None) -> None:
        super().__init__()
        self.writer, self.spans = writer, spans

    def append(self, seconds: float) -> None:
        super().append(seconds)
        if self.spans is not None:
            self.spans.ended(self.writer, seconds)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


USUAL_WORDS = (
    "terrasse",
    "burger",
    "service",
    "rapide",
    "accueil",
    "serveur",
    "soleil",
    "prix",
    "menu",
    "dessert",
    "café",
    "vin",
    "plat",
    "frites",
    "salade",
    "équipe",
    "réservation",
    "midi",
    "soirée",
    "concert",
    "parking",
    "livraison",
    "commande",
    "carte",
    "brunch",
    "fromage",
    "tarte",
    "chocolat",
    "ambiance",
)


def add_usual_posts(engine: Engine, clients: int, per_client: int, now: datetime) -> None:
    """`per_client` quiet posts of 40 words for each client over the last weeks (the usual posts that an incident's
    summary counts), written straight into alert_hits."""
    rng = random.Random(17)
    rows = []
    for c in range(clients):
        for n in range(per_client):
            seen = now - timedelta(days=2, minutes=37 * n + c % 37)
            rows.append(
                {
                    "hit_id": 10_000_000 + c * per_client + n,
                    "client_id": f"c{c}",
                    "seen_at": seen,
                    "active_at": seen,
                    "published_at": seen,
                    "source_kind": "rss",
                    "author": f"@fan{n}",
                    "text_key": f"u{c}-{n}",
                    "snippet": " ".join(rng.choice(USUAL_WORDS) for _ in range(40)),
                    "negative": False,
                    "risk": 0.05,
                    "reasons": [],
                    "first_total": 0,
                    "first_at": seen,
                    "total": 0,
                    "total_at": seen,
                }
            )
    for first in range(0, len(rows), 5000):
        with write_tx(engine) as conn:
            conn.execute(insert(alert_hits), rows[first : first + 5000])


def run(
    db_url: str,
    clients: int,
    budget: float,
    spans: Spans | None = None,
    *,
    autocheckpoint: bool = False,
    usual: int = 0,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """One burst: its figures, and every write transaction's duration per writer (hits, tick, relay).
    SQLite: as the daemon, commits do not checkpoint and a job does, unless `autocheckpoint`."""
    alerting.TICK_BUDGET = budget
    config = parse_config(config_text(db_url, clients), environ={})
    engine = make_engine(db_url, autocheckpoint=autocheckpoint)
    relay_engine = make_engine(db_url, autocheckpoint=autocheckpoint)
    checkpoints_stop = threading.Event()
    checkpoints = threading.Thread(target=checkpointer, args=(engine, checkpoints_stop))
    upgrade(engine)
    if spans is not None:
        spans.watch(engine)
        spans.watch(relay_engine)
    clock = SystemClock()
    with write_tx(engine) as conn:
        refs = sync_config(conn, config.clients, config.sources, clock.now())
    add_usual_posts(engine, clients, usual, clock.now())
    dispatcher = Dispatcher(relay_engine, clock, config.alerting, {"console": FakeNotifier("console")})
    service = AlertingService(config, engine, clock, {}, dispatcher=dispatcher)
    source_of = {s.client_id: refs[s.key] for s in config.sources}
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    writer_stop, writer_ready = multiprocessing.Event(), multiprocessing.Event()
    args = (db_url, autocheckpoint, writer_ready, writer_stop, queue)
    writer = multiprocessing.Process(target=other_writer, args=args)
    writer.start()  # forked before any other thread runs: a fork while one is inside SQLite hangs the child
    if not autocheckpoint:
        checkpoints.start()
    writer_ready.wait(timeout=60)  # on a loaded machine its start took longer than the burst's hits
    service.tick()  # the daemon ticks from its start: a burst finds it running
    stats = write_stats(engine)
    figures: dict[str, float] = {}
    held: dict[str, list[float]] = {w: Held(w, spans) for w in WRITERS}
    write_stats(relay_engine).durations = held["relay"]

    stats.durations = held["hits"]
    started = time.monotonic()
    hits_began = time.time()
    for first in range(0, clients, 50):
        now = datetime.now(UTC)
        batch = range(first, min(first + 50, clients))
        rows = [
            {
                "source_id": source_of[f"c{c}"].id,
                "client_id": f"c{c}",
                "external_id": f"h{c}",
                "text_hash": f"t{c}",
                "content_hash": f"h{c}",
                "content_changes": 0,
                "kind": "rss",
                "title": "",
                "direct": True,
                "text": f"Intoxication alimentaire chez marque{c} : urgences, plainte déposée",
                "author": "@journal",
                "author_followers": None,
                "published_at": now,
                "fetched_at": now,
            }
            for c in batch
        ]
        with write_tx(engine) as conn:
            # One multi-row INSERT, as the poll writer's store_batch does.
            ids = conn.execute(insert(hits).returning(hits.c.id, sort_by_parameter_order=True), rows).scalars().all()
            stored = [
                StoredHit(
                    hit_id,
                    f"c{c}",
                    f"c{c}/rss",
                    "rss",
                    f"h{c}",
                    "Intoxication alimentaire, urgences, plainte",
                    "",
                    None,
                    "@journal",
                    None,
                    True,
                    now,
                    now,
                    SentimentResult(SentimentLabel.NEG, -0.95, "fr", ("intoxication",)),
                    reach_prior=0.5,
                )
                for hit_id, c in zip(ids, batch, strict=True)
            ]
            service.on_new_hits(conn, stored)
    figures["hits_s"] = time.monotonic() - started
    with engine.connect() as conn:
        figures["deferred"] = len(alert_store.detections_due(conn))

    # The ticks open what the hits' transactions left and notify; the relay delivers meanwhile.
    relay_stop = threading.Event()
    relay_thread = threading.Thread(target=relay, args=(dispatcher, relay_stop))
    relay_thread.start()
    ticks_began = time.time()
    stats.durations = held["tick"]
    started = time.monotonic()
    ticks = 0
    try:
        while ticks < 20:
            service.tick()
            ticks += 1
            queued, _ = sent_count(engine)
            if queued >= clients:
                break
        figures["ticks"] = ticks
        figures["tick_s"] = time.monotonic() - started
        stats.durations = None  # the relay's transactions go on while the last messages are delivered
        while time.monotonic() - started < 120 and sent_count(engine)[1] < clients:
            time.sleep(0.1)
    finally:
        relay_stop.set()
        relay_thread.join()
        writer_stop.set()
        checkpoints_stop.set()
        if checkpoints.is_alive():
            checkpoints.join()
    figures["queued"], figures["sent"] = sent_count(engine)
    figures["failures"] = stats.failures + write_stats(relay_engine).failures
    waits, figures["other_failed"] = queue.get(timeout=30)
    # A wait counts for each phase it overlaps: one that began before the hits and lasted through them is theirs.
    during_hits = [w for at, w in waits if at < ticks_began and at + w >= hits_began]
    during_ticks = [w for at, w in waits if at + w >= ticks_began]
    figures["other_wait_hits_ms"] = max(during_hits, default=0.0) * 1000
    figures["other_wait_ticks_ms"] = max(during_ticks, default=0.0) * 1000
    writer.join()
    engine.dispose()
    relay_engine.dispose()
    return figures, held


def fresh_url(db: str, tmp: str) -> tuple[str, str | None]:
    """A database of its own for a run: a SQLite file, or a new PostgreSQL schema (its name, to drop)."""
    if db == "sqlite":
        return f"sqlite:///{tmp}/burst.db", None
    schema = f"bench_{int(time.time() * 1000)}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--runs", type=int, default=3, help="runs with the budget (one more without, for reference)")
    parser.add_argument("--no-reference", action="store_true", help="skip the run without a budget")
    parser.add_argument("--budget", type=float, help="ms (default: alerting.TICK_BUDGET), to try another one")
    parser.add_argument(
        "--autocheckpoint", action="store_true", help="SQLite checkpoints in commits (before issue 17), not in a job"
    )
    parser.add_argument("--usual", type=int, default=0, help="usual posts per client (counted by the summaries)")
    parser.add_argument("--spans", type=float, metavar="MS", help="show where each transaction longer than MS went")
    args = parser.parse_args()
    budget = alerting.TICK_BUDGET if args.budget is None else args.budget / 1000
    print(
        f"{args.clients} clients open an incident at once ({args.db}); each writer's write transactions:"
        " longest / 99th percentile, ms"
    )
    print(
        f"{'':>16} {'hits tx':>13} {'left to tick':>13} {'tick tx':>13} {'relay tx':>13} {'ticks':>6}"
        f" {'tick s':>7} {'sent':>6} {'other writer longest wait ms (hits/ticks)':>42} {'busy-timeout errors':>20}"
    )
    plan = [] if args.no_reference else [("no budget", float("inf"))]
    plan += [(f"budget {budget * 1000:.0f} ms", budget)] * args.runs
    pooled: dict[str, list[float]] = {w: [] for w in WRITERS}
    longest: dict[str, list[float]] = {w: [] for w in WRITERS}
    errors = 0
    for label, limit in plan:
        with tempfile.TemporaryDirectory() as tmp:
            url, schema = fresh_url(args.db, tmp)
            try:
                spans = Spans(args.spans / 1000) if args.spans else None
                f, held = run(url, args.clients, limit, spans, autocheckpoint=args.autocheckpoint, usual=args.usual)
            finally:
                if schema is not None:
                    drop_schema(schema)
        shown = {w: f"{max(held[w], default=0) * 1000:.0f} / {percentile(held[w], 0.99) * 1000:.0f}" for w in WRITERS}
        print(
            f"{label:>16} {shown['hits']:>13} {f['deferred']:>13.0f} {shown['tick']:>13} {shown['relay']:>13}"
            f" {f['ticks']:>6.0f} {f['tick_s']:>7.2f} {f['sent']:>6.0f}"
            f" {f['other_wait_hits_ms']:>33.1f} / {f['other_wait_ticks_ms']:>6.1f}"
            f" {f['failures'] + f['other_failed']:>20.0f}",
            flush=True,
        )
        if limit == budget:
            errors += int(f["failures"] + f["other_failed"])
            for w in WRITERS:
                pooled[w] += held[w]
                longest[w].append(max(held[w], default=0.0))
    if not args.runs:
        return
    print(f"over the {args.runs} runs with the budget ({budget * 1000:.0f} ms):")
    for w in WRITERS:
        over = sum(1 for d in pooled[w] if d > BAR)
        print(
            f"  {w:>5}: longest {max(longest[w]) * 1000:.0f} ms (median of the runs' longest"
            f" {statistics.median(longest[w]) * 1000:.0f}), p99 {percentile(pooled[w], 0.99) * 1000:.0f} ms,"
            f" {over} of {len(pooled[w])} transactions over {BAR * 1000:.0f} ms"
        )
    print(f"  busy-timeout errors in any writer: {errors}")


if __name__ == "__main__":
    main()
