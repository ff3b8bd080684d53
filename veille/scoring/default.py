"""The default scorer: French-aware rules feeding a small per-language logistic regression.

MODEL CARD (bundled model, veille/scoring/model/default.json.gz)
    What: one multinomial logistic regression per language (fr, en) over TF-IDF word 1-2-grams,
    negation-marked words and in-word character 2-5-grams of the SMS-normalised text, plus seven
    features from the rule layer (lexicon valence after negation, intensifiers and contrast,
    emoji polarity, irony markers); then a stacker, a small logistic regression fitted on the
    text model's out-of-fold predictions and the rule features, which learns how far to trust each
    (balanced class weights throughout). Rebuilt with
    `python scripts/train_default_model.py ../shared/data/sentiment-train.tsv`.
    Trained on: the shared training split `sentiment-train.tsv` only —
      fr: 1,333 tweets of UMSAB-French (cardiffnlp/xlm-t, commit 874214d), themselves DEFT 2017
          tweets about climate, energy, ecology and politics (Benamara et al. 2017), research use;
      en: 49,565 tweets of SemEval 2013-2016 Task 4 subtask A (annotations CC BY 3.0).
    The tweet texts are under Twitter's terms: the model ships n-gram weights, not the texts.
    Options chosen on the training split only (French: 5-fold cross-validation; English: trained
    on 2013-2015, validated on the 2016 test tweets).
    Checked on: the disjoint dev split (see bench/sentiment_eval.py), never trained on, and on
    tests/scoring/customer_sentiment.tsv (customer language written for veille, held out).
    Limits: the French tweets are political, not customer reviews, and have almost no emojis:
    emojis, SMS spelling and business complaints are carried by the rule layer. Retrain on your
    own labelled posts with `veille sentiment train` and `veille label`.
    Lexicons: vaderSentiment (C.J. Hutto) and vaderSentiment-fr (O. Deprez, T. Ek), MIT licence,
    plus veille's own tables (veille/scoring/lexicons/README.txt).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from veille.core.models import SentimentLabel, SentimentResult
from veille.scoring.features import word_features
from veille.scoring.lexicon import STOPWORDS_EN, STOPWORDS_FR, Resources, load_resources
from veille.scoring.linear import CLASSES, Head, LinearModel
from veille.scoring.rules import Evidence, Rules
from veille.scoring.text import EMOJI, PUNCT, Parsed, Tokenizer

MAX_REASONS = 8
_MODEL_REASONS = 2
MODEL_REASON_PULL = 0.25  # logits a word must add to its text's label to be named as a reason
RULES_THRESHOLD = 0.05  # VADER's own neutral band for its compound score
_EMPTY = SentimentResult(SentimentLabel.NEU, 0.0, "und", ())


class DefaultScorer:
    """Offline, thousands of short posts per second on one core; loads in about 2 s (1.5 of them the language
    detector's model, read once per process).

    The label is the most probable class; the score is P(pos) - P(neg), so a hesitant "neu"
    can carry a leaning. Posts with no words (emojis, emoticons) are judged by the rules alone.
    """

    name = "default"

    def __init__(self, model: LinearModel, *, resources: Resources | None = None, origin: str = "bundled") -> None:
        res = resources or load_resources()
        self.tokenizer = Tokenizer(res)
        self.tokenizer.detector.load()  # with the model, not on the first batch (the helper loads while polls start)
        self.rules = Rules(res)
        self.model = model
        # The rules know French and English; other languages are left unscored rather than read as French.
        self.languages = frozenset({"und", "fr", "en", *model.heads})
        self.origin = origin  # "bundled" or the path of a model trained with `veille sentiment train`

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        parsed = self.tokenizer.parse_batch([text if isinstance(text, str) else str(text) for text in texts])
        evidence = [self.rules.evaluate(item) for item in parsed]
        results: list[SentimentResult] = [_EMPTY] * len(parsed)
        groups: dict[int, list[int]] = {}
        heads: dict[int, Head] = {}
        for i, item in enumerate(parsed):
            if not item.tokens:
                continue
            if item.lang not in self.languages:
                results[i] = SentimentResult.unscored(item.lang)  # never read as French (issue 16)
                continue
            if not any(t.kind not in (PUNCT, EMOJI) for t in item.tokens):
                # Emojis and punctuation only: the model has no words to weigh, the rules decide.
                results[i] = _rules_verdict(item, evidence[i])
                continue
            head = self.model.head_for(item.lang if item.lang != "und" else self._closest_lang(item))
            heads[id(head)] = head
            groups.setdefault(id(head), []).append(i)
        for key, members in groups.items():
            head = heads[key]
            probs = _softmax(head.score([parsed[i] for i in members], [evidence[i] for i in members]))
            for i, given in zip(members, probs, strict=True):
                p = _without_complaint(given) if _plain_question(evidence[i]) else given
                best = int(p.argmax())
                label = CLASSES[best]
                score = float(np.clip(p[2] - p[0], -1.0, 1.0))
                reasons = _explaining(label, score, evidence[i])
                if label is not SentimentLabel.NEU and not any(r[0] in "+-" for r in reasons):
                    # No word of the rules explains the label: name the words the model leaned on.
                    reasons.extend(_model_reasons(head, parsed[i], evidence[i], best))
                results[i] = SentimentResult(label, round(score, 4), parsed[i].lang, tuple(reasons[:MAX_REASONS]))
        return results

    def _closest_lang(self, parsed: Parsed) -> str:
        """For posts too short to tell (hashtags, names): the head that knows more of the words."""
        best, best_known = "fr", 0  # emoji-only posts and ties go to French: French first
        words = ["\t" + t.norm for t in parsed.tokens if t.kind not in (PUNCT, EMOJI)]
        for lang, head in self.model.heads.items():
            known = int(np.count_nonzero(head.vectorizer.vocabulary.features(words) >= 0))
            if known > best_known:
                best, best_known = lang, known
        return best


def _rules_verdict(parsed: Parsed, evidence: Evidence) -> SentimentResult:
    compound = evidence.compound
    label = (
        SentimentLabel.POS
        if compound >= RULES_THRESHOLD
        else SentimentLabel.NEG
        if compound <= -RULES_THRESHOLD
        else SentimentLabel.NEU
    )
    return SentimentResult(label, round(compound, 4), parsed.lang, evidence.reasons[:MAX_REASONS])


def _plain_question(evidence: Evidence) -> bool:
    """A question with no bad word, no sad emoji and no irony marker: "C'est combien le menu ?".

    The training tweets are political, where a question is mostly rhetorical and leans negative; a
    customer asking a price or an opening time is not complaining (issue 16). A question that does
    complain carries its cue ("Pourquoi personne ne répond jamais ?") and is left to the model.
    """
    return evidence.questions > 0 and evidence.neg == 0 and not evidence.irony


def _without_complaint(probabilities: np.ndarray) -> np.ndarray:
    """Move the `neg` mass to `neu`: nothing in the text complains, so the leaning is not a verdict.

    Not for a model trained without `neu` rows (its `neu` is impossible): a class never seen is never predicted."""
    if probabilities[1] < 1e-9:
        return probabilities
    moved = probabilities.copy()
    moved[1] += moved[0]
    moved[0] = 0.0
    return moved


def _explaining(label: SentimentLabel, score: float, evidence: Evidence) -> list[str]:
    """The rule reasons that drove this verdict: cues of the label's sign (for `neu`, of the score's leaning),
    both signs when a contrast weighed them ("bon mais trop cher"). Issue 16: "+jamais tapis" was shown as a
    positive cue on a scam warning."""
    if evidence.contrast and label is not SentimentLabel.NEU:
        return list(evidence.reasons)
    if label is SentimentLabel.NEU:
        sign = "+" if score > 0 else "-" if score < 0 else ""
    else:
        sign = "+" if label is SentimentLabel.POS else "-"
    return [r for r in evidence.reasons if (sign and r.startswith(sign)) or r[0] not in "+-"]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def _model_reasons(head: Head, parsed: Parsed, evidence: Evidence, best: int) -> list[str]:
    """The words that pushed this text towards its label most, as the model weighed them here.

    A word is shown only if its own contribution (its weight for the label over its weight for the
    runner-up class, times its TF-IDF value in this text) is at least MODEL_REASON_PULL logits:
    a word the model barely leaned on ("royal" in a scam warning) explains nothing to a person.
    """
    seen = {reason.lstrip("+-") for reason in evidence.reasons}
    vectorizer = head.vectorizer
    vocabulary, idf, weights = vectorizer.vocabulary, vectorizer.idf, head.weights
    features = vocabulary.features(word_features(parsed, evidence.idiom_tokens))
    present = features[features >= 0].tolist()
    if not present:
        return []
    norm = math.sqrt(sum(float(idf[j]) ** 2 for j in present))
    others = [k for k in range(len(CLASSES)) if k != best]
    candidates = [
        token
        for position, token in enumerate(parsed.tokens)
        if not (
            token.kind in (PUNCT, EMOJI)
            or position in evidence.idiom_tokens
            or len(token.norm) < 3
            or token.raw in seen
            or token.norm in STOPWORDS_FR
            or token.norm in STOPWORDS_EN
        )  # "model:the" explains nothing to a person
    ]
    pulls: dict[str, float] = {}
    for token, j in zip(candidates, vocabulary.features(["\t" + t.norm for t in candidates]).tolist(), strict=True):
        if j < 0:
            continue
        margin = float(weights[j, best]) - max(float(weights[j, k]) for k in others)
        pull = margin * float(idf[j]) / norm
        if pull >= MODEL_REASON_PULL:
            pulls[token.raw] = max(pulls.get(token.raw, 0.0), pull)
    top = sorted(pulls.items(), key=lambda kv: -kv[1])[:_MODEL_REASONS]
    return [f"model:{word}" for word, _ in top]
