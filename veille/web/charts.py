"""The timeline chart as plain geometry for an inline SVG (no script, nothing loaded from elsewhere):
hits and negative hits per hour or per local day, with a few labelled ticks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

WIDTH = 720
HEIGHT = 200
LEFT = 36  # room for the scale
BOTTOM = 22  # room for the tick labels
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    total_y: float
    total_height: float
    negative_y: float
    negative_height: float
    label: str  # the bucket, for the tooltip
    total: int
    negative: int


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline_y: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return self.peak == 0


def buckets(
    hourly: Iterable[tuple[datetime, int, int]], start: datetime, end: datetime, tz: tzinfo, *, daily: bool
) -> list[tuple[datetime, int, int]]:
    """Every hour (or local day) from `start` to `end`, empty ones included, with (hits, negative)."""

    def floor(moment: datetime) -> datetime:
        local = moment.astimezone(tz)
        if daily:  # local midnight: days follow the agency's calendar (DST included)
            return local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local.replace(minute=0, second=0, microsecond=0)

    counts: dict[datetime, list[int]] = {}
    cursor = floor(start)
    while cursor <= end:
        counts[cursor] = [0, 0]
        # days step on the wall clock (a 23 h or 25 h day is still one day); hours in absolute time
        cursor = (
            floor(cursor + timedelta(days=1)) if daily else (cursor.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
        )
    for hour, total, negative in hourly:
        slot = counts.get(floor(hour))
        if slot is not None:
            slot[0] += total
            slot[1] += negative
    return [(moment, total, negative) for moment, (total, negative) in counts.items()]


def timeline(series: list[tuple[datetime, int, int]], *, daily: bool) -> Timeline:
    """Bars scaled to the busiest bucket; about six tick labels whatever the number of buckets."""
    peak = max((total for _, total, _ in series), default=0)
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    slot = plot_width / max(len(series), 1)
    bars = []
    ticks = []
    every = max(1, round(len(series) / 6))
    for index, (moment, total, negative) in enumerate(series):
        x = LEFT + index * slot
        total_height = plot_height * total / peak if peak else 0.0
        negative_height = plot_height * negative / peak if peak else 0.0
        label = moment.strftime("%d/%m") if daily else moment.strftime("%d/%m %Hh")
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 2),
                width=round(max(slot * 0.8, 0.5), 2),
                total_y=round(HEIGHT - BOTTOM - total_height, 2),
                total_height=round(total_height, 2),
                negative_y=round(HEIGHT - BOTTOM - negative_height, 2),
                negative_height=round(negative_height, 2),
                label=label,
                total=total,
                negative=negative,
            )
        )
        if index % every == 0:
            ticks.append(Tick(round(x + slot / 2, 2), moment.strftime("%d/%m") if daily else moment.strftime("%Hh")))
    return Timeline(tuple(bars), tuple(ticks), peak)
