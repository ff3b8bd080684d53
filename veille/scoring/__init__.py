"""Sentiment scoring: pure functions of text, no I/O besides loading the model once.

The daemon calls `load_scorer(config.sentiment, data_dir=data_dir(config.database_url))`
once at start, then `scorer.score_batch(texts)` on each batch of new hits in a worker thread.
"""

from __future__ import annotations

from veille.scoring.base import Scorer, ScorerLoadError
from veille.scoring.loader import load_scorer, trained_model_path

__all__ = ["Scorer", "ScorerLoadError", "load_scorer", "trained_model_path"]
