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


class ScorerLoadError(VeilleError):
    """The configured scorer cannot be loaded (missing extra, missing or damaged model): fix the config."""
