"""Feed parsing in a pool of killable worker processes (RELIABILITY E5, E6; throughput).

feedparser costs ~17 ms of CPU per feed and some documents make it run for seconds (the author
ReDoS of feedparser#562: 20 x 8 KB authors took 5.1 s) or allocate gigabytes. Parsing on the event
loop would stall every other poll; parsing in a thread cannot be stopped. So each parse runs in a
long-lived worker process (`veille.sources.rss.worker`, one per core by default) with an address-space
cap. The event loop itself waits for the reply (`add_reader` on the worker's pipe: no thread, so no
GIL hand-offs with the loop); past the deadline the worker is killed and replaced, the parse fails
with `parse_timeout`, and the other workers and parses carry on. ProcessPoolExecutor is not used
because it cannot kill one hung task without breaking the whole pool.

A request is a small JSON header plus the body bytes as they are (nothing pickled); a reply is a
JSON list of plain strings and numbers, already reduced to text in the worker. Pipes are enlarged
to 1 MiB where the kernel allows it, so sending a usual body never blocks the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from veille.core.errors import PermanentFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind
from veille.core.workerproc import Helper
from veille.sources.rss.entries import DEFAULT_MAX_ENTRIES, ParsedFeed

log = logging.getLogger("veille.sources.rss.parsepool")

DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024
START_TIMEOUT = 60.0  # a fresh interpreter importing feedparser; generous for a loaded machine


class WorkerGone(Exception):
    """The worker exited or closed its pipe (crash, SIGKILL, MemoryError exit)."""


class _Worker(Helper):
    """One parse worker. Used by one parse at a time (the pool's idle queue)."""

    def __init__(self, index: int, memory_limit: int) -> None:
        super().__init__("veille.sources.rss.worker", str(memory_limit))
        self.index = index

    async def start(self) -> None:
        """Spawn the process (on the loop: fork+exec is a few ms), then wait on the loop for its "ready"."""
        self.spawn()
        try:
            ready = await self.receive(START_TIMEOUT)
        except (TimeoutError, WorkerGone):
            ready = b""
        if ready != b"ready":
            self.kill()
            raise WorkerGone("the feed parse worker did not start")

    def send(self, message: bytes) -> None:
        """Write one request; the idle worker is blocked reading, so this returns promptly."""
        assert self.requests is not None
        try:
            self.requests.send_bytes(message)
        except OSError as exc:  # BrokenPipeError: it died since the last parse
            raise WorkerGone(str(exc)) from None

    async def receive(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the parse deadline itself
        """Wait (on the event loop, no thread) for one reply; TimeoutError after `timeout` seconds."""
        assert self.replies is not None
        loop = asyncio.get_running_loop()
        fd = self.replies.fileno()
        readable = loop.create_future()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            async with asyncio.timeout(timeout):
                await readable
        finally:
            loop.remove_reader(fd)
        try:
            return self.replies.recv_bytes()  # the worker writes a reply in one go
        except (EOFError, OSError) as exc:
            raise WorkerGone(type(exc).__name__) from None


class FeedParsePool:
    """Parse feeds in `workers` processes (0 = one per core), each parse bounded by `timeout` seconds.

    `parse` is what the daemon puts in `PollContext.parse_feed`. Workers start on first use and
    are replaced after a timeout, a crash or a MemoryError. `close()` stops them all. One pool
    serves one event loop.
    """

    def __init__(
        self,
        workers: int = 0,
        timeout: float = 5.0,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.size = workers if workers > 0 else _cpu_count()
        self.timeout = timeout
        self.max_entries = max_entries
        self.memory_limit = memory_limit
        self._workers = [_Worker(i, memory_limit) for i in range(self.size)]
        self._idle: asyncio.Queue[_Worker] | None = None
        self._closed = False
        self.parses = 0
        self.timeouts = 0
        self.restarts = 0  # workers replaced after a timeout, a crash or a MemoryError

    def stats(self) -> dict[str, int]:
        """For the health file: how much parsing, and how often a worker had to be replaced."""
        return {"workers": self.size, "parses": self.parses, "timeouts": self.timeouts, "restarts": self.restarts}

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the workers (None before the first parse); for health output and tests."""
        return [w.pid for w in self._workers]

    async def start(self) -> None:
        """Start every worker now (the daemon does, at start-up) rather than on the first polls.

        Each takes ~0.3 s of CPU to import feedparser; paid during the first poll round, that delayed
        it. A worker joins the idle queue once it said "ready", so a parse arriving meanwhile waits for
        one; a worker that cannot start here is started again on first use."""
        if self._idle is not None or self._closed:
            return  # already serving: workers start on demand
        idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._idle = idle

        async def bring_up(worker: _Worker) -> None:
            try:
                await worker.start()
            except (WorkerGone, OSError) as exc:
                log.warning("feed parse worker could not start (%s); it will be retried on first use", exc)
                worker.kill()
            finally:
                idle.put_nowait(worker)

        await asyncio.gather(*(bring_up(w) for w in self._workers))

    async def parse(
        self,
        body: bytes,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        keywords: Sequence[str] | None = None,
        now: float | None = None,
        max_entries: int | None = None,
    ) -> ParsedFeed:
        """Parse one fetched document; raises PermanentFetchError like `parse_document` does, plus
        `parse_timeout` (too slow, worker replaced), `too_large` (memory cap) and `parse_error`
        (the parser crashed).

        With `keywords`, the worker also does what `keep_matching` does (selection of at most
        `max_entries` as of `now`, then matching): only the client's matching entries come back."""
        if self._closed:
            raise RuntimeError("the feed parse pool is closed")
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        selection = None
        if keywords is not None:
            selection = [list(keywords), time.time() if now is None else now, max_entries]
        header = json.dumps([url, _content_type(headers), self.max_entries, selection]).encode()
        worker = await self._idle.get()
        # Built once a worker is free: polls waiting for one hold their body only, not a copy of it too.
        message = len(header).to_bytes(4, "big") + header + body  # one message: fewer syscalls
        # The round trip runs as its own task and the worker returns to the queue only when it is
        # over, even if this caller is cancelled meanwhile: a worker never serves two parses at once.
        task = asyncio.ensure_future(self._round_trip(worker, message, url))
        task.add_done_callback(lambda done: self._release(worker, done))
        reply = await asyncio.shield(task)
        return decode_reply(reply, timeout=self.timeout, memory_limit=self.memory_limit)

    def _release(self, worker: _Worker, done: asyncio.Future[Any]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved here so that a cancelled caller leaves no warning behind
        if self._idle is not None and not self._closed:
            self._idle.put_nowait(worker)

    async def _round_trip(self, worker: _Worker, message: bytes, url: str) -> tuple[Any, ...]:
        """Send, wait at most `timeout`, receive; replace the worker when it hangs or dies."""
        if self._closed:
            return ("closed",)
        self.parses += 1
        try:
            if worker.process is None:
                await worker.start()
            try:
                worker.send(message)
            except WorkerGone:  # it died between two parses (no waitpid per parse: it costs a syscall)
                worker.kill()
                self.restarts += 1
                await worker.start()
                worker.send(message)
            reply = json.loads(await worker.receive(self.timeout))
        except TimeoutError:
            log.warning(
                "feed parse timed out after %.1f s; worker %s killed and replaced (host %s)",
                self.timeout,
                worker.pid,
                _host(url),
            )
            worker.kill()
            self.timeouts += 1
            self.restarts += 1
            return ("timeout",)
        except (WorkerGone, ValueError, OSError) as exc:  # OSError: could not even spawn one
            if self._closed:
                return ("closed",)
            log.warning("feed parse worker %s died (%s); replaced (host %s)", worker.pid, exc, _host(url))
            worker.kill()
            self.restarts += 1
            return ("died",)
        if reply and reply[0] == "memory":
            worker.kill()
            self.restarts += 1
        return tuple(reply)

    def close(self) -> None:
        """Stop every worker (politely, then SIGKILL). Parses still running fail with parse_error."""
        self._closed = True
        for worker in self._workers:
            worker.stop()

    async def aclose(self) -> None:
        self.close()


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
        raise PermanentFetchError(
            ErrorKind.PARSE_TIMEOUT,
            N_("parsing took longer than {timeout:g} s; the parser was stopped").format(timeout=timeout),
        )
    if status == "memory":
        raise PermanentFetchError(
            ErrorKind.TOO_LARGE,
            N_("parsing needed more than {megabytes} MB of memory").format(megabytes=memory_limit // (1024 * 1024)),
        )
    if status == "error":
        raise PermanentFetchError(ErrorKind.PARSE_ERROR, N_("the feed parser failed ({reply})").format(reply=reply[1]))
    if status == "closed":
        raise PermanentFetchError(ErrorKind.PARSE_ERROR, N_("the daemon is stopping"))
    raise PermanentFetchError(ErrorKind.PARSE_ERROR, N_("the feed parser process died"))


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
