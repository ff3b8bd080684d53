"""The parse worker process: `python -m veille.sources.rss.worker READ_FD WRITE_FD MEMORY_BYTES`.

Started by `FeedParsePool` as a fresh interpreter (not a fork of the daemon, and not through
multiprocessing, which would re-import the daemon's main module in every worker). It caps its own
address space, then answers one request at a time on its pipes. A request is one message: a 4-byte
length, a JSON header `[url, content_type, max_entries, selection]` and the raw body (`selection`,
when not null, is `[keywords, now, source_max_entries]`: only the entries matching those keywords
come back). A reply is JSON of plain lists (no pickle either way: the daemon never unpickles what
a process handling hostile input wrote). It keeps nothing between parses but compiled keywords, so
the pool can kill it at any moment (timeout, ReDoS) and start another.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from veille.core.workerproc import helper_pipes, incoming, limit_memory, run_helper

READY = b"ready"


def handle(message: bytes) -> tuple[Any, ...]:
    """One parse; every outcome is a plain tuple (see `veille.sources.rss.parsepool.decode_reply`)."""
    from veille.core.errors import FetchError
    from veille.sources.rss.entries import keep_matching, matcher_for, parse_document

    size = int.from_bytes(message[:4], "big")
    url, content_type, max_entries, selection = json.loads(message[4 : 4 + size])
    headers = {"content-type": content_type} if content_type else {}
    try:
        body = message[4 + size :]  # a copy: may itself exceed the memory cap
        feed = parse_document(body, url, headers, max_entries=max_entries)
        if selection is not None:
            keywords, now, source_max_entries = selection
            feed = keep_matching(feed, matcher_for(tuple(keywords)), now=now, max_entries=source_max_entries)
    except FetchError as exc:
        return ("fetch", exc.kind.value, exc.message)
    except MemoryError:
        return ("memory",)
    except RecursionError:
        return ("error", "RecursionError")
    except Exception as exc:  # a parser bug must cost one feed, not the worker
        return ("error", type(exc).__name__)
    return ("ok", feed.to_wire())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    requests, replies = helper_pipes(int(args[0]), int(args[1]))
    limit_memory(int(args[2]))
    import feedparser  # noqa: F401  (warm the imports before announcing readiness)

    import veille.sources.rss.entries  # noqa: F401

    replies.send_bytes(READY)
    try:
        for message in incoming(requests):
            reply = handle(message)
            try:
                replies.send_bytes(json.dumps(reply, separators=(",", ":")).encode())
            except MemoryError:
                reply = ("memory",)
                replies.send_bytes(b'["memory"]')
            if reply[0] == "memory":
                return 3  # the heap may be fragmented beyond use: let the pool start a fresh worker
    except MemoryError:  # a body too big for the cap even to be received
        replies.send_bytes(b'["memory"]')
        return 3
    return 0


if __name__ == "__main__":
    run_helper(main)
