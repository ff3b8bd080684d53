"""Retention purge (G10): CPU and the longest single batch (how long the write lock is held).

Stores `--hits` old hits (each with one engagement row, a tenth of them linked as duplicates),
then purges them with `veille.store.retention.purge_hits`, 1,000 per transaction.
Measured (2 shared cores, 20,000 hits): SQLite 0.35 s CPU, longest batch ~50 ms; PostgreSQL ~2 s
wall, longest batch ~200 ms. Before hits.duplicate_of was indexed (migration 0004), SQLite took
23 s CPU and held the lock 2.7 s per batch. Prints figures; asserts nothing.
Usage: .venv/bin/python bench/retention.py [--hits 20000] [--db-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from tests.support.daemon import make_config
from veille.store.engine import make_engine, write_tx
from veille.store.retention import purge_hits
from veille.store.schema import engagement, hits
from veille.store.sources import sync_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--db-url", default=None, help="an empty database (default: a temporary SQLite file)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.db_url or f"sqlite:///{tmp / 'bench.db'}"
    config = make_config(tmp, url, {"resto": ["https://example.org/feed"]})
    engine = make_engine(url)
    now = datetime.now(UTC)
    old = now - timedelta(days=500)
    with write_tx(engine) as conn:
        source_id = next(iter(sync_config(conn, config.clients, config.sources, now).values())).id
        conn.execute(
            hits.insert(),
            [
                {
                    "source_id": source_id,
                    "client_id": "resto",
                    "external_id": f"e{n}",
                    "text_hash": f"t{n}",
                    "content_hash": f"c{n}",
                    "kind": "rss",
                    "text": f"chez gégé {n}",
                    "title": "",
                    "published_at": old,
                    "fetched_at": old,
                }
                for n in range(args.hits)
            ],
        )
        ids = list(conn.execute(select(hits.c.id).order_by(hits.c.id)).scalars())
        conn.execute(engagement.insert(), [{"hit_id": i, "observed_at": old, "likes": 1} for i in ids])
        for original, copy in zip(ids[::10], ids[1::10], strict=False):
            conn.execute(hits.update().where(hits.c.id == copy).values(duplicate_of=original))
    longest = 0.0
    last = time.perf_counter()

    def batch_done(_number: int, _deleted: int) -> None:
        nonlocal longest, last
        moment = time.perf_counter()
        longest, last = max(longest, moment - last), moment

    cpu, wall = time.process_time(), time.perf_counter()
    last = wall
    report = purge_hits(engine, now - timedelta(days=400), on_batch=batch_done)
    print(
        f"{engine.dialect.name}: {report.hits} hits in {report.batches} transactions; "
        f"CPU {time.process_time() - cpu:.2f} s, wall {time.perf_counter() - wall:.2f} s, "
        f"longest batch {longest * 1000:.0f} ms"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
