"""Write locks under an alert burst: 1,000 clients open incidents at once.

    .venv/bin/python bench/alert_burst.py [--clients 1000] [--db sqlite|pg]

Stores one severe hit per client through the real AlertingService (in the hits' write transactions, 50
hits a transaction as the poll writer does), then runs the service's ticks until every incident is
notified (console contacts, group_wait 0). Meanwhile another process writes a small row every 20 ms with
veille's own engine (busy timeout included) and counts the writes that failed. Prints the longest write
transaction of each phase and of the other writer, the batched tick against the one-transaction tick
(TICK_BATCH set above the client count), and the failed writes. Asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text

from veille.config import parse_config
from veille.core.clock import SystemClock
from veille.core.errors import StorageError
from veille.core.models import SentimentLabel, SentimentResult, StoredHit
from veille.runtime import alerting
from veille.runtime.alerting import AlertingService
from veille.store.engine import make_engine, write_stats, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import hits, outbox
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


def other_writer(db_url: str, stop: multiprocessing.synchronize.Event, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """A second writer (another daemon's poll writer): a tiny write every 20 ms; its waits and failures."""
    engine = make_engine(db_url)
    waits, failures = [], 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with write_tx(engine) as conn:
                conn.execute(text("UPDATE alert_kv SET value = value WHERE key = 'none'"))
        except StorageError:
            failures += 1
        waits.append(time.perf_counter() - started)
        time.sleep(0.02)
    engine.dispose()
    queue.put((max(waits, default=0.0), sorted(waits)[int(len(waits) * 0.99)] if waits else 0.0, failures))


def run(db_url: str, clients: int, batch: int) -> dict[str, float]:
    alerting.TICK_BATCH = batch
    config = parse_config(config_text(db_url, clients), environ={})
    engine = make_engine(db_url)
    upgrade(engine)
    clock = SystemClock()
    with write_tx(engine) as conn:
        refs = sync_config(conn, config.clients, config.sources, clock.now())
    service = AlertingService(config, engine, clock, {})
    source_of = {s.client_id: refs[s.key] for s in config.sources}
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    writer_stop = multiprocessing.Event()
    writer = multiprocessing.Process(target=other_writer, args=(db_url, writer_stop, queue))
    stats = write_stats(engine)
    figures: dict[str, float] = {}

    stats.longest_seconds = 0.0
    started = time.monotonic()
    for first in range(0, clients, 50):
        now = datetime.now(UTC)
        with write_tx(engine) as conn:
            stored = []
            for c in range(first, min(first + 50, clients)):
                hit_id = conn.execute(
                    insert(hits).values(
                        source_id=source_of[f"c{c}"].id,
                        client_id=f"c{c}",
                        external_id=f"h{c}",
                        text_hash=f"t{c}",
                        content_hash=f"h{c}",
                        content_changes=0,
                        kind="rss",
                        title="",
                        direct=True,
                        text=f"Intoxication alimentaire chez marque{c} : urgences, plainte déposée",
                        author="@journal",
                        author_followers=None,
                        published_at=now,
                        fetched_at=now,
                    )
                ).inserted_primary_key[0]
                stored.append(
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
                )
            service.on_new_hits(conn, stored)
    figures["hits_s"] = time.monotonic() - started
    figures["hits_longest_ms"] = stats.longest_seconds * 1000

    # The ticks run while the other writer writes (the tick is where one big transaction used to be).
    writer.start()
    time.sleep(0.5)
    stats.longest_seconds = 0.0
    started = time.monotonic()
    ticks = 0
    while True:
        service.tick()
        ticks += 1
        with engine.connect() as conn:
            queued = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        if queued >= clients or ticks >= 20:
            break
    figures["ticks"] = ticks
    figures["tick_s"] = time.monotonic() - started
    figures["tick_longest_ms"] = stats.longest_seconds * 1000
    figures["notifications"] = queued
    figures["failures"] = stats.failures
    writer_stop.set()
    figures["other_wait_max_ms"], figures["other_wait_p99_ms"], figures["other_failed"] = (
        v * 1000 if i < 2 else v for i, v in enumerate(queue.get(timeout=30))
    )
    writer.join()
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    args = parser.parse_args()
    print(f"{args.clients} clients open an incident at once ({args.db})")
    print(
        f"{'tick':>24} {'hits tx ms':>11} {'tick tx ms':>11} {'ticks':>6} {'tick s':>7} {'queued':>7}"
        f" {'other writer wait max/p99 ms':>29} {'failed writes':>14}"
    )
    for label, batch in (("one transaction", 10**9), (f"batches of {alerting.TICK_BATCH}", alerting.TICK_BATCH)):
        with tempfile.TemporaryDirectory() as tmp:
            if args.db == "pg":
                schema = f"bench_{int(time.time() * 1000)}"
                admin = make_engine(PG_URL)
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            else:
                url = f"sqlite:///{tmp}/burst.db"
            f = run(url, args.clients, batch)
            print(
                f"{label:>24} {f['hits_longest_ms']:>11.1f} {f['tick_longest_ms']:>11.1f} {f['ticks']:>6.0f}"
                f" {f['tick_s']:>7.2f} {f['notifications']:>7.0f}"
                f" {f['other_wait_max_ms']:>20.1f} / {f['other_wait_p99_ms']:>6.1f}"
                f" {f['failures'] + f['other_failed']:>14.0f}"
            )
            if args.db == "pg":
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                admin.dispose()


if __name__ == "__main__":
    main()
