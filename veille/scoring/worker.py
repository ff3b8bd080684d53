"""The scoring helper process: `python -m veille.scoring.worker READ_FD WRITE_FD SETTINGS_JSON DATA_DIR`.

Started by `veille.scoring.process.ScoringProcess`. It loads the configured scorer once (the same
`load_scorer` the CLI uses), says `ready` (or `error` and why), then answers requests: a JSON list
of texts in, a JSON list of `[label, score, lang, reasons]` out. An empty message means "exit".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from veille.core.workerproc import helper_pipes, incoming, run_helper


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    requests, replies = helper_pipes(int(args[0]), int(args[1]))
    settings_json, data_dir = args[2], args[3]
    from veille.scoring.base import ScorerLoadError, score_in_slices
    from veille.scoring.loader import load_scorer
    from veille.scoring.settings import SentimentSettings

    try:
        scorer = load_scorer(
            SentimentSettings(**json.loads(settings_json)), data_dir=Path(data_dir) if data_dir else None
        )
    except ScorerLoadError as exc:
        replies.send_bytes(json.dumps(["error", str(exc)]).encode())
        return 2
    replies.send_bytes(json.dumps(["ready", scorer.name]).encode())
    for message in incoming(requests):
        results = score_in_slices(scorer, json.loads(message))
        replies.send_bytes(
            json.dumps(
                [[r.label and r.label.value, r.score, r.lang, list(r.reasons)] for r in results], separators=(",", ":")
            ).encode()
        )
    return 0


if __name__ == "__main__":
    run_helper(main)
