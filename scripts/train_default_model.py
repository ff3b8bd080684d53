"""Build the bundled model veille/scoring/model/default.json.gz from the shared training split.

    .venv/bin/python scripts/train_default_model.py ../shared/data/sentiment-train.tsv

Only the training split: the dev split is for checking (bench/sentiment_eval.py). The data is
research tweets (see ../shared/data/README.md and the model card in veille/scoring/default.py);
the model stores n-gram weights, never the texts.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from tests.support.paths import REPO_ROOT
from veille.scoring import default
from veille.scoring.training import read_tsv, train_model

OUTPUT = REPO_ROOT / "veille" / "scoring" / "model" / "default.json.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("train", type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    started = time.perf_counter()
    examples = read_tsv(args.train)
    digest = hashlib.sha256(args.train.read_bytes()).hexdigest()
    model, report = train_model(examples, card=(default.__doc__ or "").split("MODEL CARD", 1)[-1].strip())
    model.meta = {
        "trained_on": args.train.name,
        "sha256": digest,
        "rows": {lang: head.rows for lang, head in model.heads.items()},
    }
    model.save(args.output)
    for lang, line in report.items():
        print(f"{lang}: {line}, vocabulary {model.heads[lang].vectorizer.size}")
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
