"""The scorer interface. The pipeline calls `score_batch` on each batch of new hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from veille.models import SentimentResult


@runtime_checkable
class Scorer(Protocol):
    name: str

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        """One result per text, in order. Must be linear in input size and never raise on odd text."""
        ...
