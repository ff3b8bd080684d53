"""A client's own name, handles and keywords never count as sentiment evidence (issue 11)."""

from __future__ import annotations

import pytest

from veille.core.models import SentimentLabel
from veille.scoring import load_scorer
from veille.scoring.own_terms import OwnTerms
from veille.scoring.settings import SentimentSettings

TAPIS = OwnTerms(
    "Tapis Royal",
    ['"tapis royal" -"tapis royal de perse"', "#tapisroyal", "@tapisroyal", "tapis-royal OR tapisroyal.fr"],
)


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    return load_scorer(SentimentSettings())


def test_the_terms_are_the_name_and_the_required_keyword_terms_never_the_exclusions() -> None:
    assert "tapis royal de perse" not in TAPIS.terms
    assert {"Tapis Royal", "#tapisroyal", "@tapisroyal", "tapis-royal", "tapisroyal.fr"} <= set(TAPIS.terms)


def test_strip_ignores_case_and_accents_and_keeps_the_rest_of_the_text() -> None:
    assert TAPIS.without("TAPIS  royal ouvre une boutique, écrivez à @TapisRoyal") == "ouvre une boutique, écrivez à"
    assert TAPIS.without("Un tapis sale") == "Un tapis sale"  # "tapis" alone is not the client's name
    gege = OwnTerms("Chez Gégé", ["chez gégé", "@chezgege"])
    assert gege.without("Cœur de bœuf chez GEGE, merci @chezgege") == "Cœur de bœuf  , merci"  # ligatures
    assert OwnTerms("", ()).without("rien à enlever") == "rien à enlever"


def test_the_clients_name_alone_is_neutral_and_its_news_is_not_negative(scorer) -> None:  # type: ignore[no-untyped-def]
    # A name made of an opinion word: unstripped, "Au Mauvais Garçon" reads as a complaint.
    garcon = OwnTerms("Au Mauvais Garçon", ["au mauvais garçon"])
    news_text = "Au Mauvais Garçon ouvre une boutique à Lyon"
    assert scorer.score_batch([news_text])[0].label is SentimentLabel.NEG
    (alone, news) = scorer.score_batch([garcon.without("Au Mauvais Garçon"), garcon.without(news_text)])
    assert alone.label is SentimentLabel.NEU and alone.score == 0.0
    assert news.label is not SentimentLabel.NEG
    (complaint,) = scorer.score_batch([TAPIS.without("Tapis Royal : livraison en retard et service client nul")])
    assert complaint.label is SentimentLabel.NEG  # what is said about the client still counts


def test_pas_mal_is_praise_as_its_reason_says(scorer) -> None:  # type: ignore[no-untyped-def]
    for text in ("pas mal", "c'est pas mal du tout", "pas mal, le nouveau menu"):
        (result,) = scorer.score_batch([text])
        assert result.reasons[0] == "+pas mal"
        assert result.label is not SentimentLabel.NEG and result.score > 0, (text, result)
    (still_bad,) = scorer.score_batch(["c'est pas terrible"])
    assert still_bad.label is SentimentLabel.NEG
