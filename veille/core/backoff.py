"""How long a loop waits before it tries again: one policy type for every loop that retries.

Each loop (source polls, the outbox relays, the storage-outage pause, the Telegram update loop, the
Jetstream reconnects) keeps its own parameters but the same rule:

    scheduled(n) = min(cap, base x factor^(n-1))          n = the attempt, 1 for the first retry
    delay(n)     = max(floor, scheduled(n) x U(jitter))   U = uniform over the jitter range

`jitter` is the range the scheduled delay is multiplied by: `EXACT` (no randomness), `EQUAL` (half fixed,
half random), `FULL` (anywhere up to the delay) or `later(share)` (never earlier than scheduled). A
server's Retry-After replaces the schedule: it is waited in full (at least `MIN_RETRY_AFTER`, at most
`retry_after_cap`) and jittered only upwards, so a loop never knocks before the server said it could.
Pass an `rng` (a seeded `random.Random`) for deterministic tests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

Jitter = tuple[float, float]  # the random multiplier's range: (low, high), 0 <= low <= high

EXACT: Jitter = (1.0, 1.0)
EQUAL: Jitter = (0.5, 1.0)
FULL: Jitter = (0.0, 1.0)

MIN_RETRY_AFTER = 1.0  # a Retry-After of 0 (or in the past) still waits a second: "now" must not spin a loop

_RNG = random.Random()


def later(share: float) -> Jitter:
    """Up to `share` of the delay added at random, never taken off (0.1: 10 to 11 minutes for 10)."""
    return (1.0, 1.0 + share)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """One loop's retry delays in seconds: exponential from `base` by `factor`, capped, jittered."""

    base: float
    cap: float
    factor: float = 2.0
    jitter: Jitter = EXACT
    floor: float = 0.0  # never shorter than this, whatever the jitter drew
    retry_after_jitter: Jitter = EXACT  # low must be >= 1: a Retry-After is never shortened
    retry_after_cap: float = math.inf  # a server asking for longer is waited this long only

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.floor < 0:
            raise ValueError(f"backoff base, cap and floor must be >= 0 (got {self.base}, {self.cap}, {self.floor})")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1 (got {self.factor}): delays must not shrink")
        low, high = self.jitter
        if not 0 <= low <= high:
            raise ValueError(f"backoff jitter must be a range 0 <= low <= high (got {self.jitter})")
        low, high = self.retry_after_jitter
        if not 1 <= low <= high:
            raise ValueError(f"Retry-After jitter must be a range 1 <= low <= high (got {self.retry_after_jitter})")

    def scheduled(self, attempt: int) -> float:
        """The delay before retry number `attempt` without jitter; attempts below 1 count as the first."""
        try:
            grown = self.base * self.factor ** max(attempt - 1, 0)
        except OverflowError:  # thousands of failures: long past the cap
            grown = math.inf
        return min(self.cap, grown)

    def jittered(self, delay: float, rng: random.Random | None = None) -> float:
        """`delay` times a random draw from the jitter range, never under the floor."""
        low, high = self.jitter
        return max(self.floor, delay * _draw(low, high, rng))

    def delay(self, attempt: int, *, rng: random.Random | None = None, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt`; the server's `retry_after`, when given, wins."""
        if retry_after is not None:
            low, high = self.retry_after_jitter
            return max(min(retry_after, self.retry_after_cap), MIN_RETRY_AFTER) * _draw(low, high, rng)
        return self.jittered(self.scheduled(attempt), rng)


def _draw(low: float, high: float, rng: random.Random | None) -> float:
    return low if low == high else (rng or _RNG).uniform(low, high)
