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
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from veille.store.users import set_password
from veille.web.app import create_app
from veille.web.auth import hash_password

PASSWORD = "bench-password-123"
WORDS = ["service", "accueil", "prix", "pizza", "livraison", "retard", "qualité", "personnel", "commande"]
WORDS += ["remboursement", "attente", "table"]


def config_text(db_url: str, count: int) -> str:
    parts = [f'timezone = "Europe/Paris"\n[database]\nurl = "{db_url}"\n[alerting]\nenabled = true\n']
    for n in range(count):
        parts.append(f'[[clients]]\nid = "c{n:02d}"\nname = "Client {n:02d}"\nkeywords = ["client {n:02d}"]\n')
        for s in range(3):
            parts.append(f'[[clients.sources]]\nkind = "rss"\nid = "s{s}"\nurl = "https://example.org/{n}/{s}.xml"\n')
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
                "author": f"auteur{rng.randrange(400)}",
                "direct": False,
                "matched_terms": f"client {n:02d}",
                "published_at": fetched,
                "fetched_at": fetched,
                "sentiment_label": label,
                "sentiment_score": {"neg": -0.7, "neu": 0.0, "pos": 0.6, None: None}[label],
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
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"csrf": token, "name": "bench", "password": PASSWORD, "next": "/"})
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--requests", type=int, default=60)
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
