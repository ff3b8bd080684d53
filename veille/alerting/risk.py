"""Risk of one hit: how likely it is the start of a bad buzz. Pure: facts in, a score out.

Negativity and crisis vocabulary are the *evidence* that a post is an attack; audience,
engagement and velocity are its *reach*. Risk is evidence scaled by reach, so a furious post
from a big account rings, a viral positive post never does, and an angry regular with 80
followers opens a quiet, low-urgency incident.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from veille.core.matching import fold
from veille.core.models import Engagement, SentimentLabel, SentimentResult


class CrisisWords:
    """A compiled, accent-insensitive, word-boundary matcher (one regex, linear time)."""

    def __init__(self, words: Iterable[str]) -> None:
        folded = sorted({fold(w).strip() for w in words if w.strip()}, key=len, reverse=True)
        self.words = tuple(folded)
        if folded:
            alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in folded)
            self._pattern: re.Pattern[str] | None = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        else:
            self._pattern = None

    def find(self, text: str) -> tuple[str, ...]:
        if self._pattern is None:
            return ()
        found = dict.fromkeys(" ".join(m.group(0).split()) for m in self._pattern.finditer(fold(text)))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class HitFacts:
    """What risk needs to know about a hit (built from a StoredHit or a replay line)."""

    text: str
    sentiment: SentimentResult | None
    direct: bool
    author_followers: int | None
    engagement: Engagement | None
    velocity_per_hour: float = 0.0  # engagement growth measured between observations


@dataclass(frozen=True, slots=True)
class Risk:
    value: float  # in [0, 1]
    negative: bool
    crisis_words: tuple[str, ...]
    reasons: tuple[str, ...]


def _log_scale(value: float, full: float) -> float:
    """0 at 0, 1 at `full`, logarithmic in between (reach spans orders of magnitude)."""
    if value <= 0:
        return 0.0
    return min(1.0, math.log10(value + 1) / math.log10(full + 1))


def score_risk(facts: HitFacts, words: CrisisWords) -> Risk:
    sentiment = facts.sentiment
    negativity = max(0.0, -sentiment.score) if sentiment is not None else 0.0
    negative = sentiment is not None and (sentiment.label is SentimentLabel.NEG or sentiment.score <= -0.3)
    found = words.find(facts.text)
    positive = sentiment is not None and sentiment.label is SentimentLabel.POS and sentiment.score >= 0.3
    crisis = 0.0 if positive and not negative else min(1.0, 0.4 * len(found))
    evidence = min(1.0, 0.6 * negativity + 0.4 * crisis + (0.15 if facts.direct and (negative or found) else 0.0))
    audience = _log_scale(facts.author_followers or 0, 100_000)
    engaged = _log_scale(facts.engagement.total() if facts.engagement else 0, 1_000)
    velocity = _log_scale(facts.velocity_per_hour, 300)
    reach = max(audience, engaged, velocity)
    value = round(evidence * (0.4 + 0.6 * reach), 4)
    reasons: list[str] = []
    if negativity >= 0.3:
        reasons.append(f"negative {-negativity:.2f}")
    if found:
        reasons.append("crisis words: " + ", ".join(found))
    if facts.direct:
        reasons.append("addresses the client")
    if audience >= 0.6:
        reasons.append(f"{facts.author_followers} followers")
    if velocity >= 0.5:
        reasons.append(f"spreading: +{facts.velocity_per_hour:.0f} interactions/h")
    elif engaged >= 0.5 and facts.engagement is not None:
        reasons.append(f"{facts.engagement.total()} interactions")
    return Risk(value, bool(negative or (found and not positive)), found, tuple(reasons))


def velocity(first_total: int, first_at: datetime, total: int, at: datetime) -> float:
    """Engagement growth per hour between two observations (0 if too close to measure)."""
    hours = (at - first_at).total_seconds() / 3600
    if hours < 1 / 60 or total <= first_total:
        return 0.0
    return (total - first_total) / hours
