"""Reply deadlines counted in opening hours: overnight, across midnight, across daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from veille.alerting.deadlines import InboxSettings, Wait, business_time_after, due_times, parse_inbox, reply_signals
from veille.alerting.settings import parse_quiet_hours
from veille.core.configreader import Reader
from veille.core.errors import Problems
from veille.core.incidents import Cause, Urgency
from veille.core.models import Channel

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def test_the_clock_runs_only_during_opening_hours() -> None:
    shop = parse_quiet_hours("09:00-19:00")
    # 18:30 + 2 h of opening time: 30 min tonight, 1 h 30 tomorrow from 09:00.
    assert business_time_after(paris(2026, 11, 20, 18, 30), timedelta(hours=2), shop, PARIS) == paris(
        2026, 11, 21, 10, 30
    )
    # Written at night: the clock starts at opening.
    assert business_time_after(paris(2026, 11, 20, 23, 0), timedelta(hours=2), shop, PARIS) == paris(
        2026, 11, 21, 11, 0
    )
    # No opening hours: plain time.
    assert business_time_after(paris(2026, 11, 20, 23, 0), timedelta(hours=2), None, PARIS) == paris(2026, 11, 21, 1, 0)


def test_opening_hours_across_midnight_and_daylight_saving() -> None:
    bar = parse_quiet_hours("18:00-02:00")
    assert business_time_after(paris(2026, 11, 20, 23, 0), timedelta(hours=4), bar, PARIS) == paris(2026, 11, 21, 19, 0)
    # The night of 28-29 March 2026 loses an hour (02:00 -> 03:00): 18:00-02:00 stays eight local hours
    # long, and a shop opening at 09:00 still opens at 09:00 local (07:00 UTC, not 08:00).
    shop = parse_quiet_hours("09:00-19:00")
    before = paris(2026, 3, 28, 18, 0)
    assert business_time_after(before, timedelta(hours=2), shop, PARIS) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    autumn = paris(2026, 10, 24, 18, 0)  # the night of 24-25 October gains an hour
    assert business_time_after(autumn, timedelta(hours=2), shop, PARIS) == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


def test_reminder_then_overdue_signals() -> None:
    settings = InboxSettings(remind_before=timedelta(minutes=30), complaint_urgent_after=timedelta(hours=6))
    since = paris(2026, 11, 20, 20, 45)
    assert due_times(since, Channel.MESSAGE, settings, PARIS) == (
        since + timedelta(minutes=90),
        since + timedelta(hours=2),
    )
    wait = Wait(7, "shop", Channel.MESSAGE, since, complaint=True, waiting=True, author="Léa", excerpt="allo ?")
    early, _ = reply_signals(wait, settings, since + timedelta(minutes=89), PARIS)
    assert not early.firing
    reminder, overdue = reply_signals(wait, settings, since + timedelta(minutes=90), PARIS)
    assert reminder.firing and reminder.cause is Cause.REPLY_DUE and not overdue.firing and reminder.subject == "#7"
    _, overdue = reply_signals(wait, settings, since + timedelta(hours=2), PARIS)
    assert overdue.firing and overdue.cause is Cause.REPLY and overdue.urgency is Urgency.LOW
    _, late = reply_signals(wait, settings, since + timedelta(hours=8), PARIS)
    assert late.urgency is Urgency.HIGH  # a complaint left six hours past its deadline
    answered = Wait(7, "shop", Channel.MESSAGE, since, complaint=True, waiting=False)
    assert not any(s.firing for s in reply_signals(answered, settings, since + timedelta(hours=8), PARIS))


@pytest.mark.parametrize(
    ("raw", "path"),
    [({"hours": "9h-19h"}, "c.inbox.hours"), ({"mesage": "2h"}, "c.inbox.mesage"), ({"review": "x"}, "c.inbox.review")],
)
def test_bad_settings_are_one_clear_line_each(raw: dict[str, str], path: str) -> None:
    problems = Problems()
    parse_inbox(Reader(raw, "c.inbox", problems))
    assert [p.path for p in problems.items] == [path]
