"""The reply inbox's gate: what needs an answer from the client, what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from veille.alerting.replies import Need, needs_answer, needs_answer_reason


@pytest.mark.parametrize(
    "text",
    [
        "vous auriez au moins pu répondre",
        "toujours pas de réponse",
        "j'attends toujours mon remboursement",
        "vous êtes ouverts dimanche ?",
        "vous livrez ?",
        "vs livrez a Bron",  # SMS spelling, no question mark
        "tjrs pas de rep",
        "Could you send me the invoice please",
        "Still waiting for my refund",
    ],
)
def test_questions_complaints_and_reproaches_need_an_answer(text: str) -> None:
    assert needs_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "merci !! ❤",
        "😂😂",
        "trop bien",
        "Merci, pas de souci !",
        "@julie_m regarde ça",
        "@karine tu connais ?",
        "Thanks a lot!",
        "!!!",
        "",
    ],
)
def test_thanks_praise_emoji_and_tags_need_none(text: str) -> None:
    assert not needs_answer(text)


def test_a_leading_mention_addresses_the_account_on_microblogs() -> None:
    """On Mastodon, Bluesky or X a post opens with the handles it speaks to; under a Facebook post, a leading
    tag is a friend asked."""
    assert not needs_answer("@karine tu connais ?")
    assert needs_answer_reason("@chezgege ouverts lundi ?", tags_friends=False) is Need.QUESTION


def test_the_reason_tells_a_complaint_from_a_question() -> None:
    assert needs_answer_reason("Colis jamais reçu, inadmissible") is Need.COMPLAINT
    assert needs_answer_reason("Vous faites des cartes cadeaux ?") is Need.QUESTION
    assert needs_answer_reason("merci de me rappeler") is Need.REQUEST
    assert needs_answer_reason("merci beaucoup") is Need.NONE


@pytest.mark.parametrize(
    ("name", "precision", "recall"),
    [
        ("needs_answer.tsv", 0.97, 0.95),  # tuned on: a floor, not a measure
        ("needs_answer_heldout.tsv", 0.95, 0.9),  # held out, but its misses were read when the rules were rewritten
        ("needs_answer_heldout2.tsv", 0.95, 0.75),  # held out, labelled before the rules ran on it (0.976 / 0.786)
    ],
)
def test_the_labelled_lists_keep_their_figures(name: str, precision: float, recall: float) -> None:
    """Precision and recall of "needs an answer" on each labelled list stay above a floor a bit under the
    figures measured (bench/inbox_eval.py prints them)."""
    path = Path(__file__).with_name(name)
    rows = [line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines() if line[:1] in "01"]
    assert len(rows) >= (200 if name == "needs_answer.tsv" else 60 if name == "needs_answer_heldout.tsv" else 150)
    verdicts = [(label == "1", needs_answer(text)) for label, _, text in rows]
    true_positives = sum(truth and verdict for truth, verdict in verdicts)
    assert true_positives / sum(verdict for _, verdict in verdicts) >= precision
    assert true_positives / sum(truth for truth, _ in verdicts) >= recall
