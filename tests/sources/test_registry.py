"""The registry and what every driver declares through DriverBase (issue 11: the reach prior)."""

from __future__ import annotations

import pytest

from veille.sources.registry import get_driver, known_kinds, reach_prior


@pytest.mark.parametrize("kind", known_kinds())
def test_every_driver_declares_a_reach_prior_on_the_risk_scale(kind: str) -> None:
    prior = get_driver(kind).reach_prior
    assert isinstance(prior, float) and 0.0 <= prior <= 1.0
    assert reach_prior(kind) == prior


def test_feeds_carry_a_prior_and_an_unknown_kind_none() -> None:
    # RSS, Google News and Google Alerts give no audience figure: without a prior they could never ring.
    assert reach_prior("rss") >= 0.7
    assert reach_prior("no-such-kind") == 0.0
