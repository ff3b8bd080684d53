"""Precision and recall of the reply inbox's "needs an answer" rules on labelled lists.

    .venv/bin/python bench/inbox_eval.py [LIST.tsv ...] [--errors]

Without a path: the list the rules were tuned on (needs_answer.tsv) and the two held-out lists
(needs_answer_heldout.tsv, needs_answer_heldout2.tsv: the second written and labelled before the rules were
run on it, never tuned on). The TSV has `label<TAB>kind<TAB>text` (label 1: needs an answer); lines starting
with # are comments. Prints the figures overall and per kind, and with --errors every text the rules get wrong.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from veille.alerting.replies import needs_answer

LISTS = Path(__file__).resolve().parent.parent / "tests" / "alerting"
DEFAULT = [LISTS / name for name in ("needs_answer.tsv", "needs_answer_heldout.tsv", "needs_answer_heldout2.tsv")]


def read_rows(path: Path) -> list[tuple[bool, str, str]]:
    """(needs an answer, kind, text) per labelled line."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, kind, text = line.split("\t", 2)
        rows.append((label == "1", kind, text))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--errors", action="store_true", help="list the texts the rules get wrong")
    args = parser.parse_args()
    for number, path in enumerate(args.paths):
        if number:
            print()
        report(path, errors=args.errors)


def report(path: Path, *, errors: bool) -> None:
    """The figures of one list."""
    rows = read_rows(path)
    started = time.process_time()
    verdicts = [needs_answer(text) for _, _, text in rows]
    cpu = time.process_time() - started
    counts: Counter[str] = Counter()
    wrong_by_kind: Counter[str] = Counter()
    total_by_kind: Counter[str] = Counter()
    wrong = []
    for (truth, kind, text), verdict in zip(rows, verdicts, strict=True):
        counts["tp" if truth and verdict else "fp" if verdict else "fn" if truth else "tn"] += 1
        total_by_kind[kind] += 1
        if truth != verdict:
            wrong_by_kind[kind] += 1
            wrong.append(f"  {'missed' if truth else 'false alarm'}\t{kind}\t{text}")
    precision = counts["tp"] / max(1, counts["tp"] + counts["fp"])
    recall = counts["tp"] / max(1, counts["tp"] + counts["fn"])
    print(f"{len(rows)} messages ({counts['tp'] + counts['fn']} need an answer), {path.name}")
    print(
        f"needs an answer: precision {precision:.3f}  recall {recall:.3f}  "
        f"F1 {2 * precision * recall / max(1e-9, precision + recall):.3f}"
    )
    print(f"confusion: tp {counts['tp']}  fp {counts['fp']}  fn {counts['fn']}  tn {counts['tn']}")
    print("errors per kind: " + ", ".join(f"{k} {wrong_by_kind[k]}/{n}" for k, n in sorted(total_by_kind.items())))
    print(f"CPU: {cpu * 1e6 / max(1, len(rows)):.0f} µs per message")
    if errors and wrong:
        print("\n".join(wrong))


if __name__ == "__main__":
    main()
