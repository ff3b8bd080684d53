"""The timeline's buckets: every hour or local day of the period, empty ones included, DST days whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from veille.reports.svg import buckets, timeline

PARIS = ZoneInfo("Europe/Paris")


def test_days_follow_the_local_calendar_across_a_clock_change() -> None:
    start = datetime(2026, 10, 23, 12, tzinfo=UTC)  # Paris leaves summer time on Sunday 25 October
    end = datetime(2026, 10, 27, 12, tzinfo=UTC)
    hourly = [
        (datetime(2026, 10, 24, 22, tzinfo=UTC), 3, 1),  # 00:00 on the 25th in Paris (UTC+2)
        (datetime(2026, 10, 25, 23, tzinfo=UTC), 2, 0),  # 00:00 on the 26th in Paris (UTC+1)
        (datetime(2026, 10, 25, 22, tzinfo=UTC), 5, 5),  # 23:00 on the 25th: the 25-hour day
    ]
    days = buckets(hourly, start, end, PARIS, daily=True)
    assert [d.strftime("%d") for d, _, _ in days] == ["23", "24", "25", "26", "27"]
    assert [(total, negative) for _, total, negative in days] == [(0, 0), (0, 0), (8, 6), (2, 0), (0, 0)]


def test_hours_and_bar_geometry() -> None:
    end = datetime(2026, 11, 20, 14, 40, tzinfo=UTC)
    hours = buckets(
        [(datetime(2026, 11, 20, 13, tzinfo=UTC), 4, 1)], end - timedelta(hours=24), end, PARIS, daily=False
    )
    assert len(hours) == 25 and sum(t for _, t, _ in hours) == 4
    chart = timeline(hours, daily=False)
    tallest = max(chart.bars, key=lambda b: b.total)
    assert chart.peak == 4 and tallest.total_y + tallest.total_height == chart.baseline_y
    assert tallest.negative_height * 4 == tallest.total_height
    assert timeline([], daily=True).empty
