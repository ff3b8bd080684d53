"""Keyword matching: phrases, OR, exclusions, hashtags, mentions, case and accents."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veille.core.matching import Matcher, find_folded, fold, terms_pattern, validate_keywords

VOCABULARY = ["chez gégé", "#chezgege", "@chezgege", "-recrutement", '"tapis royal" -perse', "pizza OR pâtes", "c3po"]

RESTO = Matcher(["chez gégé", "#chezgege", "@chezgege", "-recrutement", "pizza -recette", "pâtes OR lasagnes"])


@pytest.mark.parametrize(
    ("text", "matched", "direct"),
    [
        ("Super soirée chez Gege hier !", True, False),
        ("CHEZ   GÉGÉ, le meilleur", True, False),
        ("Chez Gégé recrute : RECRUTEMENT serveur", False, False),
        ("#ChezGégé au top", True, False),
        ("#chezgegefan club", False, False),
        ("merci @chezgege pour l'accueil", True, True),
        ("@chezgege@mastodon.social bof", True, True),
        ("email test@chezgege.fr", False, False),
        ("gégé chez", False, False),
        ("la pizza était froide", True, False),
        ("une recette de pizza maison", False, False),
        ("des lasagnes brûlées", True, False),
        ("des Pâtes trop cuites", True, False),
        ("rien à voir", False, False),
    ],
)
def test_matches(text: str, matched: bool, direct: bool) -> None:
    result = RESTO.match(text)
    assert result.matched is matched
    assert result.direct is direct


def test_quoted_phrase_and_required_words() -> None:
    matcher = Matcher(['"tapis royal" soldes'])
    assert matcher.match("Les soldes chez Tapis Royal").matched
    assert not matcher.match("Tapis Royal, nouvelle collection").matched
    assert not matcher.match("tapis de soldes royal").matched


def test_fold_handles_ligatures_and_accents() -> None:
    assert fold("Œuvre ÉLÈVE  Noël") == "oeuvre eleve noel"


def test_invalid_keywords_are_reported() -> None:
    assert validate_keywords(['"unbalanced', "ok", "   ", "!!!"]) == [
        "[0]: unbalanced quote in '\"unbalanced'",
        "[2]: empty keyword",
        "[3]: '!!!' has no letters or digits",
    ]


def test_linear_on_huge_text() -> None:
    matcher = Matcher(["chez gégé", "#chezgege"])
    assert not matcher.match("a" * 1_000_000).matched


def test_fold_agrees_with_the_character_table_for_every_character() -> None:
    """fold decomposes whole texts at once; the result is still the table's, character by character."""
    from veille.core.matching import _FOLD

    for start in range(0x80, 0x3000, 256):
        chars = "".join(chr(c) for c in range(start, start + 256) if not 0xD800 <= c < 0xE000)
        text = f"A{chars}b É {chars.upper()}"
        assert fold(text) == re.sub(r"\s+", " ", text.translate(_FOLD))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3),
    st.lists(st.sampled_from([*VOCABULARY, "Gégé", "CHEZ", "-", "#", "@", "  ", "\n", "é"]), max_size=30),
)
def test_the_literal_prefilter_never_changes_a_result(keywords: list[str], words: list[str]) -> None:
    matcher = Matcher(keywords)
    reference = Matcher(keywords)
    reference._literals = ("",)  # every text goes on to the regular expressions
    text = " ".join(words)
    assert matcher.match(text) == reference.match(text)


def _spans_char_by_char(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """The obvious find_folded: fold every character alone and keep where each folded character came from."""
    from veille.core.matching import _FOLD

    pieces = [char.translate(_FOLD) for char in text]
    origin = [index for index, piece in enumerate(pieces) for _ in piece]
    joined = "".join(pieces)
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in pattern.finditer(joined) if m.end() > m.start()]


FOLD_ATOMS = ["chez", " ", "gégé", "Gége", "ŒUVRE", "œuvre", "…", "\u0301", "e\u0301", "#ChezGégé", "ǽ", "ß", "x"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from([*FOLD_ATOMS, "\n", "Tapis", "royal", "ﬁ", "’", "İ", "Σ"]), max_size=14))
def test_find_folded_spans_are_those_of_the_character_by_character_fold(atoms: list[str]) -> None:
    """Runs whose fold changes length (œ -> oe, ﬁ -> fi, a lone mark -> nothing) map back to the original text,
    also when an expansion and a contraction cancel out over the text or inside one run."""
    pattern = terms_pattern(["chez gégé", "œuvre", "#chezgege", "tapis royal"])
    assert pattern is not None
    text = "".join(atoms)
    assert find_folded(text, pattern) == _spans_char_by_char(text, pattern)


def test_fold_spells_out_ligatures_that_a_decomposition_yields() -> None:
    assert fold("Ǽ ǽ Œuvre ẞ") == "ae ae oeuvre ss"


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b.", " ", "  ", "\n", "\r\n", "\t", "\x1c", "\xa0", "\u2028", "é"]), max_size=20)
)
def test_collapse_spaces_is_split_and_join_keeping_one_space_at_each_end(atoms: list[str]) -> None:
    """Its ASCII shortcut (line breaks replaced, nothing else to do) gives what split and join give."""
    from veille.core.matching import collapse_spaces

    text = "".join(atoms)
    core = " ".join(text.split())
    expected = (" " if text[:1].isspace() else "") + core + (" " if text[-1:].isspace() and core else "")
    assert collapse_spaces(text) == (expected or (" " if text else ""))
