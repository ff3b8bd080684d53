"""Incident summaries: what stands out in an incident's posts against the client's usual ones."""

from __future__ import annotations

from veille.alerting.risk import CrisisWords
from veille.alerting.settings import DEFAULT_CRISIS_WORDS, DEFAULT_SEVERE_WORDS
from veille.alerting.summary import Background, Post, own_words, summarise

OWN = own_words(["Chez Gégé", "chez gégé", "@chezgege"])
CRISIS = CrisisWords(DEFAULT_CRISIS_WORDS, DEFAULT_SEVERE_WORDS)
USUAL = [
    "Super soirée chez Gégé, le burger était parfait",
    "Le burger de Chez Gégé est top, service rapide",
    "Réservé chez Gégé pour samedi, le burger est excellent",
    "Terrasse au soleil chez Gégé",
    "Service un peu lent ce midi chez Gégé",
    "Chez Gégé fait des plats à emporter ?",
] * 5


def posts(*texts: str, authors: tuple[str, ...] = (), sources: tuple[str, ...] = ()) -> list[Post]:
    return [
        Post(
            hit_id=n + 1,
            text=text,
            author=authors[n] if n < len(authors) else f"user{n}",
            source=sources[n] if n < len(sources) else "mastodon",
        )
        for n, text in enumerate(texts)
    ]


def test_new_words_stand_out_and_usual_ones_do_not() -> None:
    summary = summarise(
        posts(
            "Le burger chez Gégé était froid et la viande avariée",
            "Viande avariée chez Gégé ce midi, le burger immangeable",
            "Encore de la viande avariée chez Gégé, burger immangeable",
            "Burger à la viande avariée chez Gégé, je préviens tout le monde",
        ),
        Background(USUAL, OWN),
        CRISIS,
        OWN,
    )
    assert summary.terms[0] == "viande avariée"  # a pair several posts use stands in for its two words
    assert "immangeable" in " ".join(summary.terms)
    assert "burger" not in summary.terms  # the client's usual vocabulary, alone
    assert not {"chez", "gégé", "gege", "le", "la", "de"} & set(summary.terms)  # own name and stop words


def test_plural_and_singular_count_as_one_word_shown_as_the_posts_write_it() -> None:
    summary = summarise(
        posts(
            "Toute la table malade après chez Gégé",
            "Deux enfants malades après le dîner",
            "Encore des malades, hygiène douteuse",
            "Nous aussi, malades toute la nuit",
        ),
        Background(USUAL, OWN),
        CRISIS,
        OWN,
    )
    assert summary.terms[0] == "malades"  # three of the four posts write it so; one word, not two
    assert "malade" not in summary.terms
    assert summary.crisis_words[0] == "malades" and "hygiène" in summary.crisis_words  # accents kept


def test_counts_distinct_authors_and_sources() -> None:
    summary = summarise(
        posts(
            "Arnaque totale",
            "Arnaque, ne commandez pas",
            "Arnaque encore",
            authors=("a", "a", "b"),
            sources=("mastodon", "bluesky", "bluesky"),
        ),
        Background(USUAL, OWN),
        CRISIS,
        OWN,
    )
    assert (summary.posts, summary.authors, summary.sources) == (3, 2, 2)
    assert summary.terms[0] == "arnaque"


def test_severe_crisis_words_name_the_cause_before_the_reactions() -> None:
    texts = [
        "Intoxication alimentaire après le dîner, une nuit aux urgences",
        "Boycott, honteux",
        "Boycott de cette adresse, honteux",
        "Honteux, boycott général",
        "Intoxication aussi chez nous",
    ]
    summary = summarise(posts(*texts), Background(USUAL, OWN), CRISIS, OWN)
    assert summary.terms[0] == "intoxication"
    assert {"boycott", "honteux"} <= set(summary.crisis_words)


def test_an_english_post_is_stemmed_as_english() -> None:
    summary = summarise(
        posts("Got food poisoning there, the whole family was sick", "Everyone sick after dinner, food poisoning"),
        Background(["Great burgers and friendly staff", "Lovely terrace, friendly staff"] * 5),
        CRISIS,
        OWN,
    )
    assert summary.terms[:2] == ("food poisoning", "sick") or summary.terms[:2] == ("sick", "food poisoning")


def test_representative_posts_are_the_most_engaged_then_the_most_central_once_per_text() -> None:
    items = [
        Post(1, "Viande avariée, burger immangeable", "a", "mastodon", engagement=2),
        Post(2, "Viande avariée, burger immangeable", "b", "mastodon", engagement=1),  # the same text again
        Post(3, "Viande avariée et burger immangeable chez Gégé, plus jamais", "c", "mastodon", engagement=1),
        Post(4, "Quel dommage", "d", "mastodon", engagement=500),
        Post(5, "Rien à voir : belle terrasse", "e", "mastodon", engagement=0),
    ]
    summary = summarise(items, Background(USUAL, OWN), CRISIS, OWN)
    assert summary.top_hits[0] == 4  # the most engaged, whatever it says
    assert set(summary.top_hits[1:]) == {1, 3}  # they share the incident's words; 2 repeats 1's text


def test_nothing_stands_out_in_posts_like_the_usual_ones() -> None:
    summary = summarise(posts(*USUAL[:4]), Background(USUAL, OWN), CRISIS, OWN)
    assert summary.terms == () and summary.crisis_words == ()
    assert summary.posts == 4
