"""ScoringProcess: the daemon's scorer in a real helper process, replaced when it dies."""

from __future__ import annotations

import json
import os
import signal

import pytest

from veille.scoring import load_scorer
from veille.scoring.loader import ScorerLoadError
from veille.scoring.process import ScorerUnavailable, ScoringProcess
from veille.scoring.settings import SentimentSettings

TEXTS = [
    "jsui vennu hier yavè plu de pizzza gétai dégoutè 😥",
    "Super accueil, je recommande !",
    "The service was awful and the pizza cold.",
    "",
    "Ouvert le dimanche.",
    "la comida llegó fría y el camarero fue muy grosero",  # unscored (issue 16): no label crosses the pipe
]


@pytest.fixture
def scorer() -> ScoringProcess:
    process = ScoringProcess(SentimentSettings()).start()
    yield process
    process.close()


def test_scores_exactly_like_the_in_process_scorer(scorer: ScoringProcess) -> None:
    expected = load_scorer(SentimentSettings()).score_batch(TEXTS)
    assert scorer.score_batch(TEXTS) == expected
    assert (expected[-1].label, expected[-1].lang) == (None, "es")
    assert scorer.name == load_scorer(SentimentSettings()).name
    assert scorer.score_batch([]) == []


def test_a_killed_helper_is_replaced_and_the_batch_still_scored(scorer: ScoringProcess) -> None:
    first = scorer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert len(scorer.score_batch(TEXTS)) == len(TEXTS)
    assert scorer.restarts == 1 and scorer.pid not in (None, first)


def test_an_unloadable_model_stops_the_start_with_the_reason(tmp_path) -> None:
    settings = SentimentSettings(model_path=str(tmp_path / "absent.json.gz"))
    with pytest.raises(ScorerLoadError, match=r"absent\.json\.gz"):
        ScoringProcess(settings).start()


class _NeverStarts(ScoringProcess):
    module = "veille.no_such_module"  # the interpreter exits at once: every start fails


def test_a_helper_that_keeps_failing_falls_back_to_scoring_in_process(caplog: pytest.LogCaptureFixture) -> None:
    """Hits keep being stored and scored (same scores) when the helper cannot run; one ERROR says so."""
    process = _NeverStarts(SentimentSettings())
    with pytest.raises(ScorerLoadError):
        process.start()
    assert process.score_batch(TEXTS) == load_scorer(SentimentSettings()).score_batch(TEXTS)
    assert process.restarts == 2 and process.degraded
    assert len(process.score_batch(TEXTS[:1])) == 1
    assert process.restarts == 2  # no helper is tried again during the fallback period
    assert [r.levelname for r in caplog.records if "failed again" in r.getMessage()] == ["ERROR"]
    process.close()


def test_an_answer_of_the_wrong_length_is_a_failure(scorer: ScoringProcess) -> None:
    with pytest.raises(ScorerUnavailable):
        scorer._round_trip(json.dumps(["un", "deux"]).encode(), 3)


def test_a_launched_helper_is_waited_for_before_its_first_batch() -> None:
    """launch() does not wait; a batch sent before "ready" must not take "ready" for its answer."""
    process = ScoringProcess(SentimentSettings()).launch()
    try:
        assert process.score_batch(TEXTS) == load_scorer(SentimentSettings()).score_batch(TEXTS)
        assert process.start() is process and process.restarts == 0
    finally:
        process.close()
