"""Risk of one hit: how likely it is the start of a bad buzz. Pure: facts in, a score out.

Negativity and crisis vocabulary are the *evidence* that a post is an attack; audience,
engagement and velocity are its *reach*. Risk is evidence scaled by reach, so a furious post
from a big account rings, a viral positive post never does, and an angry regular with 80
followers opens a quiet, low-urgency incident.

Two things stand in for figures a source does not give. Each source kind declares a *reach prior*
(a press article is read by many although its feed gives no count), the floor of the hit's reach.
And crisis words are graded: a severe one (health and safety, legal action, fraud) in a negative
post whose author's audience is unknown lifts its risk to SEVERE_FLOOR, above the default
risk_threshold, whatever its reach: "douze clients aux urgences" is an incident even in a feed.

A post in a language veille does not score (issue 16: Spanish, German...) has no negativity figure;
its crisis words stand in for it, so "doce clientes en urgencias" rings like its French twin while an
unscored post without crisis words counts neither as negative nor as positive.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from veille.core.i18n import N_
from veille.core.matching import fold
from veille.core.models import Engagement, SentimentLabel, SentimentResult

SEVERE_WEIGHT = 0.6  # share of full crisis evidence per severe word (health and safety, legal action, fraud)
COMPLAINT_WEIGHT = 0.4  # per other crisis word (bad service, shame, refund...)
SEVERE_FLOOR = 0.5  # risk of a negative post with a severe word and no audience figure (> risk_threshold 0.45)


class CrisisWords:
    """A compiled, accent-insensitive, word-boundary matcher (one regex, linear time).

    `severe` words are matched too and weigh more (see SEVERE_WEIGHT)."""

    def __init__(self, words: Iterable[str], severe: Iterable[str] = ()) -> None:
        severe_folded = {fold(w).strip() for w in severe if w.strip()}
        folded = sorted({fold(w).strip() for w in words if w.strip()} | severe_folded, key=len, reverse=True)
        self.words = tuple(folded)
        self.severe = frozenset(" ".join(w.split()) for w in severe_folded)
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

    def weight(self, found: Iterable[str]) -> float:
        """Crisis evidence of the words found, in [0, 1]: severe words count more."""
        return min(1.0, sum(SEVERE_WEIGHT if w in self.severe else COMPLAINT_WEIGHT for w in found))


@functools.lru_cache(maxsize=256)
def shared_crisis_words(words: tuple[str, ...], severe: tuple[str, ...]) -> CrisisWords:
    """One matcher per word list: the clients that add no words of their own share the default one. Building
    it (folding ~190 words, compiling one regex) cost a millisecond per client, inside the write transactions
    that open incidents for 1,000 clients at once (bench/alert_burst.py)."""
    return CrisisWords(words, severe)


@dataclass(frozen=True, slots=True)
class HitFacts:
    """What risk needs to know about a hit (built from a StoredHit or a replay line)."""

    text: str
    sentiment: SentimentResult | None
    direct: bool
    author_followers: int | None
    engagement: Engagement | None
    velocity_per_hour: float = 0.0  # engagement growth measured between observations
    reach_prior: float = 0.0  # the source kind's reach when the hit gives no figure (StoredHit.reach_prior)


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
    unscored = sentiment is not None and not sentiment.scored
    found = words.find(facts.text)
    negativity = max(0.0, -sentiment.score) if sentiment is not None else 0.0
    if unscored:
        negativity = words.weight(found)  # the only evidence there is (see the module's docstring)
    negative = sentiment is not None and (sentiment.label is SentimentLabel.NEG or sentiment.score <= -0.3)
    positive = sentiment is not None and sentiment.label is SentimentLabel.POS and sentiment.score >= 0.3
    crisis = 0.0 if positive and not negative else words.weight(found)
    evidence = min(1.0, 0.6 * negativity + 0.4 * crisis + (0.15 if facts.direct and (negative or found) else 0.0))
    audience = _log_scale(facts.author_followers or 0, 100_000)
    engaged = _log_scale(facts.engagement.total() if facts.engagement else 0, 1_000)
    velocity = _log_scale(facts.velocity_per_hour, 300)
    prior = min(1.0, max(0.0, facts.reach_prior))
    reach = max(audience, engaged, velocity, prior)
    value = round(evidence * (0.4 + 0.6 * reach), 4)
    severe = tuple(w for w in found if w in words.severe) if negative or unscored else ()
    if severe and facts.author_followers is None:
        value = max(value, SEVERE_FLOOR)  # a known small audience is a fact; an unknown one is not
    reasons: list[str] = []
    if unscored and sentiment is not None:
        reasons.append(sentiment.brief())  # "unscored (es)": why no negativity figure is given
    elif negativity >= 0.3:
        reasons.append(N_("negative {score:.2f}").format(score=-negativity))
    if severe:
        reasons.append(N_("severe: {words}").format(words=", ".join(severe)))
    if found and found != severe:
        reasons.append(N_("crisis words: {words}").format(words=", ".join(w for w in found if w not in severe)))
    if facts.direct:
        reasons.append(N_("addresses the client"))
    if audience >= 0.6:
        reasons.append(N_("{n} followers").format(n=facts.author_followers))
    if velocity >= 0.5:
        reasons.append(N_("spreading: +{rate:.0f} interactions/h").format(rate=facts.velocity_per_hour))
    elif engaged >= 0.5 and facts.engagement is not None:
        reasons.append(N_("{n} interactions").format(n=facts.engagement.total()))
    return Risk(value, bool(negative or (found and not positive)), found, tuple(reasons))


def velocity(first_total: int, first_at: datetime, total: int, at: datetime) -> float:
    """Engagement growth per hour between two observations (0 if too close to measure)."""
    hours = (at - first_at).total_seconds() / 3600
    if hours < 1 / 60 or total <= first_total:
        return 0.0
    return (total - first_total) / hours
