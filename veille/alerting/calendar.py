"""Local-time questions asked in the agency's time zone: quiet hours, digest and quiet-end times.

All inputs and outputs are aware UTC datetimes; wall-clock arithmetic happens in local time and
is converted back, so windows across midnight and both daylight-saving changes come out right.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from veille.alerting.settings import QuietHours


def local_instant(day: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant when local clocks show `at` on `day`'s local date.

    In the spring-forward gap (02:30 does not exist) this is the instant one hour after 01:30
    local; in the autumn overlap the first occurrence (fold=0) is taken.
    """
    local_day = day.astimezone(tz).date()
    naive = datetime.combine(local_day, at)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def is_quiet(quiet: QuietHours | None, now: datetime, tz: ZoneInfo) -> bool:
    return quiet is not None and quiet.contains(now.astimezone(tz).time().replace(tzinfo=None))


def last_occurrence(at: time, now: datetime, tz: ZoneInfo) -> datetime:
    """The most recent instant <= now when local time was `at`."""
    candidate = local_instant(now, at, tz)
    if candidate > now:
        candidate = local_instant(now.astimezone(tz) - timedelta(days=1), at, tz)
    return candidate


def next_occurrence(at: time, now: datetime, tz: ZoneInfo) -> datetime:
    """The first instant > now when local time is `at`."""
    candidate = local_instant(now, at, tz)
    if candidate <= now:
        candidate = local_instant(now.astimezone(tz) + timedelta(days=1), at, tz)
    return candidate
