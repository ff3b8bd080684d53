"""A notifier for tests, with failure switches instead of mocks (STYLE habit 8).

    fake.fail_next(3, NotifyRateLimited("429", retry_after=5))   # the next 3 sends raise this
    fake.block("chat-1")                                          # RecipientGone for that address
    fake.accept_but_hang(1)                                       # A8: delivered, then never answers

`sent` records every accepted delivery (including the hung ones), with the clock's time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from veille.core.clock import Clock, SystemClock
from veille.notify.base import Delivery, Notification, NotifyError, RecipientGone


@dataclass(frozen=True, slots=True)
class Sent:
    notification: Notification
    address: str
    at: datetime
    message_id: str


class FakeNotifier:
    def __init__(self, channel: str = "fake", *, clock: Clock | None = None) -> None:
        self.channel = channel
        self._clock = clock or SystemClock()
        self.sent: list[Sent] = []
        self.attempts: list[tuple[int, datetime]] = []  # (outbox id, time) of every call
        self._failures: deque[NotifyError | BaseException] = deque()
        self._blocked: set[str] = set()
        self._hang = 0
        self._release = asyncio.Event()
        self.closed = False

    def fail_next(self, n: int, exc: NotifyError | BaseException) -> None:
        self._failures.extend([exc] * n)

    def block(self, address: str) -> None:
        self._blocked.add(address)

    def accept_but_hang(self, n: int = 1) -> None:
        self._hang += n

    def release_hung(self) -> None:
        self._release.set()

    async def send(self, notification: Notification, address: str) -> Delivery:
        self.attempts.append((notification.outbox_id, self._clock.now()))
        if address in self._blocked:
            raise RecipientGone("bot was blocked by the user")
        if self._failures:
            raise self._failures.popleft()
        message_id = f"m{len(self.sent) + 1}"
        self.sent.append(Sent(notification, address, self._clock.now(), message_id))
        if self._hang:
            self._hang -= 1
            await self._release.wait()
        return Delivery((message_id,))

    def delivered(self, outbox_id: int) -> int:
        return sum(1 for s in self.sent if s.notification.outbox_id == outbox_id)

    async def aclose(self) -> None:
        self.closed = True
