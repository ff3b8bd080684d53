"""The default scorer against the bar, on the shared dev split (human-labelled research tweets).

The dev split is never used for training (the bundled model is built from the train split only).
Speed is measured by bench/sentiment_eval.py, not asserted here.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, requires_shared
from veille.scoring import load_scorer
from veille.scoring.settings import SentimentSettings
from veille.scoring.training import read_tsv

pytestmark = [pytest.mark.shared, requires_shared]

DEV = SHARED / "data" / "sentiment-dev.tsv"
BAR = {"fr": (0.60, 0.66), "en": (0.63, 0.66)}  # (macro-F1, neg-F1), from issue 4


def f1(gold: list[str], pred: list[str], label: str) -> float:
    tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
    predicted, actual = pred.count(label), gold.count(label)
    if not tp:
        return 0.0
    precision, recall = tp / predicted, tp / actual
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_default_scorer_meets_the_bar_on_dev(lang: str) -> None:
    if not DEV.is_file():
        pytest.skip(f"{DEV} is absent")
    rows = [e for e in read_tsv(DEV) if e.lang == lang]
    scorer = load_scorer(SentimentSettings(), data_dir=None)
    results = scorer.score_batch([e.text for e in rows])
    gold = [e.label.value for e in rows]
    pred = [r.label.value if r.label else "unscored" for r in results]
    macro = sum(f1(gold, pred, label) for label in ("neg", "neu", "pos")) / 3
    neg = f1(gold, pred, "neg")
    want_macro, want_neg = BAR[lang]
    assert macro >= want_macro, f"{lang} macro-F1 {macro:.3f} < {want_macro}"
    assert neg >= want_neg, f"{lang} neg-F1 {neg:.3f} < {want_neg}"
    detected = sum(r.lang == lang for r in results) / len(rows)
    assert detected >= 0.9
