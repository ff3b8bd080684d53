"""The rule layer: lexicon valences adjusted for negation, intensifiers, contrast and irony.

It is VADER's idea (Hutto & Gilbert 2014) rebuilt for how French customers write: idioms first
("pas terrible" is negative, "jamais déçu" positive), a negation scope of three words that stops at
punctuation, clauses after "mais / pourtant / but" weighing three times the clauses before, and
emojis counted like words. Its totals feed the statistical model as features, and its strongest
items become the human-readable reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from veille.scoring.lexicon import (
    BOOSTERS,
    CONTRAST,
    IRONY_MARKERS,
    NEGATORS_EN,
    NEGATORS_FR,
    STOPWORDS_EN,
    STOPWORDS_FR,
    Resources,
    fold,
)
from veille.scoring.text import EMOJI, HASHTAG, PUNCT, Parsed, Token

_NEGATORS = NEGATORS_FR | NEGATORS_EN
BEFORE_CONTRAST, AFTER_CONTRAST = 0.5, 1.5
NEGATE_POSITIVE, NEGATE_NEGATIVE = -0.74, -0.5
SCOPE = 3  # words a negator or booster reaches
# A negator turns a bad word into mild praise ("pas mauvais", "nothing wrong") only when nothing but these
# stands between them: in "ne commandez jamais chez ces escrocs" the "jamais" is about ordering, and the
# swindlers stay swindlers (issue 16: "+jamais tapis" was shown as praise in a scam warning).
_NEGATION_FILLERS = frozenset(
    {"du", "tout", "de", "été", "était", "est", "être", "sont", "is", "was", "be", "been", "at", "all"}
)
MAX_REASONS = 6
_CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the rules found in one text; `features()` is what the model sees."""

    pos: float = 0.0  # sum of positive weighted valences
    neg: float = 0.0  # sum of |negative| weighted valences
    emoji_pos: float = 0.0
    emoji_neg: float = 0.0
    negations: int = 0
    exclamations: int = 0
    questions: int = 0
    irony: bool = False
    contrast: bool = False
    reasons: tuple[str, ...] = ()
    # Token positions inside idioms: their meaning is the idiom's valence, not their words' ("pas mal" is
    # praise, though "mal" alone is bad), so the model's word features leave them out.
    idiom_tokens: frozenset[int] = frozenset()

    @property
    def compound(self) -> float:
        """VADER's normalisation of the net valence to (-1, 1)."""
        total = self.pos - self.neg
        return total / math.sqrt(total * total + 15.0)

    def features(self) -> list[float]:
        """Bounded values only: an SMS rant must not land far outside what training tweets showed.

        No "?" feature: in the political training tweets questions are rhetorical and lean
        negative, but a customer asking "vous êtes ouverts dimanche ?" is not complaining.
        """
        total = self.pos + self.neg
        emoji = self.emoji_pos - self.emoji_neg
        return [
            self.compound,
            total / (total + 4.0),  # how opinionated, whatever the direction
            emoji / (abs(emoji) + 2.0),
            min(self.negations, 3) / 3.0,
            min(self.exclamations, 3) / 3.0,
            1.0 if self.irony else 0.0,
            1.0 if self.contrast else 0.0,
        ]


N_FEATURES = len(Evidence().features())


