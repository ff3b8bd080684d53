"""Charts as inline SVG: plain geometry, then markup with every text escaped (no script, nothing loaded from
elsewhere). The monthly report's HTML and the dashboard (veille.web) both draw with it, so a chart looks
and escapes the same in a mailed report and on the screen.

Geometry (`buckets`, `timeline`) is separate from markup (`draw`): the dashboard's tests check bars and
ticks without parsing SVG, and `draw` takes charts already worded in the reader's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape

WIDTH = 720
HEIGHT = 200
LEFT = 36  # room for the scale
BOTTOM = 22  # room for the tick labels
TOP = 8

BLUE = "#7aa6d6"  # every hit
RED = "#d9534f"  # negative hits
GREY = "#a7b0bd"  # neutral
GREEN = "#5cb85c"  # positive
INK = "#555"


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


# --- charts ready to draw (already worded) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineChart:
    """Hits per hour or day with the negative ones drawn over them; `tooltips` has one text per bar."""

    label: str
    timeline: Timeline
    tooltips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BarRow:
    label: str
    value: float
    part: float = 0.0  # drawn over the bar in red from its start (the negative hits of a source kind)
    text: str = ""  # the figure written after the bar
    color: str = BLUE


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars scaled to the largest value (or to `scale`: 1.0 for shares)."""

    label: str
    rows: tuple[BarRow, ...]
    scale: float | None = None


@dataclass(frozen=True, slots=True)
class LineChart:
    """One measure over days (an account's followers): `points` are (x label, value), oldest first."""

    label: str
    points: tuple[tuple[str, float], ...]
    low_text: str = ""  # the scale's ends, already formatted
    high_text: str = ""


Chart = TimelineChart | BarChart | LineChart


def _t(value: object) -> str:
    return escape(str(value), quote=True)


def _svg(label: str, width: float, height: float, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" role="img" '
        f'aria-label="{_t(label)}"><title>{_t(label)}</title>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, value: str, *, anchor: str = "start", size: int = 11) -> str:
    return f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" font-size="{size}" fill="{INK}">{_t(value)}</text>'


def draw(chart: Chart) -> str:
    """The chart as one `<svg>` element to place inline in an HTML page."""
    if isinstance(chart, TimelineChart):
        return _draw_timeline(chart)
    if isinstance(chart, BarChart):
        return _draw_bars(chart)
    return _draw_line(chart)


def _draw_timeline(chart: TimelineChart) -> str:
    t = chart.timeline
    body = [
        f'<line x1="{t.left}" y1="{t.baseline_y:g}" x2="{t.width}" y2="{t.baseline_y:g}" stroke="#999" '
        'stroke-width="1"/>',
        _text(t.left - 4, 16, str(t.peak), anchor="end"),
        _text(t.left - 4, t.baseline_y, "0", anchor="end"),
    ]
    for bar, tip in zip(t.bars, chart.tooltips, strict=True):
        rects = (
            f'<rect x="{bar.x:g}" y="{bar.total_y:g}" width="{bar.width:g}" height="{bar.total_height:g}" '
            f'fill="{BLUE}"/>'
        )
        if bar.negative:
            rects += (
                f'<rect x="{bar.x:g}" y="{bar.negative_y:g}" width="{bar.width:g}" '
                f'height="{bar.negative_height:g}" fill="{RED}"/>'
            )
        body.append(f"<g><title>{_t(tip)}</title>{rects}</g>")
    body += [_text(tick.x, t.height - 6, tick.label, anchor="middle") for tick in t.ticks]
    return _svg(chart.label, t.width, t.height, body)


BAR_ROW = 24
BAR_LABEL = 160  # room for the row's name on the left
BAR_TEXT = 90  # room for the figure on the right


def _draw_bars(chart: BarChart) -> str:
    peak = chart.scale or max((row.value for row in chart.rows), default=0.0)
    span = WIDTH - BAR_LABEL - BAR_TEXT
    body = []
    for index, row in enumerate(chart.rows):
        y = index * BAR_ROW + 4
        width = span * row.value / peak if peak else 0.0
        part = span * min(row.part, row.value) / peak if peak else 0.0
        rects = f'<rect x="{BAR_LABEL}" y="{y}" width="{width:.2f}" height="{BAR_ROW - 8}" fill="{row.color}"/>'
        if part:
            rects += f'<rect x="{BAR_LABEL}" y="{y}" width="{part:.2f}" height="{BAR_ROW - 8}" fill="{RED}"/>'
        label = row.label if len(row.label) <= 26 else row.label[:25] + "…"
        body.append(
            f"<g><title>{_t(row.label)} ({_t(row.text)})</title>"
            + _text(BAR_LABEL - 6, y + 12, label, anchor="end")
            + rects
            + _text(BAR_LABEL + width + 6, y + 12, row.text)
            + "</g>"
        )
    return _svg(chart.label, WIDTH, max(len(chart.rows), 1) * BAR_ROW + 4, body)


LINE_HEIGHT = 120


def _draw_line(chart: LineChart) -> str:
    values = [value for _, value in chart.points]
    low, high = min(values, default=0.0), max(values, default=0.0)
    spread = (high - low) or 1.0
    plot_height = LINE_HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT - 10) / max(len(values) - 1, 1)
    coords = [
        (LEFT + index * step, TOP + plot_height * (1 - (value - low) / spread)) for index, value in enumerate(values)
    ]
    baseline = LINE_HEIGHT - BOTTOM
    body = [
        f'<line x1="{LEFT}" y1="{baseline}" x2="{WIDTH}" y2="{baseline}" stroke="#999" stroke-width="1"/>',
        _text(LEFT - 4, TOP + 8, chart.high_text, anchor="end"),
        _text(LEFT - 4, baseline, chart.low_text, anchor="end"),
    ]
    if coords:
        path = " ".join(f"{x:.2f},{y:.2f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
        every = max(1, round(len(coords) / 6))
        body += [
            _text(x, LINE_HEIGHT - 6, chart.points[i][0], anchor="middle")
            for i, (x, _) in enumerate(coords)
            if i % every == 0
        ]
    return _svg(chart.label, WIDTH, LINE_HEIGHT, body)
