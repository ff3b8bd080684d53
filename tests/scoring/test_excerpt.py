"""The scored excerpt: short posts whole, articles bounded to title, lead and the passages naming the client."""

from __future__ import annotations

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
