"""The parse worker process: `python -m veille.feeds.worker READ_FD WRITE_FD MEMORY_BYTES`.

Started by `FeedParsePool` as a fresh interpreter (not a fork of the daemon, and not through
multiprocessing, which would re-import the daemon's main module in every worker). It caps its own
address space, then answers one request at a time on its pipes: one message made of a 4-byte length, a JSON header
`[url, content_type, max_entries]` and the raw body in; a JSON reply of plain lists out (no pickle either way:
the daemon never unpickles what a process handling hostile input wrote). It holds no state between parses, so
the pool can kill it at any moment (timeout, ReDoS) and start another.
"""

from __future__ import annotations

import json
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

READY = b"ready"


def limit_memory(max_bytes: int) -> None:
    """Cap the address space so a parse that balloons raises MemoryError here, not in the daemon."""
    if max_bytes <= 0:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            max_bytes = min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the wall-clock limit remains
        pass


def handle(message: bytes) -> tuple[Any, ...]:
    """One parse; every outcome is a plain tuple (see `veille.feeds.parsepool.decode_reply`)."""
    from veille.errors import FetchError
    from veille.feeds.entries import parse_document

    size = int.from_bytes(message[:4], "big")
    url, content_type, max_entries = json.loads(message[4 : 4 + size])
    body = message[4 + size :]
    headers = {"content-type": content_type} if content_type else {}
    try:
        feed = parse_document(body, url, headers, max_entries=max_entries)
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
    read_fd, write_fd, memory = int(args[0]), int(args[1]), int(args[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the daemon decides
    limit_memory(memory)
    import feedparser  # noqa: F401  (warm the imports before announcing readiness)

    import veille.feeds.entries  # noqa: F401

    requests = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    replies.send_bytes(READY)
    while True:
        try:
            message = requests.recv_bytes()
        except (EOFError, OSError):
            return 0
        if not message:  # the pool's polite "stop"
            return 0
        reply = handle(message)
        try:
            replies.send_bytes(json.dumps(reply, separators=(",", ":")).encode())
        except MemoryError:
            reply = ("memory",)
            replies.send_bytes(b'["memory"]')
        if reply[0] == "memory":
            return 3  # the heap may be fragmented beyond use: let the pool start a fresh worker


if __name__ == "__main__":
    sys.exit(main())
