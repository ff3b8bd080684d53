"""Calendar months in the agency's time zone, turned into UTC bounds for queries.

A month is a local calendar month: a hit seen at 2026-10-31T23:30Z belongs to November in Paris.
Bounds are computed from local midnights, so a month containing a DST change is 743 or 745 hours long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """ "2026-11" -> Month(2026, 11); ValueError that shows the expected form otherwise."""
        match = _MONTH.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
            raise ValueError(f"{text!r} is not a month; write YYYY-MM, e.g. 2026-11")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime, tz: tzinfo) -> Month:
        local = moment.astimezone(tz)
        return cls(local.year, local.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the 1st to local midnight of the next month's 1st."""
        return _local_midnight(self.first_day, tz), _local_midnight(self.next().first_day, tz)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def previous_month(now: datetime, tz: tzinfo) -> Month:
    """The default report: the last complete calendar month where the agency lives."""
    return Month.containing(now, tz).previous()


REPORT_CATCH_UP = timedelta(days=7)  # a daemon down on the 1st still sends the reports this long after


def report_due(now: datetime, tz: tzinfo, at: time) -> Month | None:
    """The month whose report goes out at `now`: the previous one, from the 1st at `at` (local time) for
    REPORT_CATCH_UP; None otherwise (turning `[reports] send` on mid-month sends nothing old)."""
    current = Month.containing(now, tz)
    first = datetime.combine(current.first_day, at, tzinfo=tz).astimezone(UTC)
    return current.previous() if first <= now < first + REPORT_CATCH_UP else None


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def week_start(day: date) -> date:
    """Monday of the ISO week holding `day`."""
    return day - timedelta(days=day.weekday())
