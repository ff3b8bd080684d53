"""The scored excerpt: short posts whole, articles bounded to title, lead and the passages naming the client."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from veille.scoring.excerpt import MAX_EXCERPT, SHORT_TEXT, sentiment_excerpt

FILLER = "Le conseil municipal votera le budget définitif lors de sa prochaine séance, fin du mois. "


def test_a_short_post_is_scored_whole_with_its_title() -> None:
    assert sentiment_excerpt("Avis", "Service lent.", ("chez gege",)) == "Avis. Service lent."
    assert sentiment_excerpt("", "Service lent.", ()) == "Service lent."
    assert sentiment_excerpt("Service", "Service lent.", ()) == "Service lent."  # the text starts with its title


def test_an_article_keeps_title_lead_and_the_passage_naming_the_client() -> None:
    text = (
        "La ville rénove sa place. Les travaux dureront un an. "
        + FILLER * 10
        + "Chez Gégé, on reconnaît une intoxication alimentaire. Les clients sont furieux. "
        + FILLER * 10
    )
    excerpt = sentiment_excerpt("Travaux en centre-ville", text, ("chez gege",))
    assert excerpt == (
        "Travaux en centre-ville. La ville rénove sa place. Les travaux dureront un an. "
        "Chez Gégé, on reconnaît une intoxication alimentaire. Les clients sont furieux."
    )


def test_the_excerpt_is_bounded_whatever_the_length() -> None:
    mention = "Chez Gégé est cité. "
    for text in (FILLER * 700, (mention + FILLER) * 300, "x" * 1_000_000, "Chez Gégé " * 100_000):
        assert len(sentiment_excerpt("Titre", text, ("chez gege",))) <= MAX_EXCERPT
    assert len(sentiment_excerpt("Titre", FILLER * 700, ())) < 2 * SHORT_TEXT


def test_a_term_of_several_tokens_is_found_by_its_longest_word() -> None:
    text = FILLER * 10 + "Le Tapis Royal de la rue Neuve ferme ses portes, hélas. " + FILLER * 10
    assert "ferme ses portes" in sentiment_excerpt("", text, ("royal tapis",))


def test_an_articles_excerpt_is_remembered_until_forgotten() -> None:
    """The pipeline scores an article's excerpt and the alerting service reads it again in the same batch."""
    from veille.scoring.excerpt import _long_excerpt, forget_excerpts

    forget_excerpts()
    text = FILLER * 5 + "Chez Gégé a fermé. Les clients sont furieux. " + FILLER * 5
    first = sentiment_excerpt("Fermeture", text, ["chez gégé"])
    assert sentiment_excerpt("Fermeture", text, ("chez gégé",)) == first
    assert _long_excerpt.cache_info().hits == 1
    forget_excerpts()
    assert _long_excerpt.cache_info().currsize == 0


_SENTENCE_ATOMS = ["a", "bc", " ", "  ", "\n", "\n\n", ".", "!", "?", "…", "»", "«", " \n", "\t", "é", "\xa0", "\u2028"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_SENTENCE_ATOMS), max_size=30))
def test_sentences_are_cut_as_the_look_behind_definition_cuts_them(atoms: list[str]) -> None:
    """The sentence splitter matches the end mark instead of looking behind for it (for speed): the same cuts."""
    import re

    from veille.scoring.excerpt import _sentences

    text = "".join(atoms)
    assert _sentences(text) == re.split(r"(?<=[.!?…»])\s+|\n+", text)


_PASSAGE_ATOMS = [
    "chez",
    " ",
    "gégé",
    "Gege",
    ".",
    "\n",
    "ha",
    "\x00",
    "CHEZ GÉGÉ",
    "œuvre",
    "ΟΔΟΣ",
    "tapis",
    "royal",
    "!",
]
_TERMS = ["chez gégé", "#chezgege", "tapis royal", "ha ha", "gege", "œuvre", "οδος"]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(_PASSAGE_ATOMS), max_size=40), st.lists(st.sampled_from(_TERMS), min_size=1, max_size=3)
)
def test_passages_found_in_one_pass_are_those_of_each_sentence_searched_alone(
    atoms: list[str], terms: list[str]
) -> None:
    """The sentences are folded and searched as one joined string (for speed); a match across two sentences
    must not count, and the passages must be those that searching each folded sentence alone gives."""
    import re

    from veille.core.matching import fold
    from veille.scoring.excerpt import MAX_PASSAGES, _passages, _pattern, _sentences

    sentences = [s for s in _sentences("".join(atoms)) if s.strip()]
    expected: list[int] = []
    for pattern in filter(None, map(_pattern, terms)):
        expected += [i for i, s in enumerate(sentences) if pattern.search(fold(s)) and i not in expected]
    if not expected:
        for term in terms:
            word = max(re.split(r"[^a-z0-9]+", fold(term)), key=len)
            if len(word) >= 3:
                expected += [i for i, s in enumerate(sentences) if _pattern(word).search(fold(s))]  # type: ignore[union-attr]
        expected = sorted(set(expected))
    assert _passages(sentences, terms) == sorted(expected[:MAX_PASSAGES])
