"""Jetstream benchmark: how many posts/s the consumer matches (50 clients) and stores, on one core.

    .venv/bin/python bench/jetstream.py [--rates 1000 2000 4000 8000 0] [--seconds 8] [--clients 50]

A local websocket server (its own process, pinned to another core) replays Jetstream post events at
each offered rate (0 = as fast as it can send). The events are the recorded real ones under
../shared/fixtures/api/bluesky/jetstream/ (re-stamped with fresh time_us and rkeys), or synthetic
posts when that folder is absent; 2 % of them are made to mention one of the clients. The consumer
(`veille.sources.jetstream.JetstreamConsumer`, this process, pinned to one core) matches every post
against 50 clients' keywords and stores the matches in a temporary SQLite database through
`veille.store.hits.store_batch`, one write transaction per batch.

Prints, per offered rate: posts handled, wall time, posts/s, CPU seconds, posts per CPU-second (the
one-core capacity, independent of other load on the machine), hits stored, and whether the consumer
kept up (its rate within 5 % of the offered one). Target: >= 4,500 posts/s sustained
(100 x the network's ~45 posts/s peak average).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from veille.core.clock import SystemClock  # noqa: E402
from veille.core.matching import Matcher, MatchResult  # noqa: E402
from veille.core.models import Item  # noqa: E402
from veille.sources.jetstream import JetstreamConsumer  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "api" / "bluesky" / "jetstream"
BASE_US = 1_780_000_000_000_000
TRADES = [
    "pizzeria",
    "boulangerie",
    "garage",
    "salon",
    "fleuriste",
    "brasserie",
    "librairie",
    "bistrot",
    "cave",
    "opticien",
    "pharmacie",
    "boucherie",
    "fromagerie",
    "atelier",
    "studio",
    "cabinet",
    "épicerie",
    "crêperie",
]
NAMES = [
    "martin",
    "dupont",
    "lemoine",
    "gégé",
    "lucie",
    "océane",
    "rené",
    "zoé",
    "hélène",
    "yannick",
    "maëlle",
    "bastien",
    "chloé",
    "théo",
    "margaux",
    "jules",
    "inès",
    "noé",
    "léon",
    "camille",
    "aurore",
    "félix",
]


def client_keywords(count: int, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    clients: dict[str, list[str]] = {}
    for index in range(count):
        trade, name = rng.choice(TRADES), rng.choice(NAMES)
        tag = f"{trade}{name}".replace("é", "e").replace("è", "e").replace("ë", "e").replace("ô", "o")
        clients[f"c{index:02}"] = [
            f"{trade} {name}",
            f"#{tag}{index}",
            f"@{tag}{index}.bsky.social",
            f'"{name} {index}" {trade} -recrutement',
            f"{tag}{index} OR {name}-{trade}-{index}",
        ]
    return clients


def source_texts() -> list[tuple[str, list[str]]]:
    """(text, langs) of the recorded posts, else synthetic French/English posts."""
    found: list[tuple[str, list[str]]] = []
    for name in ("expected_v1.jsonl", "golden_v1.jsonl"):
        path = RECORDED / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            record = event.get("commit", {}).get("record") or {}
            if event.get("commit", {}).get("collection") == "app.bsky.feed.post" and "text" in record:
                found.append((record["text"], record.get("langs") or []))
    if found:
        return found
    words = [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "et",
        "à",
        "pour",
        "avec",
        "sur",
        "dans",
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "it",
        "you",
        "that",
        "this",
        "post",
        "today",
    ]
    rng = random.Random(3)
    return [(" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))), ["fr"]) for _ in range(200)]


def make_messages(total: int, clients: dict[str, list[str]]) -> list[str]:
    texts = source_texts()
    rng = random.Random(11)
    keywords = [k for entries in clients.values() for k in entries[:3]]
    messages = []
    for seq in range(total):
        text, langs = texts[seq % len(texts)]
        if rng.random() < 0.02:
            text = f"{text} {rng.choice(keywords)}"
        event = {
            "did": f"did:plc:bench{seq % 997:04}",
            "time_us": BASE_US + seq * 100,
            "kind": "commit",
            "commit": {
                "rev": f"r{seq}",
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": f"b{seq:09}",
                "cid": f"bafy{seq}",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": text,
                    "langs": langs,
                    "createdAt": "2026-11-20T12:00:00.000Z",
                },
            },
        }
        messages.append(json.dumps(event, ensure_ascii=False))
    return messages


# --- server process --------------------------------------------------------------------------


def frame(message: str) -> bytes:
    """One unmasked websocket text frame (RFC 6455 section 5.2), as a server sends it."""
    payload = message.encode()
    size = len(payload)
    if size < 126:
        head = bytes([0x81, size])
    elif size < 65536:
        head = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return head + payload


def serve(port_queue: Any, total: int, clients: dict[str, list[str]], core: int | None) -> None:
    """A minimal websocket server writing pre-encoded frames, so that the server is never the bottleneck.

    (A `websockets` server in Python tops out near 5,000 messages/s on one core, below what the
    consumer handles; this one writes frames straight to the socket in 10 ms slices.)
    """
    if core is not None:
        os.sched_setaffinity(0, {core})
    frames = [frame(m) for m in make_messages(total, clients)]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        query = parse_qs(urlsplit(path).query)
        rate = float(query.get("rate", ["0"])[0])
        start = int(query.get("start", ["0"])[0])
        count = int(query.get("count", [str(total)])[0])
        chunk = frames[start : start + count]
        began = time.perf_counter()
        per_tick = max(1, int(rate * 0.01)) if rate else 1000
        for offset in range(0, len(chunk), per_tick):
            writer.write(b"".join(chunk[offset : offset + per_tick]))
            await writer.drain()
            if rate:
                delay = began + (offset + per_tick) / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.read(2)  # the client's close frame
            writer.write(b"\x88\x00")
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- consumer (this process) -----------------------------------------------------------------


class SqliteSink:
    """Stores matched items per client through the real store code, one transaction per batch."""

    def __init__(self, directory: str, clients: dict[str, list[str]]) -> None:
        from veille.store.engine import make_engine, write_tx
        from veille.store.schema import clients as clients_table
        from veille.store.schema import metadata, sources

        self.engine = make_engine(f"sqlite:///{directory}/bench.db")
        metadata.create_all(self.engine)
        self._write_tx = write_tx
        now = datetime.now(UTC)
        self.refs: dict[str, Any] = {}
        from veille.store.hits import SourceRef

        with write_tx(self.engine) as conn:
            for client_id in clients:
                conn.execute(clients_table.insert().values(id=client_id, name=client_id, updated_at=now))
                result = conn.execute(
                    sources.insert().values(
                        key=f"{client_id}/jetstream",
                        client_id=client_id,
                        kind="bluesky-jetstream",
                        target="jetstream",
                        every_seconds=60,
                        enabled=True,
                        in_config=True,
                        status="ok",
                        consecutive_errors=0,
                        hits_count=0,
                    )
                )
                self.refs[client_id] = SourceRef(
                    result.inserted_primary_key[0], f"{client_id}/jetstream", client_id, "bluesky-jetstream"
                )
        self.stored = 0
        self.batches = 0
        self.cursor: int | None = None

    async def on_batch(self, items: dict[str, list[Item]], cursor: int) -> None:
        from veille.store.hits import MatchedItem, store_batch

        now = datetime.now(UTC)
        parts = [
            (
                self.refs[client_id],
                [
                    MatchedItem(i, MatchResult(True, i.direct, tuple((i.extra.get("terms") or "").split(", "))))
                    for i in found
                ],
            )
            for client_id, found in items.items()
        ]
        with self._write_tx(self.engine) as conn:
            self.stored += sum(len(new) for new in store_batch(conn, parts, now))
        self.batches += 1
        self.cursor = cursor

    async def load(self) -> int | None:
        return None


async def run_rate(
    url: str, rate: float, start: int, count: int, matchers: dict[str, Matcher], sink: SqliteSink
) -> dict[str, float]:
    consumer = JetstreamConsumer(
        f"{url}?rate={rate:g}&start={start}&count={count}",
        matchers,
        clock=SystemClock(),
        log=logging.getLogger("bench"),
        batch_size=200,
        batch_seconds=0.5,
    )
    stop = asyncio.Event()
    stored_before = sink.stored
    task = asyncio.create_task(consumer.run(stop, sink.load, sink.on_batch))
    while consumer.posts_seen == 0 and not task.done():  # noqa: ASYNC110 - a bench polling a counter
        await asyncio.sleep(0.001)
    cpu0, wall0, seen0 = time.process_time(), time.perf_counter(), consumer.posts_seen  # connected, first post in
    while consumer.posts_seen < count and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0  # every post handled (matched)
    stop.set()
    await task  # the last batch is stored before run() returns
    return {
        "rate": rate,
        "posts": consumer.posts_seen,
        "wall": wall,
        "posts_s": (consumer.posts_seen - seen0) / wall,
        "cpu": cpu,
        "stored": sink.stored - stored_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 2000, 4000, 6000, 8000, 0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each offered-rate run")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cores = sorted(os.sched_getaffinity(0))
    consumer_core, server_core = cores[0], (cores[1] if len(cores) > 1 else None)
    os.sched_setaffinity(0, {consumer_core})
    clients = client_keywords(args.clients)
    matchers = {cid: Matcher(entries) for cid, entries in clients.items()}
    counts = [int((r or 10_000) * args.seconds) for r in args.rates]
    total = sum(counts)
    queue: Any = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(queue, total, clients, server_core), daemon=True
    )
    server.start()
    port = queue.get(timeout=120)
    url = f"ws://127.0.0.1:{port}/subscribe"
    print(
        f"consumer on core {consumer_core}, server on core {server_core}; {args.clients} clients, "
        f"{sum(len(v) for v in clients.values())} keyword entries; "
        f"texts: {'recorded Jetstream posts' if RECORDED.exists() else 'synthetic'}"
    )
    print(
        f"{'offered/s':>10} {'posts':>7} {'wall s':>7} {'posts/s':>9} {'cpu s':>6} {'posts/cpu-s':>11} "
        f"{'stored':>7}  kept up"
    )
    with tempfile.TemporaryDirectory() as directory:
        sink = SqliteSink(directory, clients)
        start = 0
        for rate, count in zip(args.rates, counts, strict=True):
            result = asyncio.run(run_rate(url, rate, start, count, matchers, sink))
            start += count
            kept = "max" if not rate else ("yes" if result["posts_s"] >= 0.95 * rate else "NO")
            print(
                f"{rate or 'max':>10} {result['posts']:>7.0f} {result['wall']:>7.2f} {result['posts_s']:>9.0f} "
                f"{result['cpu']:>6.2f} {result['posts'] / max(result['cpu'], 1e-9):>11.0f} "
                f"{result['stored']:>7.0f}  {kept}"
            )
    print(
        "posts/cpu-s is the one-core capacity (CPU seconds of this process, matching + storing); wall-clock "
        "rates also depend on other load on the machine (see `uptime`)."
    )
    server.terminate()


if __name__ == "__main__":
    main()
