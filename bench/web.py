"""Dashboard latency: the overview and a client's page with many hits, through the real app on loopback.

    PYTHONPATH=. .venv/bin/python bench/web.py [--hits 1000000] [--clients 50] [--days 180] [--requests 60]
                                               [--db-url URL] [--keep PATH]

Fills a database (SQLite in a temporary folder by default; `--db-url postgresql+psycopg://...` for
PostgreSQL, on a fresh schema) with `--hits` hits spread over `--clients` clients, 3 sources each and
the last `--days` days (busy and quiet clients, 15 % negative), a few open incidents, and a user who
sees every client. Then serves the real app with uvicorn on 127.0.0.1 and times, over HTTP with a
logged-in session, the overview, a client's page (default period, 7 days), a client's page for 30 days
with a search, and the sources page: p50 and p95 in milliseconds (target: under 150 ms at p95).
`--keep PATH` keeps the SQLite file and reuses it when it already holds the hits.

Then the daemon while the pages are read (`--poll-seconds`, 0 to skip): a real `veille run` on the same
database, `[web] enabled` (the dashboard inside the daemon, as users run it), polls 3 local feeds per client
every 30 s (bench/feedhost.py on loopback); its polls per second are read from its health file over
`--poll-seconds` without any page load, then over as long with two clients loading the overview, a client's
page and a search from its dashboard without pause. Printed: polls/s both ways, and the pages served.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedhost  # bench/feedhost.py (this script's folder is on the path): the loopback feed host
import httpx
import uvicorn
from sqlalchemy import create_engine, func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from veille.config import parse_config
from veille.core.clock import SystemClock
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients, hits, sources
from veille.store.schema_alerts import incidents
from veille.store.search import search_text
from veille.store.users import set_password
from veille.web.app import create_app
from veille.web.auth import hash_password

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
WORDS = ["service", "accueil", "prix", "pizza", "livraison", "retard", "qualité", "personnel", "commande"]
WORDS += ["remboursement", "attente", "table"]


def config_text(db_url: str, count: int, *, feeds: str | None = None, head: str = "") -> str:
    """The bench's clients, 3 RSS sources each: at example.org, or `feeds` + /feed/<n> (polled every 30 s)."""
    parts = [f'timezone = "Europe/Paris"\n{head}[database]\nurl = "{db_url}"\n[alerting]\nenabled = true\n']
    for n in range(count):
        parts.append(f'[[clients]]\nid = "c{n:02d}"\nname = "Client {n:02d}"\nkeywords = ["client {n:02d}"]\n')
        for s in range(3):
            url = f"{feeds}/feed/{n * 3 + s}" if feeds else f"https://example.org/{n}/{s}.xml"
            every = 'every = "30s"\n' if feeds else ""
            parts.append(f'[[clients.sources]]\nkind = "rss"\nid = "s{s}"\nurl = "{url}"\n{every}')
    return "\n".join(parts)


