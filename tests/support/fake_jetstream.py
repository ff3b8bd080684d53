"""A local Jetstream: a websocket server on 127.0.0.1 replaying events like the real `/subscribe`.

It honours `cursor` (replays events with `time_us` >= cursor) and `wantedCollections`, records
each connection's query, and has switches: `close_after` ends a connection after N events (to test
reconnects), `compress_with` sends zstd frames made with a dictionary (Jetstream's `compress=true`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve

BASE_US = 1_763_640_000_000_000  # 2025-11-20T12:00:00Z in microseconds


def post_event(
    seq: int,
    text: str,
    *,
    did: str = "did:plc:alice",
    langs: tuple[str, ...] = ("fr",),
    time_us: int | None = None,
    operation: str = "create",
) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us if time_us is not None else BASE_US + seq * 1000,
        "kind": "commit",
        "commit": {
            "rev": f"rev{seq}",
            "operation": operation,
            "collection": "app.bsky.feed.post",
            "rkey": f"rk{seq:06}",
            "cid": f"bafy{seq}",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "langs": list(langs),
                "createdAt": "2025-11-20T12:00:00.000Z",
            },
        },
    }


def other_event(seq: int, kind: str = "identity") -> dict[str, Any]:
    if kind == "like":
        return {
            "did": "did:plc:bob",
            "time_us": BASE_US + seq * 1000,
            "kind": "commit",
            "commit": {
                "operation": "create",
                "collection": "app.bsky.feed.like",
                "rkey": f"l{seq}",
                "record": {"$type": "app.bsky.feed.like", "subject": {"uri": "at://x"}},
            },
        }
    return {
        "did": "did:plc:bob",
        "time_us": BASE_US + seq * 1000,
        "kind": kind,
        kind: {"did": "did:plc:bob", "seq": seq, "time": "2025-11-20T12:00:00Z"},
    }


@dataclass
class FakeJetstream:
    events: list[dict[str, Any]] = field(default_factory=list)
    close_after: int | None = None  # close each connection after this many events
    compress_with: Any = None  # a zstandard.ZstdCompressor (with Jetstream's dictionary)
    rate: float | None = None  # events per second; None = as fast as possible
    hold_open: bool = True  # after the last event, keep the connection open (like the live stream)
    live: bool = False  # after the last event, send the events appended later (the live firehose)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    sent: int = 0
    port: int = 0
    open_now: int = 0  # connections open at this moment
    most_open: int = 0  # the most connections ever open at once

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    async def _handler(self, ws: ServerConnection) -> None:
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self._serve(ws)
        finally:
            self.open_now -= 1

    def _stream(self) -> Iterator[dict[str, Any] | None]:
        """The events, then (live) each event appended later; None while there is nothing new."""
        index = 0
        while index < len(self.events) or self.live:
            if index < len(self.events):
                index += 1
                yield self.events[index - 1]
            else:
                yield None

    async def _serve(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        self.queries.append(query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        wanted = set(query.get("wantedCollections", []))
        count = 0
        for event in self._stream():
            if event is None:
                if ws.close_code is not None:
                    return
                await asyncio.sleep(0.05)
                continue
            if cursor is not None and event["time_us"] < cursor:
                continue
            collection = event.get("commit", {}).get("collection")
            if wanted and event.get("kind") == "commit" and collection not in wanted:
                continue
            if self.close_after is not None and count >= self.close_after:
                await ws.close()
                return
            data = json.dumps(event)
            await ws.send(self.compress_with.compress(data.encode()) if self.compress_with else data)
            count += 1
            self.sent += 1
            if self.rate:
                await asyncio.sleep(1 / self.rate)
        if self.hold_open:
            await ws.wait_closed()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeJetstream]:
        async with serve(self._handler, "127.0.0.1", 0, compression=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            yield self
