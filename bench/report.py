"""Monthly report cost: one client with N hits in the month (half of them with engagement), on SQLite.

Stores the hits through the real `store_items`, then measures the CPU seconds (process_time) of
reading the month (`monthly_report`), of rendering each format (HTML with its inline SVG charts), of
making the message `[reports] send` puts in the outbox (its payload carries the whole file), and the
peak RSS. Prints figures; asserts nothing. Usage: .venv/bin/python bench/report.py [--hits 20000] [--text 400]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from veille.core.matching import MatchResult
from veille.core.models import Engagement, Item, SentimentLabel, SentimentResult
from veille.notify.render import to_payload
from veille.reports import monthly_report, render
from veille.reports.period import Month
from veille.runtime.jobs import report_notification
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.hits import MatchedItem, SourceRef, store_items
from veille.store.migrate import upgrade
from veille.store.schema import clients, sources

LABELS = (SentimentLabel.NEG, SentimentLabel.NEU, SentimentLabel.POS)


def seed(url: str, count: int, text_size: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Chez Gégé", updated_at=start))
        refs = []
        for kind in ("rss", "mastodon", "bluesky", "reddit"):
            sid = conn.execute(
                sources.insert()
                .values(
                    key=f"resto/{kind}",
                    client_id="resto",
                    kind=kind,
                    target=kind,
                    every_seconds=600,
                    enabled=True,
                    in_config=True,
                    status="ok",
                    consecutive_errors=0,
                    hits_count=0,
                )
                .returning(sources.c.id)
            ).scalar_one()
            refs.append(SourceRef(sid, f"resto/{kind}", "resto", kind))
    filler = ("avis client chez gégé " * (text_size // 22 + 1))[:text_size]
    for batch in range(0, count, 500):
        at = start + timedelta(minutes=batch * 2)
        items = []
        for n in range(batch, min(batch + 500, count)):
            items.append(
                MatchedItem(
                    Item(
                        f"h{n}",
                        f"{n} {filler}",
                        author=f"user{n % 300}",
                        url=f"https://example.org/{n}",
                        engagement=Engagement(likes=n % 97, reposts=n % 13) if n % 2 else None,
                    ),
                    MatchResult(True, False, ("chez gege",) if n % 3 else ("chez gege", "pizza")),
                    SentimentResult(LABELS[n % 3], (n % 200) / 100 - 1, "fr"),
                )
            )
        with write_tx(engine) as conn:
            store_items(conn, refs[batch // 500 % 4], items, at)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--text", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        seed(url, args.hits, args.text)
        engine = make_engine(url)
        cpu, wall = time.process_time(), time.perf_counter()
        with read_conn(engine) as conn:
            report = monthly_report(
                conn,
                client_id="resto",
                client_name="Chez Gégé",
                month=Month(2026, 11),
                timezone="Europe/Paris",
                now=datetime(2026, 12, 1, 8, tzinfo=UTC),
                failing_after=timedelta(hours=6),
            )
        print(
            f"read + figures: {report.total} hits, {time.process_time() - cpu:.2f} s CPU "
            f"({time.perf_counter() - wall:.2f} s wall)"
        )
        for output_format in ("md", "html", "csv", "json"):
            cpu = time.process_time()
            text = render([report], output_format, "fr")
            print(f"render {output_format}: {time.process_time() - cpu:.3f} s CPU, {len(text) / 1e6:.2f} MB")
        cpu = time.process_time()
        notification = report_notification(report, "camille", "fr", "html", datetime(2026, 12, 1, 7, tzinfo=UTC))
        payload = json.dumps(to_payload(notification))
        print(
            f"[reports] send message: {time.process_time() - cpu:.3f} s CPU, outbox payload {len(payload) / 1e6:.2f} MB"
            f" ({notification.attachment.content.count('<svg') if notification.attachment else 0} charts)"
        )
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        engine.dispose()


if __name__ == "__main__":
    main()
