"""The default scorer on customer language: the regression set written for veille (issue 16).

customer_sentiment.tsv holds 305 French and 111 English texts written for this project (not copied from
anywhere; same licence as veille): complaints, reproaches ("vous auriez au moins pu répondre"), questions
(neutral unless they complain), sarcasm with markers (#ironie, 🙃, 🙄), thanks, emoji-only comments and
SMS spelling, about restaurants, shops, an osteopath, clothing, a hairdresser, a garage. They were
labelled before the scorer saw them, and no model is trained on them: the whole file is held out.
`bench/sentiment_eval.py tests/scoring/customer_sentiment.tsv` prints the full table.

The floors sit a little under the figures measured when the set was written, so that a change that makes
the scorer worse at its real job fails here even if it helps on research tweets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veille.core.models import SentimentLabel
from veille.scoring import load_scorer
from veille.scoring.settings import SentimentSettings
from veille.scoring.training import Example, read_tsv

CUSTOMER_SET = Path(__file__).with_name("customer_sentiment.tsv")
# lang -> (accuracy, negative-class F1), each a little under the figure measured with the bundled model.
FLOORS = {"fr": (0.79, 0.80), "en": (0.85, 0.87)}


def negative_f1(gold: list[SentimentLabel], predicted: list[SentimentLabel]) -> float:
    hits = sum(g is p is SentimentLabel.NEG for g, p in zip(gold, predicted, strict=True))
    said, actual = predicted.count(SentimentLabel.NEG), gold.count(SentimentLabel.NEG)
    return 2 * hits / (said + actual) if said + actual else 0.0


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return read_tsv(CUSTOMER_SET)


def test_the_set_is_big_and_varied_enough(examples: list[Example]) -> None:
    for lang, least in (("fr", 300), ("en", 100)):
        rows = [e for e in examples if e.lang == lang]
        assert len(rows) >= least
        assert all(sum(e.label is label for e in rows) >= len(rows) / 5 for label in SentimentLabel)
    assert len({e.text for e in examples}) == len(examples)


@pytest.mark.parametrize("lang", sorted(FLOORS))
def test_the_bundled_scorer_stays_above_its_floors(examples: list[Example], lang: str) -> None:
    rows = [e for e in examples if e.lang == lang]
    results = load_scorer(SentimentSettings(), data_dir=None).score_batch([e.text for e in rows])
    gold, predicted = [e.label for e in rows], [r.label for r in results]
    accuracy = sum(g is p for g, p in zip(gold, predicted, strict=True)) / len(rows)
    least_accuracy, least_negative_f1 = FLOORS[lang]
    misses = [(e.text, r.label, r.lang) for e, r in zip(rows, results, strict=True) if e.label != r.label]
    assert accuracy >= least_accuracy, misses
    assert negative_f1(gold, predicted) >= least_negative_f1
