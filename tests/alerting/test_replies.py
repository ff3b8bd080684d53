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


def test_the_labelled_list_keeps_its_figures() -> None:
    """The rules on the 249 labelled messages (written for them, so a floor, not the held-out figure)."""
    path = Path(__file__).with_name("needs_answer.tsv")
    rows = [line.split("\t", 2) for line in path.read_text(encoding="utf-8").splitlines() if line[:1] in "01"]
    assert len(rows) >= 200
    verdicts = [(label == "1", needs_answer(text)) for label, _, text in rows]
    true_positives = sum(truth and verdict for truth, verdict in verdicts)
    assert true_positives / sum(verdict for _, verdict in verdicts) >= 0.95
    assert true_positives / sum(truth for truth, _ in verdicts) >= 0.9
