"""From a client's recent hits to detection signals (bad buzz, volume spike). Pure.

Evidence is counted so that one voice stays one voice: volume counts distinct normalised
texts (a spam burst of one message is one), negative volume counts distinct authors (an angry
regular posting ten times is one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from veille.alerting.settings import AlertingSettings
from veille.alerting.spikes import SpikeVerdict, spike_test
from veille.core.i18n import N_
from veille.core.incidents import Cause, Signal, Urgency
from veille.core.matching import fold

_NOISE = re.compile(r"https?://\S+|[@#]\w+|\d+|[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
MIN_RISKY_AUTHORS_FOR_HIGH = 3
LINKED_HITS = 5  # hits an incident links (shown in its alert, `veille alerts --format json`)
HISTORY_DAYS = 7  # same-window-of-day baselines use up to this many previous days


KEY_CHARS = 200  # characters of the cleaned text that make its key
_KEY_PREFIX = 2 * KEY_CHARS  # characters of a text cleaned first: they usually give KEY_CHARS


def text_key(text: str) -> str:
    """A hash of the text's first KEY_CHARS characters once links, handles, hashtags, digits and punctuation
    are removed.

    A text is cleaned up to a space past _KEY_PREFIX first, then past four times as much, and so on: no
    noise token spans a space, so that prefix cleans to the beginning of the whole text's cleaning. Cleaning
    3 KB articles whole to keep 200 characters was the largest part of the alerting's time on a first poll of
    news feeds."""
    cleaned = ""
    size = _KEY_PREFIX
    while len(cleaned) < KEY_CHARS:
        cut = text.find(" ", size) if size < len(text) else -1
        cleaned = _cleaned(text[: cut + 1] if cut > 0 else text)
        if cut <= 0:
            break
        size *= 4
    return hashlib.sha256(cleaned[:KEY_CHARS].encode()).hexdigest()[:32]


def _cleaned(text: str) -> str:
    return _SPACES.sub(" ", _NOISE.sub(" ", fold(text))).strip()


@dataclass(frozen=True, slots=True)
class HitRow:
    """One hit as detection sees it (a row of `alert_hits`)."""

    hit_id: int
    seen_at: datetime
    author: str | None
    text_key: str
    negative: bool
    risk: float
    active_at: datetime | None = None  # last time its engagement grew (defaults to seen_at)

    @property
    def last_active(self) -> datetime:
        return max(self.seen_at, self.active_at or self.seen_at)


def _distinct_texts(rows: Sequence[HitRow]) -> int:
    return len({r.text_key for r in rows})


def _distinct_negative_voices(rows: Sequence[HitRow]) -> int:
    negative = [r for r in rows if r.negative]
    authors = {r.author or f"?{r.hit_id}" for r in negative}
    texts = {r.text_key for r in negative}
    return min(len(authors), len(texts))


def _previous_days(rows: Sequence[HitRow], now: datetime, window: timedelta) -> list[list[HitRow]]:
    """The same window on each previous day we have history for (up to HISTORY_DAYS)."""
    if not rows or min(r.seen_at for r in rows) > now - window - timedelta(days=1):
        return []
    oldest = min(r.seen_at for r in rows)
    days = []
    for day in range(1, HISTORY_DAYS + 1):
        end = now - timedelta(days=day)
        if end - window < oldest:
            break
        days.append([r for r in rows if end - window <= r.seen_at < end])
    return days


def _mean(days: list[list[HitRow]], count: Callable[[Sequence[HitRow]], int]) -> float | None:
    return sum(count(day) for day in days) / len(days) if days else None


def detect(
    client_id: str, rows: Sequence[HitRow], new_hits: Sequence[int], settings: AlertingSettings, now: datetime
) -> list[Signal]:
    """Signals for one client from its recent hits (the service passes HISTORY_DAYS of them)."""
    window_start = now - settings.spike_window
    baseline_start = window_start - settings.spike_baseline
    recent = [r for r in rows if r.seen_at >= window_start]
    baseline = [r for r in rows if baseline_start <= r.seen_at < window_start]
    days = _previous_days(rows, now, settings.spike_window)
    volume = spike_test(
        _distinct_texts(recent),
        _distinct_texts(baseline),
        window=settings.spike_window,
        baseline_span=settings.spike_baseline,
        p_value=settings.spike_p_value,
        floor=settings.spike_min_hits,
        same_hour=_mean(days, _distinct_texts),
    )
    negative = spike_test(
        _distinct_negative_voices(recent),
        _distinct_negative_voices(baseline),
        window=settings.spike_window,
        baseline_span=settings.spike_baseline,
        p_value=settings.spike_p_value,
        floor=settings.spike_min_negative,
        same_hour=_mean(days, _distinct_negative_voices),
    )
    hot_since = now - settings.resolve_after
    risky = sorted(
        (r for r in rows if r.last_active >= hot_since and r.risk >= settings.risk_threshold),
        key=lambda r: (-r.risk, r.hit_id),
    )
    new = set(new_hits)
    window = settings.spike_window
    return [
        _buzz(client_id, risky, recent, negative, new, settings.critical_risk, window),
        _volume(client_id, recent, volume, new, window),
    ]


def _window_words(window: timedelta) -> str:
    """ "1 h", "30 min", "1 h 30": how a community manager says a window (the same in French and English)."""
    minutes = round(window.total_seconds() / 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest:02d}" if rest else f"{hours} h"


def spike_words(verdict: SpikeVerdict, window: timedelta, *, negative: bool) -> str:
    """A spike as a person says it: "4 negative messages in 1 h, usually none" (English msgids; notifiers and
    `veille alerts` show them in the reader's language through the catalogue)."""
    if negative:
        what = (
            N_("{count} negative message in {window}")
            if verdict.count == 1
            else N_("{count} negative messages in {window}")
        )
    else:
        what = N_("{count} message in {window}") if verdict.count == 1 else N_("{count} messages in {window}")
    head = what.format(count=verdict.count, window=_window_words(window))
    if verdict.usual == 0:
        return N_("{spike}, usually none").format(spike=head)
    return N_("{spike}, usually about {usual}").format(spike=head, usual=verdict.usual)


def _newest_per_text(rows: Sequence[HitRow]) -> list[int]:
    """One hit per distinct text, newest first: what a person opens to see what the spike is about."""
    seen: set[str] = set()
    out: list[int] = []
    for row in sorted(rows, key=lambda r: (r.seen_at, r.hit_id), reverse=True):
        if row.text_key not in seen:
            seen.add(row.text_key)
            out.append(row.hit_id)
    return out


def _buzz(
    client_id: str,
    risky: list[HitRow],
    recent: list[HitRow],
    negative: SpikeVerdict,
    new: set[int],
    critical: float,
    window: timedelta,
) -> Signal:
    critical_hit = bool(risky) and risky[0].risk >= critical
    voices = len({r.author or f"?{r.hit_id}" for r in risky})
    high = critical_hit or negative.firing or voices >= MIN_RISKY_AUTHORS_FOR_HIGH
    reasons: list[str] = []
    if risky:
        reasons.append(N_("risk {risk:.2f}").format(risk=risky[0].risk))
    if negative.firing:
        reasons.append(spike_words(negative, window, negative=True))
    if voices > 1:
        reasons.append(N_("{n} risky authors").format(n=voices))
    evidence = [r.hit_id for r in risky]
    if negative.firing:  # the negative messages of the window, which need not be risky one by one
        taken = set(evidence)
        evidence += [h for h in _newest_per_text([r for r in recent if r.negative]) if h not in taken]
    return Signal(
        client_id=client_id,
        cause=Cause.BUZZ,
        firing=bool(risky) or negative.firing,
        urgency=Urgency.HIGH if high else Urgency.LOW,
        reasons=tuple(reasons),
        new_hits=tuple(h for h in evidence if h in new),
        top_hits=tuple(evidence[:LINKED_HITS]),
        score=risky[0].risk if risky else 0.0,
        evidence_count=len(evidence),
    )


def _volume(client_id: str, recent: list[HitRow], volume: SpikeVerdict, new: set[int], window: timedelta) -> Signal:
    firing = volume.firing
    return Signal(
        client_id=client_id,
        cause=Cause.VOLUME,
        firing=firing,
        urgency=Urgency.LOW,
        reasons=(spike_words(volume, window, negative=False),) if firing else (),
        new_hits=tuple(r.hit_id for r in recent if r.hit_id in new) if firing else (),
        top_hits=tuple(_newest_per_text(recent)[:LINKED_HITS]) if firing else (),
        score=0.0,
        evidence_count=volume.count,
    )


def source_signal(
    client_id: str,
    source_key: str,
    ok: bool,
    failing_since: datetime | None,
    error_kind: str | None,
    settings: AlertingSettings,
    now: datetime,
) -> Signal:
    firing = not ok and failing_since is not None and now - failing_since >= settings.source_failing_after
    reasons = (
        (
            N_("failing since {since} UTC ({kind})").format(
                since=f"{failing_since:%Y-%m-%d %H:%M}", kind=error_kind or "error"
            ),
        )
        if firing and failing_since
        else ()
    )
    return Signal(
        client_id=client_id, cause=Cause.SOURCE, subject=source_key, firing=firing, urgency=Urgency.LOW, reasons=reasons
    )


def silence_signal(client_id: str, last_data_at: datetime | None, settings: AlertingSettings, now: datetime) -> Signal:
    limit = settings.no_data_after
    firing = limit is not None and last_data_at is not None and now - last_data_at >= limit
    reasons = (
        (N_("no data since {since} UTC").format(since=f"{last_data_at:%Y-%m-%d %H:%M}"),)
        if firing and last_data_at
        else ()
    )
    return Signal(client_id=client_id, cause=Cause.SILENCE, firing=firing, urgency=Urgency.LOW, reasons=reasons)


def audience_signal(
    client_id: str, subject: str, metric: str, value: float, highest: float | None, settings: AlertingSettings
) -> Signal | None:
    """A fall of an account's figure from the window's highest by its configured drop; None if not watched."""
    drop = dict(settings.audience_drop).get(metric)
    if drop is None:
        return None
    fall = (highest - value) if highest is not None else 0.0
    firing = fall >= drop - 1e-9
    reasons = (
        (
            N_("{metric} {highest:g} -> {value:g} (-{fall:g}, threshold {drop:g})").format(
                metric=metric, highest=highest, value=value, fall=fall, drop=drop
            ),
        )
        if firing
        else ()
    )
    return Signal(
        client_id=client_id,
        cause=Cause.AUDIENCE,
        subject=f"{subject}:{metric}",
        firing=firing,
        urgency=Urgency.LOW,
        reasons=reasons,
    )
