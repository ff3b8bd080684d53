"""Feed parsing in a pool of killable worker processes (RELIABILITY E5, E6; throughput).

feedparser costs ~17 ms of CPU per feed and some documents make it run for seconds (the author
ReDoS of feedparser#562: 20 x 8 KB authors took 5.1 s) or allocate gigabytes. Parsing on the event
loop would stall every other poll; parsing in a thread cannot be stopped. So each parse runs in a
long-lived worker process (`veille.feeds.worker`, one per core by default) with an address-space
cap. The daemon waits for the answer in a small thread per worker (blocked in `poll`, so the GIL is
free); past the deadline the worker is killed and replaced, the parse fails with `parse_timeout`,
and the other workers and parses carry on. ProcessPoolExecutor is not used because it cannot kill
one hung task without breaking the whole pool.

A request is a small JSON header plus the body bytes as they are (nothing pickled); a reply is a
JSON list of plain strings and numbers, already reduced to text in the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

from veille.errors import PermanentFetchError
from veille.feeds.entries import DEFAULT_MAX_ENTRIES, ParsedFeed
from veille.models import ErrorKind

log = logging.getLogger("veille.feeds.parsepool")

DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024
START_TIMEOUT = 60.0  # a fresh interpreter importing feedparser; generous for a loaded machine


class _Worker:
    """One worker process and its two pipes. Used by one parse at a time (the pool's idle queue)."""

    def __init__(self, index: int, memory_limit: int) -> None:
        self.index = index
        self.memory_limit = memory_limit
        self.process: subprocess.Popen[bytes] | None = None
        self.requests: Connection | None = None
        self.replies: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "veille.feeds.worker", str(request_read), str(reply_write),
                 str(self.memory_limit)],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            for fd in (request_read, request_write, reply_read, reply_write):
                os.close(fd)
            raise
        os.close(request_read)
        os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)
        if not self.replies.poll(START_TIMEOUT) or self.replies.recv_bytes() != b"ready":
            self.kill()
            raise OSError("the feed parse worker did not start")

    def kill(self) -> None:
        """Stop the process at once and release its pipes (safe to call twice)."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
                log.error("parse worker %s did not exit after SIGKILL", self.process.pid)
        for conn in (self.requests, self.replies):
            if conn is not None:
                conn.close()
        self.process = self.requests = self.replies = None

    def stop(self, grace: float = 1.0) -> None:
        """Ask the worker to exit, then kill it if it does not within `grace` seconds."""
        if self.process is not None and self.requests is not None and self.process.poll() is None:
            try:
                self.requests.send_bytes(b"")
                self.process.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


class FeedParsePool:
    """Parse feeds in `workers` processes (0 = one per core), each parse bounded by `timeout` seconds.

    `parse` is what the daemon puts in `PollContext.parse_feed`. Workers start on first use and
    are replaced after a timeout, a crash or a MemoryError. `close()` stops them all.
    """

    def __init__(self, workers: int = 0, timeout: float = 5.0, max_entries: int = DEFAULT_MAX_ENTRIES, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.size = workers if workers > 0 else _cpu_count()
        self.timeout = timeout
        self.max_entries = max_entries
        self.memory_limit = memory_limit
        self._workers = [_Worker(i, memory_limit) for i in range(self.size)]
        self._idle: asyncio.Queue[_Worker] | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.parses = 0
        self.timeouts = 0
        self.restarts = 0  # workers replaced after a timeout, a crash or a MemoryError

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers (None before the first parse); for health output and tests."""
        return [w.pid for w in self._workers]

    async def parse(self, body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
        """Parse one fetched document; raises PermanentFetchError like `parse_document` does, plus
        `parse_timeout` (too slow, worker replaced), `too_large` (memory cap) and `parse_error`
        (the parser crashed)."""
        if self._closed:
            raise RuntimeError("the feed parse pool is closed")
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
            self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="veille-parse")
        content_type = _content_type(headers)
        header = json.dumps([url, content_type, self.max_entries]).encode()
        worker = await self._idle.get()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._threads, self._round_trip, worker, header, bytes(body), url)
        except BaseException:
            self._idle.put_nowait(worker)
            raise
        # The worker goes back to the queue only when its round trip is over, even if the caller
        # is cancelled meanwhile (shield): it must never serve two parses at once.
        future.add_done_callback(lambda done: self._release(worker, done))
        reply = await asyncio.shield(future)
        return decode_reply(reply, timeout=self.timeout, memory_limit=self.memory_limit)

    def _release(self, worker: _Worker, done: asyncio.Future[Any] | Future[Any]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved here so that a cancelled caller leaves no warning behind
        if self._idle is not None and not self._closed:
            self._idle.put_nowait(worker)

    def _round_trip(self, worker: _Worker, header: bytes, body: bytes, url: str) -> tuple[Any, ...]:
        """Runs in a pool thread: send, wait at most `timeout`, receive; replace the worker if needed."""
        if self._closed:
            return ("closed",)
        if not worker.alive():
            if worker.process is not None:  # it died between two parses
                worker.kill()
                self._count_restart()
            worker.start()
        assert worker.requests is not None and worker.replies is not None
        self.parses += 1
        try:
            worker.requests.send_bytes(header)
            worker.requests.send_bytes(body)
            if not worker.replies.poll(self.timeout):
                log.warning("feed parse timed out after %.1f s; worker %s killed and replaced (host %s)",
                            self.timeout, worker.pid, _host(url))
                worker.kill()
                self.timeouts += 1
                self._count_restart()
                return ("timeout",)
            reply = json.loads(worker.replies.recv_bytes())
        except (EOFError, OSError, ValueError) as exc:
            log.warning("feed parse worker %s died (%s); replaced (host %s)", worker.pid,
                        type(exc).__name__, _host(url))
            worker.kill()
            self._count_restart()
            return ("died",)
        if reply and reply[0] == "memory":
            worker.kill()
            self._count_restart()
        return tuple(reply)

    def _count_restart(self) -> None:
        with self._lock:
            self.restarts += 1

    def close(self) -> None:
        """Stop every worker (politely, then SIGKILL). Parses still running fail with parse_error."""
        self._closed = True
        for worker in self._workers:
            worker.stop()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def decode_reply(reply: tuple[Any, ...], *, timeout: float, memory_limit: int) -> ParsedFeed:
    """Turn a worker's reply into a ParsedFeed or the matching PermanentFetchError."""
    status = reply[0] if reply else "died"
    if status == "ok":
        return ParsedFeed.from_wire(reply[1])
    if status == "fetch":
        try:
            kind = ErrorKind(reply[1])
        except ValueError:
            kind = ErrorKind.PARSE_ERROR
        raise PermanentFetchError(kind, str(reply[2]))
    if status == "timeout":
        raise PermanentFetchError(ErrorKind.PARSE_TIMEOUT,
                                  f"parsing took longer than {timeout:g} s; the parser was stopped")
    if status == "memory":
        raise PermanentFetchError(ErrorKind.TOO_LARGE,
                                  f"parsing needed more than {memory_limit // (1024 * 1024)} MB of memory")
    if status == "error":
        raise PermanentFetchError(ErrorKind.PARSE_ERROR, f"the feed parser failed ({reply[1]})")
    if status == "closed":
        raise PermanentFetchError(ErrorKind.PARSE_ERROR, "the daemon is stopping")
    raise PermanentFetchError(ErrorKind.PARSE_ERROR, "the feed parser process died")


def _content_type(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    value = headers.get("content-type")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    return value


def _host(url: str) -> str:
    """Only the host goes to logs: a private feed URL may carry a token in its path or query."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
