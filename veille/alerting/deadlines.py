"""Reply deadlines of the inbox: per client and channel, counted in the client's opening hours. Pure.

    [clients.inbox]
    message = "2h"            # a private message
    comment = "4h"
    review = "24h"
    post = "4h"               # a visitor post or a mention that asks something
    remind_before = "30m"     # the reminder goes out this long before the deadline
    hours = "09:00-19:00"     # optional opening hours (local time, may cross midnight): the clock runs only then
    complaint_urgent_after = "6h"   # optional: a complaint overdue this long becomes high urgency

A customer waiting for an answer gives two incidents through the escalation, both low urgency (silent by day,
held for the morning digest at night): `reply_due` from the reminder time, `reply` once overdue; both resolve
when the conversation is answered or marked "no answer needed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from veille.alerting.calendar import local_instant
from veille.alerting.settings import QuietHours, parse_quiet_hours
from veille.core.configreader import Reader
from veille.core.i18n import N_
from veille.core.incidents import Cause, Signal, Urgency
from veille.core.models import Channel

DEFAULT_DELAYS = {
    Channel.MESSAGE: timedelta(hours=2),
    Channel.COMMENT: timedelta(hours=4),
    Channel.REVIEW: timedelta(hours=24),
    Channel.POST: timedelta(hours=4),
}


@dataclass(frozen=True, slots=True)
class InboxSettings:
    delays: dict[Channel, timedelta] = field(default_factory=lambda: dict(DEFAULT_DELAYS))
    remind_before: timedelta = timedelta(minutes=30)
    hours: QuietHours | None = None  # opening hours (the same window type as quiet hours)
    complaint_urgent_after: timedelta | None = None


def parse_inbox(reader: Reader | None) -> InboxSettings:
    """`[clients.inbox]` -> InboxSettings (defaults when absent); problems go to the reader."""
    if reader is None:
        return InboxSettings()
    delays = {
        channel: reader.duration(channel.value, default, min=timedelta(minutes=1))
        for channel, default in DEFAULT_DELAYS.items()
    }
    remind = reader.duration("remind_before", timedelta(minutes=30), min=timedelta(0))
    hours: QuietHours | None = None
    raw_hours = reader.str("hours", None)
    if raw_hours:
        hours = parse_quiet_hours(raw_hours)
        if hours is None:
            reader.add(
                "hours",
                N_("{value!r} is not a time window").format(value=raw_hours),
                N_('write "HH:MM-HH:MM", e.g. "09:00-19:00" (may cross midnight)'),
            )
    urgent = reader.raw.get("complaint_urgent_after")
    complaint_urgent_after = reader.duration("complaint_urgent_after", timedelta(hours=6)) if urgent else None
    reader.finish()
    return InboxSettings(delays, remind, hours, complaint_urgent_after)


def _windows(hours: QuietHours, around: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The opening windows (UTC) of the local days from the day before `around` to a week after."""
    windows = []
    base = around.astimezone(tz)
    for offset in range(-1, 8):
        day = base + timedelta(days=offset)
        start = local_instant(day, hours.start, tz)
        end_day = day + timedelta(days=1) if hours.end <= hours.start else day
        windows.append((start, local_instant(end_day, hours.end, tz)))
    return windows


def business_time_after(start: datetime, delay: timedelta, hours: QuietHours | None, tz: ZoneInfo) -> datetime:
    """The instant when `delay` of opening time has passed since `start` (no hours: plain time)."""
    if hours is None or hours.start == hours.end:
        return start + delay
    left, at = delay, start
    while True:
        for open_at, close_at in _windows(hours, at, tz):
            if close_at <= at:
                continue
            at = max(at, open_at)
            if at + left <= close_at:
                return at + left
            left -= close_at - at
            at = close_at


def due_times(since: datetime, channel: Channel, settings: InboxSettings, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(reminder time, deadline) of a wait that began at `since`."""
    delay = settings.delays.get(channel, DEFAULT_DELAYS[Channel.POST])
    deadline = business_time_after(since, delay, settings.hours, tz)
    remind_at = business_time_after(since, max(timedelta(0), delay - settings.remind_before), settings.hours, tz)
    return min(remind_at, deadline), deadline


@dataclass(frozen=True, slots=True)
class Wait:
    """What the deadline rules need of one inbox item."""

    item_id: int
    client_id: str
    channel: Channel
    waiting_since: datetime
    complaint: bool
    waiting: bool  # False once answered or marked "no answer needed"
    author: str | None = None
    excerpt: str = ""


def reply_signals(wait: Wait, settings: InboxSettings, now: datetime, tz: ZoneInfo) -> list[Signal]:
    """The reminder (`reply_due`) and overdue (`reply`) signals of one wait, firing or not, at `now`."""
    remind_at, deadline = due_times(wait.waiting_since, wait.channel, settings, tz)
    subject = f"#{wait.item_id}"
    since_local, deadline_local = wait.waiting_since.astimezone(tz), deadline.astimezone(tz)
    who = wait.author or "?"
    reasons = (
        N_("{who} waits since {since} ({channel}): “{excerpt}”").format(
            who=who, since=f"{since_local:%d/%m %H:%M}", channel=wait.channel.value, excerpt=wait.excerpt[:140]
        ),
        N_("answer due by {deadline}").format(deadline=f"{deadline_local:%d/%m %H:%M}"),
    )
    urgent = (
        wait.complaint
        and settings.complaint_urgent_after is not None
        and now >= deadline + settings.complaint_urgent_after
    )
    return [
        Signal(
            client_id=wait.client_id,
            cause=Cause.REPLY_DUE,
            subject=subject,
            firing=wait.waiting and now >= remind_at,
            urgency=Urgency.LOW,
            reasons=reasons,
        ),
        Signal(
            client_id=wait.client_id,
            cause=Cause.REPLY,
            subject=subject,
            firing=wait.waiting and now >= deadline,
            urgency=Urgency.HIGH if urgent else Urgency.LOW,
            reasons=reasons,
        ),
    ]


def next_due(wait: Wait, settings: InboxSettings, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When this wait's signals next change (the tick wakes up then)."""
    remind_at, deadline = due_times(wait.waiting_since, wait.channel, settings, tz)
    times = [remind_at, deadline]
    if wait.complaint and settings.complaint_urgent_after is not None:
        times.append(deadline + settings.complaint_urgent_after)
    future = [t for t in times if t > now]
    return min(future) if future else None
