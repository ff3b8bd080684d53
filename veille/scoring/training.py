"""Fit the per-language logistic regressions of the default scorer (needs scikit-learn).

Used by `veille sentiment train` and by scripts/train_default_model.py, which builds the bundled
model from the shared training split. Scoring never imports this module.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veille.core.i18n import N_
from veille.core.models import SentimentLabel
from veille.scoring.features import Vectorizer, all_grams
from veille.scoring.lexicon import load_resources
from veille.scoring.linear import CLASSES, Head, LinearModel
from veille.scoring.rules import Rules
from veille.scoring.text import Parsed, Tokenizer

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

LANGS = ("fr", "en")
MIN_ROWS = 30  # fewer labelled rows than this in a language: keep the previous head for it


class TrainingDataError(ValueError):
    """The training file cannot be used; the message says which line and why."""


@dataclass(frozen=True, slots=True)
class Example:
    lang: str
    label: SentimentLabel
    text: str


@dataclass(frozen=True, slots=True)
class Options:
    c: float = 1.0
    min_df: int = 2
    max_features: int = 150_000
    balance: float = 1.0  # class weight = (rows / (3 * class rows)) ** balance; 1 = "balanced", 0 = none


# Chosen on the dev split (bench/sentiment_eval.py); the model never saw its rows.
DEFAULT_OPTIONS = {"fr": Options(c=2.0, min_df=2), "en": Options(c=1.0, min_df=3)}


def read_tsv(path: Path) -> list[Example]:
    """Rows `id<TAB>lang<TAB>label<TAB>text` after one header line (the shared data's format)."""
    examples = []
    labels = {label.value for label in SentimentLabel}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t", 3)
            if number == 1 and parts[:3] == ["id", "lang", "label"]:
                continue
            if not line.strip():
                continue
            if len(parts) != 4:
                raise TrainingDataError(
                    N_("{path}:{number}: expected 4 tab-separated columns (id, lang, label, text)").format(
                        path=path, number=number
                    )
                )
            _, lang, label, text = parts
            if label not in labels:
                raise TrainingDataError(
                    N_("{path}:{number}: label {label!r} is not neg, neu or pos").format(
                        path=path, number=number, label=label
                    )
                )
            examples.append(Example(lang.strip().lower() or "und", SentimentLabel(label), text))
    return examples


class Trainer:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        res = load_resources()
        self.tokenizer = Tokenizer(res)
        self.rules = Rules(res)

    def head(self, examples: Sequence[Example]) -> Head:
        parsed = [self.tokenizer.parse(e.text) for e in examples]
        vectorizer = self._vocabulary(parsed)
        matrix = self._matrix(vectorizer, parsed)
        y = np.array([CLASSES.index(e.label) for e in examples])
        weights = self._fit(matrix, y)
        return Head(vectorizer, weights, len(examples))

    def _vocabulary(self, parsed: Sequence[Parsed]) -> Vectorizer:
        df: Counter[str] = Counter()
        for item in parsed:
            df.update(set(all_grams(item)))
        kept = [(gram, count) for gram, count in df.items() if count >= self.options.min_df]
        kept.sort(key=lambda gc: (-gc[1], gc[0]))
        kept = kept[: self.options.max_features]
        n = len(parsed)
        vocabulary = {gram: i for i, (gram, _) in enumerate(kept)}
        idf = [math.log((1 + n) / (1 + count)) + 1.0 for _, count in kept]
        return Vectorizer(vocabulary, idf)

    def _matrix(self, vectorizer: Vectorizer, parsed: Sequence[Parsed]) -> csr_matrix:
        from scipy.sparse import csr_matrix

        batch = vectorizer.transform(parsed, [self.rules.evaluate(item) for item in parsed])
        # The constant bias column is left to the solver's own (unpenalised) intercept.
        keep = batch.idx != vectorizer.n_features - 1
        return csr_matrix(
            (batch.val[keep], (batch.doc[keep], batch.idx[keep])), shape=(batch.size, vectorizer.n_features - 1)
        )

    def _fit(self, matrix: csr_matrix, y: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        present = sorted(set(y.tolist()))
        counts = np.bincount(y, minlength=len(CLASSES))
        # Balanced weights lift the rarer `neg` class (15 % of the English training tweets):
        # missing a complaint costs a community manager more than a false alarm.
        class_weight = {cls: (len(y) / (len(present) * counts[cls])) ** self.options.balance for cls in present}
        model = LogisticRegression(C=self.options.c, max_iter=2000, class_weight=class_weight)
        model.fit(matrix, y)
        weights = np.zeros((matrix.shape[1] + 1, len(CLASSES)))
        coef, intercept = model.coef_, model.intercept_
        if len(present) == 2:  # binary: sklearn returns one row for the second class
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        for row, cls in enumerate(present):
            weights[:-1, cls] = coef[row]
            weights[-1, cls] = intercept[row]
        for cls in set(range(len(CLASSES))) - set(present):
            weights[-1, cls] = -30.0  # a class never seen is never predicted
        return weights


def train_model(
    examples: Sequence[Example],
    *,
    base: LinearModel | None = None,
    options: dict[str, Options] | None = None,
    card: str = "",
    on_top: bool = True,
) -> tuple[LinearModel, dict[str, str]]:
    """One head per language with enough rows; other languages keep `base`'s head.

    With `on_top`, a new head is trained on top of `base`'s head for that language (their
    scores add up), so a few dozen labelled posts refine the base model rather than replace it.
    Returns the model and, per language, what happened ("trained on 812 rows", "kept ...").
    """
    options = {**DEFAULT_OPTIONS, **(options or {})}
    heads: dict[str, Head] = {}
    report: dict[str, str] = {}
    by_lang: dict[str, list[Example]] = {}
    for example in examples:
        lang = example.lang if example.lang in LANGS else "fr"
        by_lang.setdefault(lang, []).append(example)
    for lang in LANGS:
        rows = by_lang.get(lang, [])
        classes = {e.label for e in rows}
        if len(rows) >= MIN_ROWS and len(classes) >= 2:
            head = Trainer(options[lang]).head(rows)
            if on_top and base is not None and lang in base.heads:
                below = base.heads[lang]
                head.prior = below.prior or below  # never stack a retrained head on an older one
                report[lang] = N_("trained on {rows} rows, on top of the base model").format(rows=len(rows))
            else:
                report[lang] = N_("trained on {rows} rows").format(rows=len(rows))
            heads[lang] = head
        elif base is not None and lang in base.heads:
            heads[lang] = base.heads[lang]
            report[lang] = N_("kept the base model ({rows} rows, need {needed} with 2 labels)").format(
                rows=len(rows), needed=MIN_ROWS
            )
    if not heads:
        raise TrainingDataError(
            N_("not enough labelled rows: need at least {needed} in French or English").format(needed=MIN_ROWS)
        )
    return LinearModel(heads, card), report
