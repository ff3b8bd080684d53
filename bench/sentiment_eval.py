"""Evaluate a sentiment scorer on a labelled TSV (id, lang, label, text) and print a table.

    .venv/bin/python bench/sentiment_eval.py ../shared/data/sentiment-dev.tsv
        [--model-path FILE] [--scorer transformer --model-path DIR]

Per language: accuracy, macro-F1, precision / recall / F1 of `neg` (bad buzz is what matters),
and texts per second on one core (CPU time; wall-clock alongside), batched and one at a time. Also times one adversarial
1 MB single-line text (RELIABILITY E12).
"""

from __future__ import annotations

import os

# One core, as on the CI machine and a small VPS: set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from veille.scoring.loader import load_scorer  # noqa: E402
from veille.scoring.settings import SentimentSettings  # noqa: E402
from veille.scoring.training import read_tsv  # noqa: E402

LABELS = ("neg", "neu", "pos")


def prf(gold: list[str], pred: list[str], label: str) -> tuple[float, float, float]:
    tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
    predicted = sum(p == label for p in pred)
    actual = sum(g == label for g in gold)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def throughput(scorer, texts: list[str], *, batch: int) -> tuple[float, float]:
    """(texts per CPU second, texts per wall-clock second). CPU time is what one core can do even
    when other processes share the machine; wall-clock time is what you saw."""
    rounds = max(1, 3000 // max(1, len(texts)))
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _ in range(rounds):
        for start in range(0, len(texts), batch):
            scorer.score_batch(texts[start : start + batch])
        count += len(texts)
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tsv", type=Path)
    parser.add_argument("--scorer", default="default", choices=("default", "transformer"))
    parser.add_argument("--model-path", help="a trained model file (default) or model directory (transformer)")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    started = time.perf_counter()
    scorer = load_scorer(SentimentSettings(scorer=args.scorer, model_path=args.model_path), data_dir=None)
    load_seconds = time.perf_counter() - started
    print(f"scorer {scorer.name} ({getattr(scorer, 'origin', args.model_path)}), loaded in {load_seconds:.2f} s")

    examples = read_tsv(args.tsv)
    header = (
        f"{'lang':<5}{'rows':>6}{'acc':>7}{'macroF1':>9}{'negP':>7}{'negR':>7}{'negF1':>7}"
        f"{'lang ok':>9}{'texts/s batch':>15}{'texts/s one':>13}{'(wall: batch / one)':>22}"
    )
    print(header)
    print("-" * len(header))
    for lang in sorted({e.lang for e in examples}):
        rows = [e for e in examples if e.lang == lang]
        texts = [e.text for e in rows]
        gold = [e.label.value for e in rows]
        results = scorer.score_batch(texts)
        pred = [r.label.value for r in results]
        accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(rows)
        macro = sum(prf(gold, pred, label)[2] for label in LABELS) / len(LABELS)
        neg_p, neg_r, neg_f = prf(gold, pred, "neg")
        lang_ok = sum(r.lang == lang for r in results) / len(rows)
        batched, batched_wall = throughput(scorer, texts, batch=args.batch)
        single, single_wall = throughput(scorer, texts[:300], batch=1)
        print(
            f"{lang:<5}{len(rows):>6}{accuracy:>7.3f}{macro:>9.3f}{neg_p:>7.3f}{neg_r:>7.3f}{neg_f:>7.3f}"
            f"{lang_ok:>9.1%}{batched:>15,.0f}{single:>13,.0f}{f'{batched_wall:,.0f} / {single_wall:,.0f}':>22}"
        )

    adversarial = ("😥a:(" * 250_000)[:1_000_000]
    started = time.perf_counter()
    scorer.score_batch([adversarial, "x" * 1_000_000, "pas " * 250_000])
    print(f"E12: three 1 MB single-line texts scored in {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
