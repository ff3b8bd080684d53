"""The scoring helper process: `python -m veille.scoring.worker READ_FD WRITE_FD SETTINGS_JSON DATA_DIR`.

Started by `veille.scoring.process.ScoringProcess`. It loads the configured scorer once (the same
`load_scorer` the CLI uses), says `ready` (or `error` and why), then answers requests: a JSON list
of texts in, a JSON list of `[label, score, lang, reasons]` out. An empty message means "exit".
"""

from __future__ import annotations

import json
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from veille.workerproc import run_helper


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    read_fd, write_fd, settings_json, data_dir = int(args[0]), int(args[1]), args[2], args[3]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the daemon decides
    requests = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    from veille.scoring.loader import ScorerLoadError, load_scorer
    from veille.scoring.settings import SentimentSettings

    try:
        scorer = load_scorer(SentimentSettings(**json.loads(settings_json)),
                             data_dir=Path(data_dir) if data_dir else None)
    except ScorerLoadError as exc:
        replies.send_bytes(json.dumps(["error", str(exc)]).encode())
        return 2
    replies.send_bytes(json.dumps(["ready", scorer.name]).encode())
    while True:
        try:
            message = requests.recv_bytes()
        except (EOFError, OSError):
            return 0
        if not message:
            return 0
        results = scorer.score_batch(json.loads(message))
        replies.send_bytes(json.dumps([[r.label.value, r.score, r.lang, list(r.reasons)] for r in results],
                                      separators=(",", ":")).encode())


if __name__ == "__main__":
    run_helper(main)
