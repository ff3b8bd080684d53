"""The scorer interface. The pipeline calls `score_batch` on each batch of new hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from veille.core.errors import VeilleError
from veille.core.models import SentimentResult


@runtime_checkable
class Scorer(Protocol):
    name: str

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        """One result per text, in order. Must be linear in input size and never raise on odd text."""
        ...


# A batch's working memory grows with its total length (the n-grams of every text at once): scored in slices
# of at most this many characters, 500 article excerpts peaked the scoring helper at 280 MB, not 130 MB; and
# 25,000 rather than 50,000 takes 8 MB more off its peak (issue 12) for a few % of speed on article excerpts.
SLICE_CHARACTERS = 25_000


def score_in_slices(scorer: Scorer, texts: Sequence[str], limit: int = SLICE_CHARACTERS) -> list[SentimentResult]:
    """`scorer.score_batch` over consecutive slices of at most `limit` characters (one text at least):
    the same results, a bounded peak. Short posts still go hundreds at a time."""
    results: list[SentimentResult] = []
    start = 0
    while start < len(texts):
        end, size = start + 1, len(texts[start])
        while end < len(texts) and size + len(texts[end]) <= limit:
            size += len(texts[end])
            end += 1
        results.extend(scorer.score_batch(texts[start:end]))
        start = end
    return results


class ScorerLoadError(VeilleError):
    """The configured scorer cannot be loaded (missing extra, missing or damaged model): fix the config."""
