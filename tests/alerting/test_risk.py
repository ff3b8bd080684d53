"""Risk of one hit: graded crisis words, the source kind's reach prior, and the severity floor (issue 11)."""

from __future__ import annotations

from veille.alerting.risk import SEVERE_FLOOR, CrisisWords, HitFacts, score_risk
from veille.alerting.settings import DEFAULT_CRISIS_WORDS, DEFAULT_SEVERE_WORDS, AlertingSettings
from veille.core.models import SentimentLabel, SentimentResult

SETTINGS = AlertingSettings()
WORDS = CrisisWords(SETTINGS.crisis_words, SETTINGS.severe_words)
ARTICLE = "Intoxication alimentaire chez Gégé, douze clients aux urgences, les familles portent plainte"


def verdict(score: float) -> SentimentResult:
    label = SentimentLabel.NEG if score < -0.05 else SentimentLabel.POS if score > 0.05 else SentimentLabel.NEU
    return SentimentResult(label, score, "fr")


def facts(text: str, score: float, *, followers: int | None = None, prior: float = 0.0) -> HitFacts:
    return HitFacts(text, verdict(score), False, followers, None, reach_prior=prior)


def test_severe_words_are_part_of_the_vocabulary_and_weigh_more() -> None:
    assert set(DEFAULT_SEVERE_WORDS) <= set(DEFAULT_CRISIS_WORDS)
    assert WORDS.weight(WORDS.find("une arnaque")) > WORDS.weight(WORDS.find("un remboursement"))
    assert WORDS.find(ARTICLE) == ("intoxication", "urgences", "plainte")
    assert WORDS.weight(WORDS.find(ARTICLE)) == 1.0


def test_a_severe_press_article_is_critical_thanks_to_the_feeds_reach_prior() -> None:
    without = score_risk(facts(ARTICLE, -0.9), WORDS)
    press = score_risk(facts(ARTICLE, -0.9, prior=0.7), WORDS)
    assert without.value < SETTINGS.critical_risk <= press.value
    assert "severe: intoxication, urgences, plainte" in press.reasons


def test_severity_alone_crosses_the_threshold_when_the_audience_is_unknown() -> None:
    calm = "Une plainte a été déposée contre Chez Gégé"  # the tone of a news brief: barely negative
    risk = score_risk(facts(calm, -0.35), WORDS)
    assert risk.value == SEVERE_FLOOR >= SETTINGS.risk_threshold
    # A known tiny audience is a fact, not a gap: a spam bot's "ARNAQUE" stays below the threshold...
    assert score_risk(facts("ARNAQUE évitée, 500% garantis", -0.9, followers=2), WORDS).value < SETTINGS.risk_threshold
    # ...and a severe word in a post that is not negative lifts nothing.
    praise = score_risk(facts("Aucun risque d'intoxication chez Gégé, cuisine impeccable", 0.8), WORDS)
    assert praise.value < SETTINGS.risk_threshold


def test_bad_service_words_alone_do_not_cross_the_threshold() -> None:
    assert score_risk(facts("Service lent, remboursement refusé", -0.4), WORDS).value < SETTINGS.risk_threshold


def test_a_mildly_negative_article_stays_below_the_threshold() -> None:
    mild = score_risk(facts("Attente un peu longue, mais séance efficace", -0.3, prior=0.7), WORDS)
    assert mild.value < SETTINGS.risk_threshold and mild.crisis_words == ()


def test_the_prior_is_a_floor_measured_figures_can_raise() -> None:
    rant = "Service lamentable chez Gégé, inadmissible"
    low_prior = score_risk(facts(rant, -0.8, followers=50_000, prior=0.2), WORDS)
    high_prior = score_risk(facts(rant, -0.8, followers=50_000, prior=0.7), WORDS)
    assert low_prior.value == high_prior.value  # 50,000 followers reach further than either prior


FOREIGN_SEVERE = {
    "es": "Intoxicación alimentaria en Chez Gégé: doce clientes en urgencias, las familias presentan una denuncia",
    "de": "Lebensmittelvergiftung bei Chez Gégé: zwölf Gäste in der Notaufnahme, die Familien erstatten Anzeige",
    "it": "Intossicazione alimentare da Chez Gégé: dodici clienti al pronto soccorso, le famiglie fanno denuncia",
    "nl": "Voedselvergiftiging bij Chez Gégé: twaalf gasten naar de spoedeisende hulp, de families doen aangifte",
}


def test_severe_words_in_spanish_german_italian_and_dutch_carry_an_unscored_post() -> None:
    """Issue 16: these posts get no sentiment; their crisis words stand in for it, graded like the French ones."""
    for lang, text in FOREIGN_SEVERE.items():
        found = WORDS.find(text)
        assert len([w for w in found if w in WORDS.severe]) >= 2, (lang, found)
        unscored = HitFacts(text, SentimentResult.unscored(lang), False, None, None, reach_prior=0.7)
        risk = score_risk(unscored, WORDS)
        assert risk.value >= SETTINGS.critical_risk, (lang, risk)
        assert risk.reasons[0] == f"unscored ({lang})" and risk.reasons[1].startswith("severe: ")
        # The French article scored -0.9 rings as hard.
        assert risk.value >= score_risk(facts(ARTICLE, -0.9, prior=0.7), WORDS).value - 0.05


def test_an_unscored_post_without_crisis_words_is_neither_negative_nor_risky() -> None:
    text = "Chez Gégé: wir waren gestern dort, das Essen kam nach einer Stunde"
    risk = score_risk(HitFacts(text, SentimentResult.unscored("de"), True, 50_000, None), WORDS)
    assert (risk.value, risk.negative, risk.crisis_words) == (0.0, False, ())


def test_clients_with_the_same_words_share_one_matcher() -> None:
    """1,000 clients without words of their own build the default matcher once, not once each."""
    from veille.alerting.risk import shared_crisis_words

    default = shared_crisis_words(DEFAULT_CRISIS_WORDS, DEFAULT_SEVERE_WORDS)
    assert shared_crisis_words(tuple(DEFAULT_CRISIS_WORDS), tuple(DEFAULT_SEVERE_WORDS)) is default
    own = shared_crisis_words((*DEFAULT_CRISIS_WORDS, "moisi"), DEFAULT_SEVERE_WORDS)
    assert own is not default and own.find("pain moisi") == ("moisi",) and default.find("pain moisi") == ()
