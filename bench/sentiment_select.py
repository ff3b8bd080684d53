"""Compare training options of the default scorer on the training split only (issue 16).

    .venv/bin/python bench/sentiment_select.py ../shared/data/sentiment-train.tsv \\
        [--lang fr|en] [--seeds 3] [--try 'fr:c=1,min_df=1' --try 'en:c=1,balance=0.5']

The dev split is for checking the bundled model (bench/sentiment_eval.py), never for choosing: this script is
how the options in veille/scoring/training.py DEFAULT_OPTIONS are chosen. French (1,333 tweets): stratified
5-fold cross-validation, repeated with `--seeds` shuffles (one shuffle's macro-F1 moves by about 0.01 from
another's, which is larger than most option changes). English: fitted on the 2013-2015 tweets and the 2016
train / dev sets, held out on the 2016 test tweets (20,506, the newest ones).

Each fold's head is trained by veille.scoring.training.Trainer and scored by the real DefaultScorer (the
question rule, emoji-only posts, language routing), so a figure here is what the bundled model would do.
Besides macro-F1 and neg-F1, "balanced" gives both with each class weighing the same: the held-out tweets'
class shares differ from the split's (16 % neg in the 2016 tweets, about 32 % in SemEval-2017's), and an
option that wins only by matching one file's shares is not a better model of the language.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from veille.scoring.default import DefaultScorer  # noqa: E402
from veille.scoring.lexicon import load_resources  # noqa: E402
from veille.scoring.linear import CLASSES, LinearModel  # noqa: E402
from veille.scoring.training import DEFAULT_OPTIONS, Example, Options, Trainer, read_tsv  # noqa: E402

LABELS = [c.value for c in CLASSES]
HELD_OUT_EN = "2016test"  # in the ids of the English rows: semeval-en-twitter-2016test-NNNNN


def figures(gold: Sequence[str], pred: Sequence[str], *, balanced: bool) -> tuple[float, float]:
    """(macro-F1, neg-F1); with `balanced`, each row weighs 1 / (its class's share), so every class counts the same."""
    g, p = np.array(gold), np.array(pred)
    weight = np.ones(len(g))
    if balanced:
        for label in LABELS:
            inside = g == label
            weight[inside] = len(g) / (len(LABELS) * max(1, int(inside.sum())))
    f1 = []
    for label in LABELS:
        tp = weight[(g == label) & (p == label)].sum()
        predicted, actual = weight[p == label].sum(), weight[g == label].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(f1)), f1[0]


def predict(
    scorer: DefaultScorer, lang: str, fit: Sequence[Example], held: Sequence[Example], opts: Options
) -> list[str]:
    """Labels of the held-out rows by a head trained on the fit rows only (a stacker, if any, on their folds)."""
    scorer.model = LinearModel({lang: Trainer(opts).head(fit)})
    return [r.label.value if r.label else "unscored" for r in scorer.score_batch([e.text for e in held])]


def runs(rows: list[tuple[str, Example]], lang: str, seeds: int) -> list[tuple[list[Example], list[Example]]]:
    """(fit, held-out) pairs: the 2016 test tweets for English, repeated 5-fold splits for French."""
    if lang == "en":
        fit = [e for row_id, e in rows if HELD_OUT_EN not in row_id]
        return [(fit, [e for row_id, e in rows if HELD_OUT_EN in row_id])]
    examples = [e for _, e in rows]
    labels = [e.label.value for e in examples]
    out = []
    for seed in range(seeds):
        for fit, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels):
            out.append(([examples[i] for i in fit], [examples[i] for i in held]))
    return out


def parse_try(text: str) -> tuple[str, Options]:
    """'fr:c=1,min_df=1' -> ("fr", DEFAULT_OPTIONS["fr"] with those fields replaced)."""
    lang, _, fields = text.partition(":")
    types = {f.name: f.type for f in dataclasses.fields(Options)}
    changes: dict[str, float | int] = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--try {text!r}: {key!r} is not one of {', '.join(types)}")
        changes[key] = int(value) if types[key] in (int, "int") else float(value)
    return lang, dataclasses.replace(DEFAULT_OPTIONS[lang], **changes)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train", type=Path)
    parser.add_argument("--lang", choices=("fr", "en"), action="append", help="default: both")
    parser.add_argument("--seeds", type=int, default=3, help="French cross-validation shuffles")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="LANG:KEY=VALUE,...")
    args = parser.parse_args()
    ids = [line.split("\t", 1)[0] for line in args.train.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    examples = read_tsv(args.train)
    scorer = DefaultScorer(LinearModel({}), resources=load_resources())
    candidates = [("default", lang, DEFAULT_OPTIONS[lang]) for lang in ("fr", "en")]
    candidates += [(text, *parse_try(text)) for text in args.tries]
    print(f"{'lang':<5}{'options':<44}{'macroF1':>9}{'negF1':>7}{'balanced':>10}{'negF1':>7}{'seconds':>9}")
    for name, lang, opts in candidates:
        if args.lang and lang not in args.lang:
            continue
        rows = [(row_id, e) for row_id, e in zip(ids, examples, strict=True) if e.lang == lang]
        started = time.perf_counter()
        gold: list[str] = []
        pred: list[str] = []
        for fit, held in runs(rows, lang, args.seeds):
            gold += [e.label.value for e in held]
            pred += predict(scorer, lang, fit, held, opts)
        macro, neg = figures(gold, pred, balanced=False)
        balanced_macro, balanced_neg = figures(gold, pred, balanced=True)
        print(
            f"{lang:<5}{name:<44}{macro:>9.3f}{neg:>7.3f}{balanced_macro:>10.3f}{balanced_neg:>7.3f}"
            f"{time.perf_counter() - started:>9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
