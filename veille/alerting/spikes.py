"""Per-client spikes: is the recent window far above the client's own trailing baseline?

A Poisson tail test (P[X >= k] under the baseline rate) with absolute floors, because small
clients see near-zero volume: two posts in an hour against a baseline of zero is "infinitely"
unlikely, yet not a crisis. Pure functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

# With no history at all, assume about one hit per day so a first morning's trickle is no spike.
MIN_RATE_PER_HOUR = 1 / 24


def poisson_sf(k: int, lam: float) -> float:
    """P[X >= k] for X ~ Poisson(lam), computed in log space (stable for large k)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # P[X >= k] = 1 - sum_{i<k} e^-lam lam^i / i!; sum the upper tail directly when k > lam.
    if k > lam:
        log_term = -lam + k * math.log(lam) - math.lgamma(k + 1)
        total = 0.0
        i = k
        term = math.exp(log_term)
        while term > 1e-300 and i < k + 10_000:
            total += term
            i += 1
            term *= lam / i
            if term < total * 1e-16:
                break
        return min(1.0, total)
    cdf = 0.0
    term = math.exp(-lam)
    for i in range(k):
        cdf += term
        term *= lam / (i + 1)
    return max(0.0, 1.0 - cdf)


@dataclass(frozen=True, slots=True)
class SpikeVerdict:
    firing: bool
    count: int
    expected: float
    p_value: float

    @property
    def usual(self) -> int:
        """The expected count as a person says it: a whole number, 0 for "usually none"."""
        return round(self.expected)


def spike_test(
    recent: int,
    baseline: int,
    *,
    window: timedelta,
    baseline_span: timedelta,
    p_value: float,
    floor: int,
    same_hour: float | None = None,
) -> SpikeVerdict:
    """Recent count vs the count over the trailing baseline span (which excludes the window).

    `same_hour` is the mean count in the same window of the previous days, when history exists:
    the larger expectation wins, so a daily lunch rush is not a spike every day at noon.
    """
    hours = max(baseline_span.total_seconds() / 3600, 1e-6)
    rate = max(baseline / hours, MIN_RATE_PER_HOUR)
    expected = max(rate * window.total_seconds() / 3600, same_hour or 0.0)
    p = poisson_sf(recent, expected)
    return SpikeVerdict(recent >= floor and p < p_value, recent, expected, p)
