"""Batches scored in slices of bounded length (veille.scoring.base.score_in_slices): same answers, bounded memory."""

from __future__ import annotations

from collections.abc import Sequence

from veille.core.models import SentimentResult
from veille.scoring.base import score_in_slices
from veille.scoring.loader import load_scorer
from veille.scoring.settings import SentimentSettings


class Recording:
    """A scorer that remembers the batches it was given (each text's length as its score)."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        self.batches.append(list(texts))
        return [SentimentResult(None, float(len(t)), "fr", ()) for t in texts]


def test_slices_keep_the_order_and_stay_under_the_limit_with_one_text_at_least() -> None:
    texts = ["a" * 30, "b" * 30, "c" * 50, "d" * 120, "e" * 10, "f" * 10, "g" * 79]
    scorer = Recording()
    results = score_in_slices(scorer, texts, limit=80)
    assert [r.score for r in results] == [float(len(t)) for t in texts]
    assert [len("".join(b)) for b in scorer.batches] == [60, 50, 120, 20, 79]  # the long text goes alone
    assert [t for b in scorer.batches for t in b] == texts
    assert score_in_slices(scorer, [], limit=80) == []


def test_the_bundled_scorer_answers_the_same_in_slices_as_in_one_batch() -> None:
    scorer = load_scorer(SentimentSettings(), data_dir=None)
    texts = [
        "Intoxication alimentaire chez Gégé, trois personnes aux urgences. " * 8,
        "super accueil, je recommande 😍",
        "jsui vennu hier yavè plu de pizzza gétai dégoutè 😥",
        "The waiter was rude and the food was cold.",
        "Le tapis est arrivé en avance, merci ! " * 20,
        "??",
    ] * 5
    assert score_in_slices(scorer, texts, limit=700) == scorer.score_batch(texts)