def fill(engine_url: str, total: int, count: int, days: int) -> None:
    engine = make_engine(engine_url)
    upgrade(engine)
    now = datetime.now(UTC)
    rng = random.Random(7)
    weights = [rng.choice((1, 1, 2, 3, 8)) for _ in range(count)]  # a few busy clients
    with write_tx(engine) as conn:
        if conn.execute(select(func.count()).select_from(hits)).scalar_one() >= total:
            print(f"reusing {total:,} hits")
            return
        source_ids: dict[int, list[int]] = {}
        for n in range(count):
            conn.execute(insert(clients).values(id=f"c{n:02d}", name=f"Client {n:02d}", updated_at=now))
            for s in range(3):
                key = f"c{n:02d}/s{s}"
                source_id = conn.execute(
                    insert(sources)
                    .values(
                        key=key,
                        client_id=f"c{n:02d}",
                        kind="rss",
                        target=f"https://example.org/{n}/{s}.xml",
                        every_seconds=600,
                        enabled=True,
                        in_config=True,
                        status="ok",
                        consecutive_errors=0,
                        hits_count=0,
                        last_success_at=now,
                    )
                    .returning(sources.c.id)
                ).scalar_one()
                source_ids.setdefault(n, []).append(source_id)
        for n in range(0, count, 7):
            conn.execute(
                insert(incidents).values(
                    key=f"c{n:02d}:buzz",
                    client_id=f"c{n:02d}",
                    cause="buzz",
                    subject="",
                    status="open",
                    urgency="high" if n % 2 else "low",
                    firing=True,
                    opened_at=now - timedelta(hours=2),
                    notify_at=now,
                    last_evidence_at=now,
                    title="bench",
                    reasons=["bench"],
                    hit_count=3,
                    top_hits=[],
                    notified_contacts=[],
                    held_for=[],
                    updated_at=now,
                )
            )
    started = time.perf_counter()
    batch: list[dict[str, object]] = []
    span = days * 86400
    for index in range(total):
        n = rng.choices(range(count), weights)[0]
        fetched = now - timedelta(seconds=rng.random() * span)
        label = rng.choices(("neg", "neu", "pos", None), (15, 55, 25, 5))[0]
        text = f"Client {n:02d} " + " ".join(rng.choices(WORDS, k=12)) + f" #{index}"
        batch.append(
            {
                "source_id": rng.choice(source_ids[n]),
                "client_id": f"c{n:02d}",
                "external_id": f"e{index}",
                "text_hash": uuid.uuid4().hex,
                "content_hash": uuid.uuid4().hex,
                "content_changes": 0,
                "kind": "rss",
                "url": f"https://example.org/p/{index}",
                "title": text[:60],
                "text": text,
                "author": (author := f"auteur{rng.randrange(400)}"),
                "direct": False,
                "matched_terms": f"client {n:02d}",
                "published_at": fetched,
                "fetched_at": fetched,
                "sentiment_label": label,
                "sentiment_score": {"neg": -0.7, "neu": 0.0, "pos": 0.6, None: None}[label],
                "search_text": search_text(text[:60], text, author),  # as store_batch writes it
            }
        )
        if len(batch) == 20_000 or index == total - 1:
            with write_tx(engine) as conn:
                conn.execute(insert(hits), batch)
            batch.clear()
            print(f"\r{index + 1:,} hits stored ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()
    if engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    engine.dispose()


def timed(client: httpx.Client, path: str, requests: int) -> tuple[float, float, float]:
    started = time.perf_counter()
    client.get(path)  # the first load: the overview reads its 35 days of past hours (then once an hour)
    first = (time.perf_counter() - started) * 1000
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    samples.sort()
    return first, statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def login(client: httpx.Client) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"csrf": token, "name": "bench", "password": PASSWORD, "next": "/"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def polls_so_far(health: Path, after: float) -> tuple[float, int]:
    """(time, polls since the daemon started) from its next heartbeat written after `after` (every 10 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            report = json.loads(health.read_text(encoding="utf-8"))
            written = health.stat().st_mtime
        except (OSError, ValueError):
            report, written = None, 0.0
        if report and written > after:
            polls = report.get("extra", {}).get("polls", {})
            return written, sum(n for outcomes in polls.values() for n in outcomes.values())
        time.sleep(0.2)
    raise SystemExit("the daemon wrote no heartbeat for 60 s")


def load_pages(base: str, stop: threading.Event, served: list[float]) -> None:
    """Load the heaviest pages one after the other until `stop`, as a person clicking fast would not."""
    with httpx.Client(base_url=base, timeout=60) as client:
        login(client)
        paths = ["/", "/clients/c04", "/clients/c04?period=30d&q=remboursement", "/clients/c11?sentiment=neg"]
        while not stop.is_set():
            for path in paths:
                started = time.perf_counter()
                response = client.get(path)
                served.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)


def daemon_under_page_loads(db_url: str, args: argparse.Namespace, workdir: Path) -> None:
    """polls/s of a real `veille run` (dashboard inside) without, then with, concurrent page loads."""
    port = free_port()
    health = workdir / "health.json"
    with feedhost.running(1, args.clients * 3, 20) as feed_port:
        head = f'[daemon]\nhealth_file = "{health}"\nstartup_spread = "20s"\n[web]\nenabled = true\nport = {port}\n'
        config = workdir / "daemon.toml"
        config.write_text(config_text(db_url, args.clients, feeds=f"http://127.0.0.2:{feed_port}", head=head))
        config.write_text(config.read_text() + "\n[http]\nallow_private_addresses = true\n")
        log = (workdir / "daemon.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "VEILLE_WEB_SECRET": "b" * 40}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "veille", "run", "--config", str(config)], env=env, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            warm = time.time()
            time.sleep(45)  # every source polled once at least (first polls store their items)
            print(f"daemon: {args.clients * 3} feeds every 30 s, dashboard inside it on {base}")
            results = {}
            for loaded in (False, True):
                stop, served = threading.Event(), []  # type: ignore[var-annotated]
                start, before = polls_so_far(health, warm)
                workers = [
                    threading.Thread(target=load_pages, args=(base, stop, served)) for _ in range(2 if loaded else 0)
                ]
                for worker in workers:
                    worker.start()
                time.sleep(args.poll_seconds)
                end, after = polls_so_far(health, time.time())
                stop.set()
                for worker in workers:
                    worker.join()
                warm = end
                results[loaded] = (after - before) / (end - start), served
            quiet, (busy, served) = results[False][0], results[True]
            served.sort()
            print(f"{'daemon polls/s, no page load':45} {quiet:8.2f}")
            print(
                f"{'daemon polls/s, pages loaded without pause':45} {busy:8.2f}  ({len(served)} pages, "
                f"p50 {statistics.median(served):.0f} ms, p95 {served[int(len(served) * 0.95) - 1]:.0f} ms)"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            log.close()


def run(db_url: str, args: argparse.Namespace) -> None:
    fill(db_url, args.hits, args.clients, args.days)
    config = parse_config(config_text(db_url, args.clients), environ={})
    engine = make_engine(db_url)
    with write_tx(engine) as conn:
        set_password(conn, "bench", hash_password(PASSWORD), ["*"], datetime.now(UTC), keep_clients=False)
    app = create_app(config, engine, clock=SystemClock(), secret_key="b" * 40)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        login(client)
        busiest = "c04"
        pages = {
            "overview (50 clients)": "/",
            f"client {busiest}, 7 days": f"/clients/{busiest}",
            f"client {busiest}, 30 days + search": f"/clients/{busiest}?period=30d&q=remboursement",
            f"client {busiest}, 7 days, negative, page 3": f"/clients/{busiest}?sentiment=neg&page=3",
            "sources (150)": "/sources",
        }
        print(f"{'page':45} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8}")
        for name, path in pages.items():
            first, p50, p95 = timed(client, path, args.requests)
            print(f"{name:45} {first:9.1f} {p50:8.1f} {p95:8.1f}")
    server.should_exit = True
    thread.join(10)
    engine.dispose()
    if args.poll_seconds:
        with tempfile.TemporaryDirectory() as workdir:
            daemon_under_page_loads(db_url, args, Path(workdir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--poll-seconds", type=int, default=60, help="each daemon measure (0: no daemon measure)")
    parser.add_argument("--db-url", default=None, help="PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--keep", default=None, help="SQLite file, or PostgreSQL schema name, to keep and reuse")
    args = parser.parse_args()
    if args.db_url and args.db_url.startswith("postgresql"):
        schema = args.keep or f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.db_url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        try:
            print(f"PostgreSQL, schema {schema}")
            run(f"{args.db_url}?options=-csearch_path%3D{schema}", args)
        finally:
            if not args.keep:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
        return
    if args.keep:
        print(f"SQLite {args.keep}")
        run(f"sqlite:///{Path(args.keep).resolve()}", args)
        return
    with tempfile.TemporaryDirectory() as folder:
        print(f"SQLite in {folder}")
        run(f"sqlite:///{folder}/bench.db", args)


if __name__ == "__main__":
    main()
