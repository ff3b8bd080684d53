"""Whether the database answers, as seen by every loop of the daemon that touches it (G8).

When PostgreSQL goes away (or SQLite is locked, read-only or full), the writer, the alerting tick
and the outbox relays all fail at once, every second. Without a shared view each of them logged its
own error or traceback per attempt and retried at full speed. Here: one WARNING when storage is
lost, one INFO when it is back (with how long it lasted), DEBUG in between; each loop waits a
capped, jittered exponential delay between attempts, and is woken at once when another loop sees
the database again, so recovery is not delayed by the longest backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from veille.core.backoff import EQUAL, BackoffPolicy

log = logging.getLogger("veille.storage")

# 1 s before a loop's first retry, never more than 30 s (a 60 s outage is noticed as over within 30 s
# even by a lone loop); equal jitter so that the loops do not retry in lockstep.
STORAGE_RETRY = BackoffPolicy(base=1.0, cap=30.0, jitter=EQUAL)


class StorageStatus:
    """Shared by the pipeline writer, the alerting tick and the outbox relays of one daemon.

    Call `failed` and `succeeded` from the event loop only (after `asyncio.to_thread` returns)."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.ok = True
        self.error: str | None = None
        self.failures = 0  # failed attempts in the current outage
        self._down_at: float | None = None
        self._back = asyncio.Event()  # set while storage is ok; waiters retry at once when it is back
        self._back.set()

    def failed(self, exc: BaseException, *, where: str) -> None:
        self.error = str(exc)[:300]
        self.failures += 1
        if self.ok:
            self.ok = False
            self._down_at = self._monotonic()
            self._back.clear()
            log.warning(
                "storage_lost where=%s: %s; retrying with backoff (at most every %.0fs)",
                where,
                self.error,
                STORAGE_RETRY.cap,
            )
        else:
            log.debug("storage still down where=%s: %s", where, self.error)

    def succeeded(self) -> None:
        if self.ok:
            return
        lasted = self._monotonic() - (self._down_at or self._monotonic())
        log.info("storage_back after %.0fs and %d failed attempts", lasted, self.failures)
        self.ok, self.error, self.failures, self._down_at = True, None, 0, None
        self._back.set()

    async def pause(
        self,
        attempt: int,
        *,
        stop: asyncio.Event | None = None,
        policy: BackoffPolicy = STORAGE_RETRY,
        rng: random.Random | None = None,
    ) -> None:
        """Wait a loop's delay before its retry number `attempt`, less if another loop sees the database
        again or `stop` is set."""
        delay = policy.delay(attempt, rng=rng)
        events = [] if stop is None else [stop]
        if self.ok:  # another loop saw it back in the meantime: only a short pause
            delay = min(delay, policy.base)
        else:
            events.append(self._back)
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        if not waiters:
            await asyncio.sleep(delay)
            return
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
