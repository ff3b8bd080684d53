"""The daemon's scorer, run in a helper process so that scoring uses the other core.

Scoring a batch is pure CPU (tokenising, rules, a linear model or a transformer) and the daemon's
own process is single-threaded where it matters: its event loop polls every source and its writer
stores what they found. Run there, scoring took a fifth of that process's time and its model 36 MB
of its memory. `ScoringProcess` keeps the model in one helper (`veille.scoring.worker`) and
implements the same `Scorer` interface; the writer thread blocks on the pipe (releasing the GIL)
while the helper scores. A helper that dies or hangs is replaced and the batch tried once more. If
that fails too (a helper killed by the OOM killer in a loop, say), the daemon does not stop storing
hits: it scores in its own process for FALLBACK_SECONDS, with one ERROR line, then tries a helper
again. Scores are the same either way; only where the CPU and memory go changes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from veille.core.errors import VeilleError
from veille.core.models import SentimentLabel, SentimentResult
from veille.core.workerproc import Helper
from veille.scoring.base import Scorer, ScorerLoadError
from veille.scoring.loader import load_scorer
from veille.scoring.settings import SentimentSettings

log = logging.getLogger("veille.scoring.process")

START_TIMEOUT = 120.0  # importing numpy and loading a model; a transformer takes longer
BATCH_TIMEOUT = 120.0  # plus PER_TEXT_TIMEOUT per text: detects a hung helper, does not bound speed
PER_TEXT_TIMEOUT = 0.2
FALLBACK_SECONDS = 600.0  # in-process scoring after a helper failed twice, before trying one again


class ScorerUnavailable(VeilleError):
    """The scoring helper did not answer (exited, hung, or said something unreadable)."""


class ScoringProcess:
    """A `Scorer` whose model lives in a helper process. Call `start()` once, `close()` at the end."""

    module = "veille.scoring.worker"

    def __init__(self, settings: SentimentSettings, *, data_dir: Path | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.name = "?"
        self.restarts = 0
        self._helper = Helper(self.module, json.dumps(asdict(settings)), str(data_dir or ""))
        self._lock = threading.Lock()  # one batch at a time through the pipes
        self._fallback: Scorer | None = None
        self._ready = False  # the helper said "ready" (its model is loaded)
        self._fallback_until: float | None = None

    def launch(self) -> ScoringProcess:
        """Start the helper without waiting: it loads its model while the daemon sets up the rest."""
        with self._lock:
            if self._helper.process is None:
                self._helper.spawn()
        return self

    def start(self) -> ScoringProcess:
        """Start the helper (unless launched) and wait until its model is loaded; ScorerLoadError if it cannot."""
        with self._lock:
            if not self._ready:
                self._start()
        return self

    def _start(self) -> None:
        if self._helper.process is None:
            self._helper.spawn()
        try:
            status, detail = self._receive(START_TIMEOUT)
        except ScorerUnavailable as exc:
            self._kill()
            raise ScorerLoadError(f"the sentiment scorer process did not start ({exc})") from None
        if status != "ready":
            self._kill()
            raise ScorerLoadError(str(detail))
        self.name = str(detail)
        self._ready = True

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        if not texts:
            return []
        with self._lock:
            if self._fallback_until is not None and time.monotonic() < self._fallback_until:
                return self._in_process().score_batch(texts)
            message = json.dumps(list(texts)).encode()
            for attempt in (1, 2):
                try:
                    return self._round_trip(message, len(texts))
                except (ScorerUnavailable, ScorerLoadError, OSError, ValueError) as exc:
                    self._kill()
                    self.restarts += 1
                    if attempt == 1:
                        log.warning("sentiment scorer process failed (%s); restarting it", exc)
                    else:
                        log.error(
                            "sentiment scorer process failed again (%s); scoring in the daemon's own "
                            "process for the next %.0f minutes",
                            exc,
                            FALLBACK_SECONDS / 60,
                        )
            self._fallback_until = time.monotonic() + FALLBACK_SECONDS
            return self._in_process().score_batch(texts)

    def _round_trip(self, message: bytes, count: int) -> list[SentimentResult]:
        if not self._ready:
            self._start()
        assert self._helper.requests is not None
        self._helper.requests.send_bytes(message)
        rows = self._receive(BATCH_TIMEOUT + PER_TEXT_TIMEOUT * count)
        if not isinstance(rows, list) or len(rows) != count:
            raise ScorerUnavailable("an answer of the wrong length")
        return [
            SentimentResult(SentimentLabel(label) if label else None, float(score), str(lang), tuple(reasons))
            for label, score, lang, reasons in rows
        ]

    def _in_process(self) -> Scorer:
        """The same scorer, loaded here on first need (it was checked loadable by the helper at start)."""
        if self._fallback is None:
            self._fallback = load_scorer(self.settings, data_dir=self.data_dir)
        return self._fallback

    @property
    def degraded(self) -> bool:
        """True while scoring runs in the daemon's process because the helper kept failing."""
        return self._fallback_until is not None and time.monotonic() < self._fallback_until

    def _receive(self, timeout: float) -> Any:
        replies = self._helper.replies
        assert replies is not None
        try:
            if not replies.poll(timeout):
                raise ScorerUnavailable(f"no answer within {timeout:.0f} s")
            return json.loads(replies.recv_bytes())
        except (EOFError, OSError) as exc:
            raise ScorerUnavailable(f"the process exited ({type(exc).__name__})") from None

    def _kill(self) -> None:
        self._ready = False
        self._helper.kill()

    def close(self) -> None:
        """Ask the helper to exit, then make sure it has."""
        with self._lock:
            self._ready = False
            self._helper.stop(grace=2)

    @property
    def pid(self) -> int | None:
        return self._helper.pid
