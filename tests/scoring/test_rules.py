"""The linguistic cases the default scorer must get right, on sentences written for these tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veille.core.models import SentimentLabel
from veille.scoring import load_scorer
from veille.scoring.language import CANDIDATES
from veille.scoring.lexicon import load_resources
from veille.scoring.rules import Rules
from veille.scoring.settings import SentimentSettings
from veille.scoring.text import MAX_CHARS, Tokenizer

SMS = (
    "Oué vasy, jsui vennu hier yavè plu de pizzza gétai dégoutè dla vie 😥 😥 "
    "Mai g kan mème tro kiffé la salade nissoise ❤ ❤"
)


_SCORERS: list = []


def shared_scorer():
    """One scorer for the module, reachable from hypothesis tests (which cannot take fixtures)."""
    if not _SCORERS:
        _SCORERS.append(load_scorer(SentimentSettings(), data_dir=None))
    return _SCORERS[0]


@pytest.fixture(scope="module")
def scorer():
    return shared_scorer()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(load_resources())


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules(load_resources())


def norms(tokenizer: Tokenizer, text: str) -> list[str]:
    return [t.norm for t in tokenizer.parse(text).tokens]


def one(scorer, text: str):
    return scorer.score_batch([text])[0]


# --- SMS French --------------------------------------------------------------------------------


def test_sms_spelling_is_normalised(tokenizer: Tokenizer) -> None:
    words = norms(tokenizer, SMS)
    assert words[:12] == ["ouais", "vas-y", ",", "je", "suis", "venu", "hier", "il", "y", "avait", "plus", "de"]
    assert "pizza" in words and "dégoûté" in words and "mais" in words and "trop" in words
    assert "plaire" not in words  # "yavè plu de pizza": no more pizza, nothing pleased anyone


def test_mixed_sms_example_shows_both_parts(scorer) -> None:
    result = one(scorer, SMS)
    assert result.lang == "fr"
    assert "-dégoutè" in result.reasons and "-😥" in result.reasons
    assert "+kiffé" in result.reasons and "+❤" in result.reasons
    assert "contrast:mais" in result.reasons
    assert not any("plu" in reason.lstrip("+-").split() for reason in result.reasons)
    # After "mais" the second part weighs more: overall the customer liked the salad.
    assert result.label is SentimentLabel.POS


def test_plu_after_an_auxiliary_is_plaire(tokenizer: Tokenizer, scorer) -> None:
    assert "plaire" in norms(tokenizer, "Le dessert m'a beaucoup plu")
    assert "plus" in norms(tokenizer, "ya plu de place")
    assert one(scorer, "Le dessert m'a vraiment plu, merci !").label is SentimentLabel.POS


def test_mai_the_month_stays_a_month(tokenizer: Tokenizer) -> None:
    assert "mai" in norms(tokenizer, "On ouvre le 12 mai")
    assert "mai" in norms(tokenizer, "fermé en mai")
    assert "mais" in norms(tokenizer, "c bon mai tro cher")


def test_g_after_a_number_is_grams(tokenizer: Tokenizer) -> None:
    assert norms(tokenizer, "200 g de frites") == ["200", "g", "de", "frites"]
    assert norms(tokenizer, "g adoré")[:2] == ["j'", "ai"]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("jpp de ce SAV, tjrs pas de réponse", SentimentLabel.NEG),
        ("ce burger c'est une tuerie", SentimentLabel.POS),
        ("le concert était de la bombe 🔥", SentimentLabel.POS),
        ("chuis vnr, livraison ratée", SentimentLabel.NEG),
    ],
)
def test_french_slang(scorer, text: str, label: SentimentLabel) -> None:
    assert one(scorer, text).label is label


def test_missing_accents_still_hit_the_lexicon(scorer) -> None:
    result = one(scorer, "tres decu, le plat etait degueu")
    assert result.label is SentimentLabel.NEG


# --- elongation ----------------------------------------------------------------------------------


def test_elongations_are_undone_and_amplify(tokenizer: Tokenizer, rules: Rules) -> None:
    assert norms(tokenizer, "trooop bonne la pizzzza")[:1] == ["trop"]
    assert "pizza" in norms(tokenizer, "trooop bonne la pizzzza")
    assert "nul" in norms(tokenizer, "c'est nuuuuul")
    plain = rules.evaluate(tokenizer.parse("c'est nul"))
    long = rules.evaluate(tokenizer.parse("c'est nuuuuul"))
    assert long.neg > plain.neg > 0


def test_elongated_praise_is_positive(scorer) -> None:
    assert one(scorer, "Trooop bonnes les crêpes, je recommaaande").label is SentimentLabel.POS


# --- negation ------------------------------------------------------------------------------------


def test_pas_terrible_is_negative(scorer) -> None:
    result = one(scorer, "Le service n'était pas terrible ce midi")
    assert result.label is SentimentLabel.NEG
    assert "-pas terrible" in result.reasons


def test_jamais_decu_is_positive(scorer) -> None:
    result = one(scorer, "Jamais déçu par cette boulangerie")
    assert result.label is SentimentLabel.POS
    assert "+Jamais déçu" in result.reasons


def test_negation_flips_praise(scorer) -> None:
    result = one(scorer, "Je ne recommande pas du tout ce garage, pas bon et pas sérieux")
    assert result.label is SentimentLabel.NEG
    assert any(reason.startswith("-pas") for reason in result.reasons)


def test_negation_scope_stops_at_punctuation(tokenizer: Tokenizer, rules: Rules) -> None:
    evidence = rules.evaluate(tokenizer.parse("Pas de réservation. Excellent repas"))
    assert "+Excellent" in evidence.reasons


def test_english_negation(scorer) -> None:
    assert one(scorer, "Honestly not bad at all, I'd go back").label is SentimentLabel.POS
    result = one(scorer, "I don't like this new menu, the staff wasn't helpful")
    assert result.lang == "en"
    assert result.label is SentimentLabel.NEG


# --- intensifiers, contrast ----------------------------------------------------------------------


def test_intensifiers_scale(tokenizer: Tokenizer, rules: Rules) -> None:
    plain = rules.evaluate(tokenizer.parse("c'est bon"))
    strong = rules.evaluate(tokenizer.parse("c'est vraiment très bon"))
    weak = rules.evaluate(tokenizer.parse("c'est un peu bon"))
    assert strong.pos > plain.pos > weak.pos > 0


def test_later_clause_weighs_more(scorer) -> None:
    assert one(scorer, "Accueil sympa mais repas froid et serveur désagréable").label is SentimentLabel.NEG
    assert one(scorer, "Un peu d'attente, mais franchement délicieux !").label is SentimentLabel.POS
    assert one(scorer, "The food was cold but the staff were lovely and so helpful").label is SentimentLabel.POS


@pytest.mark.parametrize(
    "text", ["Super accueil, on reviendra !", "trop bien", "Top 👍", "Franchement rien à redire, service impeccable"]
)
def test_short_french_praise(scorer, text: str) -> None:
    assert one(scorer, text).label is SentimentLabel.POS


@pytest.mark.parametrize(
    "text",
    [
        "Personne ne répond au téléphone depuis 3 jours",
        "trop cher pour ce que c'est",
        "Franchement bof",
        "jsui vénère, colis perdu 😡",
    ],
)
def test_short_french_complaints(scorer, text: str) -> None:
    assert one(scorer, text).label is SentimentLabel.NEG


def test_booster_alone_is_praise(tokenizer: Tokenizer, rules: Rules) -> None:
    assert "+Super" in rules.evaluate(tokenizer.parse("Super accueil")).reasons  # "accueil" has no polarity
    assert "+bon" in rules.evaluate(tokenizer.parse("super bon")).reasons  # here "super" only intensifies


# --- emojis and emoticons ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("😡😡😡", SentimentLabel.NEG),
        ("🤮", SentimentLabel.NEG),
        ("👎 👎", SentimentLabel.NEG),
        ("❤️❤️", SentimentLabel.POS),
        ("😍🔥👏", SentimentLabel.POS),
        (":-)", SentimentLabel.POS),
        (":(", SentimentLabel.NEG),
    ],
)
def test_emoji_only_posts(scorer, text: str, label: SentimentLabel) -> None:
    result = one(scorer, text)
    assert result.label is label
    assert result.lang == "und"
    assert result.reasons


def test_emoticons_are_not_found_inside_urls(tokenizer: Tokenizer) -> None:
    assert norms(tokenizer, "voir https://exemple.fr/p:)") == ["voir"]


# --- irony ---------------------------------------------------------------------------------------


def test_explicit_irony_marker_turns_praise_into_complaint(scorer) -> None:
    result = one(scorer, "Super, encore 2h de retard, merci la compagnie #ironie")
    assert result.label is SentimentLabel.NEG
    assert "irony" in result.reasons
    assert one(scorer, "Génial, le colis est encore perdu 🙃").label is SentimentLabel.NEG


# --- English, language, result shape -------------------------------------------------------------


def test_english_posts(scorer) -> None:
    assert one(scorer, "Absolutely loved the brunch, great coffee and friendly staff!").label is SentimentLabel.POS
    assert one(scorer, "Worst customer service ever. Total scam, avoid!!").label is SentimentLabel.NEG


def test_language_detection(tokenizer: Tokenizer) -> None:
    assert tokenizer.parse("Le serveur était très gentil avec nous").lang == "fr"
    assert tokenizer.parse("jsui dégoutè tro nul").lang == "fr"
    assert tokenizer.parse("The waiter was very kind to us").lang == "en"
    assert tokenizer.parse("👍").lang == "und"
    assert tokenizer.parse("").lang == "und"


def test_results_are_in_order_and_bounded(scorer) -> None:
    texts = ["", "   ", "Merci pour tout ❤", "Arnaque totale, fuyez", "\x00\ud800 bizarre", "http @user"]
    results = scorer.score_batch(texts)
    assert len(results) == len(texts)
    for result in results:
        assert -1.0 <= result.score <= 1.0
        assert result.lang in ("fr", "en", "und", *CANDIDATES)
        assert result.scored or result.lang not in ("fr", "en", "und")  # only other languages go unscored
        assert all(isinstance(r, str) for r in result.reasons)
    assert results[0].label is SentimentLabel.NEU and results[0].score == 0.0
    assert results[2].label is SentimentLabel.POS and results[2].score > 0
    assert results[3].label is SentimentLabel.NEG and results[3].score < 0
    assert scorer.score_batch([]) == []


def test_batch_and_single_agree(scorer) -> None:
    texts = ["Trop bon ce resto", "Service lamentable", "Ouvert dimanche ?", "Great pizza", "bof"]
    assert scorer.score_batch(texts) == [one(scorer, t) for t in texts]


def test_huge_single_line_input_is_truncated(scorer, tokenizer: Tokenizer) -> None:
    """E12: 1 MB of one adversarial line is scored on its first MAX_CHARS characters."""
    adversarial = ("😥a:(pas " * 200_000)[:1_000_000]
    assert len(tokenizer.parse(adversarial).tokens) <= MAX_CHARS
    # Finishing at all is the check (a quadratic path would take hours); no timing assertion here.
    results = scorer.score_batch([adversarial, "x" * 1_000_000, "!" * 1_000_000])
    assert len(results) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=5))
def test_any_text_gets_a_bounded_verdict(texts: list[str]) -> None:
    results = shared_scorer().score_batch(texts)
    assert len(results) == len(texts)
    for result in results:
        assert -1.0 <= result.score <= 1.0
        assert result.lang in ("fr", "en", "und", *CANDIDATES)
        assert result.scored or result.lang not in ("fr", "en", "und")  # only other languages go unscored


def test_importing_scoring_does_no_work() -> None:
    """The config imports veille.scoring: that must not load numpy, scikit-learn or the model."""
    code = (
        "import sys, veille.config, veille.scoring; "
        "print(sorted(m for m in ('numpy', 'sklearn', 'veille.scoring.default') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_scoring_from_worker_threads_gives_the_same_verdicts(scorer) -> None:
    """The daemon scores in a worker thread; the caches must not mix texts up."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [SMS, "Service lamentable", "trop bien", "Great pizza", "😡", "ça m'a plu", "pas terrible"] * 30
    expected = scorer.score_batch(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        batches = list(pool.map(scorer.score_batch, [texts] * 8))
    assert all(batch == expected for batch in batches)


# --- reasons say what drove the verdict (issue 16) -----------------------------------------------


def test_a_scam_warning_shows_no_praise(scorer) -> None:
    result = one(scorer, "arnaque totale, ne commandez jamais chez tapis royal")
    assert result.label is SentimentLabel.NEG
    assert "-arnaque" in result.reasons
    assert not any(reason.startswith("+") for reason in result.reasons), result.reasons


def test_a_negator_about_something_else_leaves_the_bad_word_bad(tokenizer: Tokenizer, rules: Rules) -> None:
    assert "-escrocs" in rules.evaluate(tokenizer.parse("ne commandez jamais chez ces escrocs")).reasons
    # Right after the negator (or with only "du tout" between), a bad word still turns into mild praise.
    assert "+pas mauvais" in rules.evaluate(tokenizer.parse("ce n'est pas du tout mauvais")).reasons


@pytest.mark.parametrize(
    ("text", "not_a_reason"),
    [
        ("Certains clients attendent encore leur commande", "+Certains"),
        ("Je suis sur place depuis midi, on attend", "+sur"),
        ("Il fait 35 degrés en salle #chaleur", "+#chaleur"),
    ],
)
def test_grammar_words_and_topics_are_not_opinions(
    rules: Rules, tokenizer: Tokenizer, text: str, not_a_reason: str
) -> None:
    assert not_a_reason not in rules.evaluate(tokenizer.parse(text)).reasons


@pytest.mark.parametrize(
    "text",
    ["C'est combien le menu du midi ?", "Quel est le prix d'une séance ?", "How much is the lunch menu?"],
)
def test_a_plain_question_is_neutral_with_no_negative_reason(scorer, text: str) -> None:
    result = one(scorer, text)
    assert result.label is SentimentLabel.NEU, result
    assert not any(reason.startswith("-") for reason in result.reasons)


def test_a_question_that_complains_stays_negative(scorer) -> None:
    assert one(scorer, "Pourquoi personne ne répond jamais au téléphone ?").label is SentimentLabel.NEG
    assert one(scorer, "Vous comptez me rembourser un jour ? Toujours pas de réponse").label is SentimentLabel.NEG


@pytest.mark.parametrize(
    "text",
    [
        "vous auriez au moins pu répondre",
        "Vous pourriez au moins vous excuser.",
        "You could at least have answered my email.",
        "Merci pour rien.",
    ],
)
def test_reproaches_are_negative(scorer, text: str) -> None:
    result = one(scorer, text)
    assert result.label is SentimentLabel.NEG, result
    assert any(reason.startswith("-") for reason in result.reasons)


def test_model_reasons_only_when_the_rules_have_none_and_only_words_that_weighed(scorer) -> None:
    # The rules explain this one: the model's words are not added on top.
    assert not any(r.startswith("model:") for r in one(scorer, "Service lamentable, serveur odieux").reasons)
    for result in scorer.score_batch(["arnaque totale, ne commandez jamais chez tapis royal", "bof"]):
        assert "model:royal" not in result.reasons