class Rules:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self._cache: dict[tuple[str, str], float | None] = {}  # (word, lang) -> valence

    def _valence(self, word: str, lang: str) -> float | None:
        key = (word, lang)
        if key in self._cache:
            return self._cache[key]
        value = None
        for code in (lang,) if lang in ("fr", "en") else ("fr", "en"):
            value = self.res.lexicons[code].get(word)
            if value is None and word not in STOPWORDS_FR and word not in STOPWORDS_EN:
                # Accent-free spelling ("decu") but not for grammar words: "sur" is not "sûr".
                value = self.res.folded[code].get(fold(word))
            if value is not None:
                break
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value
        return value

    def evaluate(self, parsed: Parsed) -> Evidence:
        tokens = parsed.tokens
        norms = [t.norm for t in tokens]
        last_contrast = -1
        contrast_raw = ""
        for i, token in enumerate(tokens):
            if token.norm in CONTRAST and token.kind != EMOJI:
                last_contrast, contrast_raw = i, token.norm
        items: dict[str, float] = {}
        pos = neg = emoji_pos = emoji_neg = 0.0
        negations = exclamations = questions = 0
        irony = False
        in_idioms: set[int] = set()
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            weight = 1.0 if last_contrast < 0 else (BEFORE_CONTRAST if i < last_contrast else AFTER_CONTRAST)
            kind = token.kind
            if kind == PUNCT:
                exclamations += token.raw.count("!")
                questions += token.raw.count("?")
                i += 1
                continue
            if kind == EMOJI:
                value = self.res.emoji.get(token.raw.replace("\ufe0f", ""))
                if value is None:
                    value = self.res.emoticons.get(token.raw)
                if token.raw in IRONY_MARKERS:
                    irony = True
                if value:
                    value *= weight
                    if value > 0:
                        emoji_pos += value
                        pos += value
                    else:
                        emoji_neg -= value
                        neg -= value
                    items[token.raw] = items.get(token.raw, 0.0) + value
                i += 1
                continue
            if kind == HASHTAG and token.raw.lower() in IRONY_MARKERS:
                irony = True
            word = token.norm
            idiom = self._idiom(norms, i)
            if word in _NEGATORS and idiom is None:
                negations += 1  # the "pas" of "pas mal" negates nothing
            if idiom is not None:
                length, value = idiom
                in_idioms.update(range(i, i + length))
                label = " ".join(t.raw for t in tokens[i : i + length] if t.kind != PUNCT)
                value *= weight
                items[label] = items.get(label, 0.0) + value
                if value > 0:
                    pos += value
                else:
                    neg -= value
                i += length
                continue
            # "super" before a word intensifies it; "super," alone is praise.
            modifies = (
                word in BOOSTERS
                and i + 1 < n
                and tokens[i + 1].kind not in (PUNCT, EMOJI)
                and self._valence(tokens[i + 1].norm, parsed.lang) is not None
            )
            value = None if modifies else self._valence(word, parsed.lang)
            if value:
                value, negator = self._context(tokens, i, value)
                if token.elongated:
                    value *= 1.2
                if token.shouted:
                    value *= 1.25
                value *= weight
                label = f"{negator} {token.raw}" if negator else token.raw
                items[label] = items.get(label, 0.0) + value
                if value > 0:
                    pos += value
                else:
                    neg -= value
            i += 1
        if irony and pos > 0:
            # "Super, encore 2h de retard #ironie": the praise is the complaint.
            neg, pos = neg + pos, 0.0
            items = {k: -abs(v) for k, v in items.items()}
        reasons = [
            f"{'+' if v > 0 else '-'}{k}"
            for k, v in sorted(items.items(), key=lambda kv: -abs(kv[1]))[:MAX_REASONS]
            if abs(v) >= 0.3
        ]
        if last_contrast >= 0 and items:
            reasons.append(f"contrast:{contrast_raw}")
        if irony:
            reasons.append("irony")
        return Evidence(
            pos,
            neg,
            emoji_pos,
            emoji_neg,
            negations,
            exclamations,
            questions,
            irony,
            last_contrast >= 0,
            tuple(reasons),
            frozenset(in_idioms),
        )

    def _idiom(self, norms: list[str], i: int) -> tuple[int, float] | None:
        candidates = self.res.idioms.get(norms[i])
        if not candidates:
            return None
        for words, value in candidates:
            if tuple(norms[i : i + len(words)]) == words:
                return len(words), value
        return None

    def _context(self, tokens: list[Token], i: int, value: float) -> tuple[float, str]:
        """Apply the boosters and the negator found in the few words before position i."""
        scale = 1.0
        negator = ""
        adjacent = True  # only boosters and fillers between the word and the negator found so far
        for j in range(i - 1, max(-1, i - 1 - SCOPE), -1):
            prev = tokens[j]
            if prev.kind == PUNCT or prev.norm in CONTRAST:
                break
            boost = BOOSTERS.get(prev.norm)
            if boost is not None:
                scale += boost * (1.25 if prev.elongated else 1.0)
            if prev.norm in _NEGATORS and not negator:
                if value < 0 and not adjacent:
                    break  # the negator is about something else: the bad word keeps its meaning
                negator = prev.raw.lower()
            elif boost is None and prev.norm not in _NEGATION_FILLERS:
                adjacent = False
        if negator:
            value *= NEGATE_POSITIVE if value > 0 else NEGATE_NEGATIVE
        return value * scale, negator
