"""Spike incidents link the hits behind them and say it as a community manager would (issue 11)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.alerting import NIGHT
from veille.alerting.detect import HitRow, detect, text_key
from veille.alerting.settings import AlertingSettings
from veille.core.i18n import wording
from veille.core.incidents import Cause

SETTINGS = AlertingSettings()


def test_a_negative_spike_links_its_messages_and_says_it_in_words() -> None:
    angry = [
        HitRow(i, NIGHT - timedelta(minutes=5 * i), f"client{i}", text_key(f"service lamentable {word}"), True, 0.2)
        for i, word in enumerate(("froid", "lent", "sale", "cher"), 1)
    ]
    buzz, _volume = detect("resto", angry, [1, 2, 3, 4], SETTINGS, NIGHT)
    assert buzz.firing and buzz.cause is Cause.BUZZ
    assert buzz.top_hits == (1, 2, 3, 4) and buzz.evidence_count == 4  # before: no hit linked, "hits 0"
    assert buzz.reasons == ("4 negative messages in 1 h, usually none",)
    assert wording("fr").text(buzz.reasons[0]) == "4 messages négatifs en 1 h, d'habitude aucun"


def test_a_volume_spike_links_one_hit_per_distinct_text_newest_first() -> None:
    usual = [
        HitRow(100 + d, NIGHT - timedelta(hours=2 + d), "a", text_key(f"bonjour {d}"), False, 0.0) for d in range(6)
    ]
    rush = [
        HitRow(
            i, NIGHT - timedelta(minutes=i), f"u{i}", text_key(f"nouvelle carte numero {chr(97 + i % 20)}"), False, 0.0
        )
        for i in range(1, 41)
    ]
    _buzz, volume = detect("resto", usual + rush, [], SETTINGS, NIGHT)
    assert volume.firing and volume.evidence_count == 20
    assert volume.top_hits == (1, 2, 3, 4, 5)
    (reason,) = volume.reasons
    assert reason.startswith("20 messages in 1 h, usually") and "p=" not in reason and "expected" not in reason
    assert wording("fr").text(reason).startswith("20 messages en 1 h, d'habitude")


_KEY_ATOMS = [
    "Chez Gégé",
    " ",
    "  ",
    "\n",
    "https://ex.fr/a?b=1",
    "http",
    "https:",
    "//x",
    "#chezgege",
    "@gege",
    "2026",
    "12",
    "!",
    ",",
    "...",
    "é",
    "œuvre",
    "\u0301",
    "mot",
    "x" * 40,
    "\xa0",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_KEY_ATOMS), min_size=0, max_size=500))
def test_text_key_of_a_long_text_is_that_of_its_whole_cleaning(atoms: list[str]) -> None:
    """text_key cleans a long text's prefix first; the key must be the one of the whole text cleaned."""
    import hashlib

    from veille.alerting import detect

    text = "".join(atoms) * 2  # short ones, and long ones: from 400 characters a prefix is cleaned first
    whole = detect._cleaned(text)[: detect.KEY_CHARS]
    assert text_key(text) == hashlib.sha256(whole.encode()).hexdigest()[:32]
