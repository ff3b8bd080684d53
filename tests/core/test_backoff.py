"""The one retry policy: schedule, cap, jitter ranges, floor and the server's Retry-After."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veille.core.backoff import EQUAL, EXACT, FULL, MIN_RETRY_AFTER, BackoffPolicy, later

JITTERS = st.sampled_from([EXACT, EQUAL, FULL, later(0.1), later(0.5)])


def test_the_schedule_grows_by_the_factor_from_the_base_up_to_the_cap() -> None:
    policy = BackoffPolicy(base=5.0, cap=300.0)
    assert [policy.delay(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert BackoffPolicy(base=1.0, cap=100.0, factor=3.0).scheduled(4) == 27.0


def test_attempts_below_one_count_as_the_first_and_huge_counts_stay_at_the_cap() -> None:
    policy = BackoffPolicy(base=600.0, cap=86_400.0, factor=10.0)
    assert policy.scheduled(0) == policy.scheduled(-3) == policy.scheduled(1) == 600.0
    assert policy.scheduled(10_000) == 86_400.0  # 10.0 ** 9999 overflows a float: still the cap


@given(
    base=st.floats(0.01, 1e4),
    cap=st.floats(0.01, 1e6),
    factor=st.floats(1.0, 10.0),
    jitter=JITTERS,
    attempt=st.integers(-5, 5000),
    seed=st.integers(0, 2**32),
)
def test_every_delay_lies_within_the_jitter_range_of_the_capped_schedule(
    base: float, cap: float, factor: float, jitter: tuple[float, float], attempt: int, seed: int
) -> None:
    policy = BackoffPolicy(base=base, cap=cap, factor=factor, jitter=jitter)
    scheduled = policy.scheduled(attempt)
    assert scheduled == min(cap, scheduled) and scheduled <= max(base, cap) and math.isfinite(scheduled)
    delay = policy.delay(attempt, rng=random.Random(seed))
    low, high = jitter
    assert scheduled * low <= delay <= scheduled * high


def test_jitter_spreads_delays_over_its_whole_range() -> None:
    rng = random.Random(7)
    equal = [BackoffPolicy(base=10.0, cap=10.0, jitter=EQUAL).delay(1, rng=rng) for _ in range(2000)]
    full = [BackoffPolicy(base=10.0, cap=10.0, jitter=FULL).delay(1, rng=rng) for _ in range(2000)]
    assert 5.0 <= min(equal) < 5.1 and 9.9 < max(equal) <= 10.0
    assert 0.0 <= min(full) < 0.1 and 9.9 < max(full) <= 10.0
    assert min(BackoffPolicy(base=10.0, cap=10.0, jitter=later(0.1)).delay(1, rng=rng) for _ in range(200)) >= 10.0


def test_the_same_seed_gives_the_same_delays() -> None:
    policy = BackoffPolicy(base=1.0, cap=30.0, jitter=FULL)
    first = [policy.delay(n, rng=random.Random(42)) for n in range(1, 8)]
    assert first == [policy.delay(n, rng=random.Random(42)) for n in range(1, 8)]
    assert len(set(first)) > 1


def test_the_floor_holds_whatever_the_jitter_draws() -> None:
    policy = BackoffPolicy(base=5.0, cap=300.0, jitter=FULL, floor=5.0)
    rng = random.Random(3)
    delays = [policy.delay(n, rng=rng) for n in (1, 1, 1, 2, 2, 2) * 50]
    assert min(delays) == 5.0 and max(delays) <= 10.0


def test_retry_after_wins_over_the_schedule_cap_floor_and_downward_jitter() -> None:
    policy = BackoffPolicy(base=5.0, cap=60.0, jitter=FULL, floor=5.0)
    rng = random.Random(0)
    assert policy.delay(1, rng=rng, retry_after=3600.0) == 3600.0  # longer than the loop's own cap
    assert policy.delay(9, rng=rng, retry_after=2.0) == 2.0  # shorter than its schedule and floor
    assert policy.delay(1, rng=rng, retry_after=0.0) == MIN_RETRY_AFTER  # "now" does not spin the loop
    assert policy.delay(1, rng=rng, retry_after=-30.0) == MIN_RETRY_AFTER


@given(retry_after=st.floats(0.0, 1e7), share=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_retry_after_is_only_ever_lengthened_by_its_jitter_and_stops_at_its_cap(
    retry_after: float, share: float, seed: int
) -> None:
    policy = BackoffPolicy(base=1.0, cap=10.0, retry_after_jitter=later(share), retry_after_cap=86_400.0)
    wait = max(min(retry_after, 86_400.0), MIN_RETRY_AFTER)
    assert wait <= policy.delay(1, rng=random.Random(seed), retry_after=retry_after) <= wait * (1 + share)


@pytest.mark.parametrize(
    "fields",
    [
        {"base": -1.0, "cap": 10.0},
        {"base": 1.0, "cap": -1.0},
        {"base": 1.0, "cap": 10.0, "floor": -1.0},
        {"base": 1.0, "cap": 10.0, "factor": 0.5},
        {"base": 1.0, "cap": 10.0, "jitter": (1.0, 0.5)},
        {"base": 1.0, "cap": 10.0, "jitter": (-0.1, 1.0)},
        {"base": 1.0, "cap": 10.0, "retry_after_jitter": EQUAL},  # would wake before the server allows
    ],
)
def test_a_policy_that_cannot_hold_is_refused_at_construction(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**fields)  # type: ignore[arg-type]
