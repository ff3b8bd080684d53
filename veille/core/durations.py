"""Human durations and sizes used in config and CLI: "90s", "10m", "2h", "7d", "1h30m"."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from veille.core.i18n import N_

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse "10m", "1h30m", "2d"; ValueError with the accepted forms otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise ValueError(N_("{text!r} is not a duration; write e.g. 30s, 10m, 2h, 7d or 1h30m").format(text=text))
    return timedelta(seconds=total)


def format_duration(delta: timedelta | float) -> str:
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts[:2])


def parse_since(text: str, now: datetime) -> datetime:
    """A point in time for CLI filters: a duration back from now ("24h", "7d") or an ISO date/time."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            N_("{text!r}: write a duration (24h, 7d) or an ISO date (2026-11-20)").format(text=text)
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
