"""Injectable clocks: never call datetime.now() deep in the code.

`now()` is wall time (aware UTC) for timestamps; `monotonic()` is for measuring intervals, so a
wall-clock step (NTP, DST, VM resume) never shortens or lengthens a wait.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests move by hand. `step_wall` moves wall time only, like an NTP jump."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = start or datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += timedelta(seconds=seconds)
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        self._wall += timedelta(seconds=seconds)


def utc(value: datetime) -> datetime:
    """Normalise to aware UTC; naive datetimes are taken as UTC (SQLite returns them naive)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
