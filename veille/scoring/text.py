"""From raw post text to normalised tokens: truncation, tokenising, language, SMS-French spelling.

The language is py3langid's guess (veille.scoring.language) where it is sure, else a vote of
French and English grammar words; posts are parsed in batches because the guess is cheaper so.

Everything here is a single left-to-right pass of compiled regular expressions and dictionary
look-ups, so the cost is linear in the (already truncated) input: a 1 MB one-line post costs
what its first MAX_CHARS characters cost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from veille.scoring.language import SHARED_DETECTOR, VOTED, Guess, LanguageDetector, choose
from veille.scoring.lexicon import BOOSTERS, STOPWORDS_EN, STOPWORDS_FR, Resources

MAX_CHARS = 5000  # longer posts are scored on their beginning (RELIABILITY E12)
_CACHE_LIMIT = 100_000

WORD, EMOJI, PUNCT, HASHTAG = "w", "e", "p", "h"

_EMOJI_CHARS = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff"
_ELONGATED = re.compile(r"(\w)\1{2,}")
_ELISION = re.compile(r"^(qu|[cdjlmnst])'(.+)$")
_ACCENTED = re.compile(r"[éèêëàâçùûôîï]")
_PLAIRE_AUX = frozenset({"a", "as", "ont", "avait", "avaient", "aurait", "auraient", "aura"})
_MAI_MONTH = frozenset({"en", "de", "le", "du", "mois", "ce", "fin", "début", "mi", "1er", "premier"})


class Token(NamedTuple):
    norm: str  # lower-case, standard spelling: what the lexicons and the model see
    raw: str  # as written, for the reasons shown to people
    kind: str  # WORD, EMOJI (emojis and emoticons), PUNCT (clause boundary), HASHTAG
    elongated: bool = False
    shouted: bool = False


@dataclass(frozen=True, slots=True)
class Parsed:
    lang: str  # "fr", "en", another of veille.scoring.language.CANDIDATES, or "und" (too short to tell)
    tokens: list[Token]


class Tokenizer:
    """Splits text into tokens and normalises them; built once from the packaged tables."""

    def __init__(self, res: Resources, *, detector: LanguageDetector | None = None) -> None:
        self.res = res
        self.detector = detector or SHARED_DETECTOR
        emoticons = sorted(res.emoticons, key=len, reverse=True)
        alternatives = "|".join(re.escape(e) for e in emoticons) or "(?!)"
        self._pattern = re.compile(
            r"(?P<url>https?://\S*|www\.\S+)"
            r"|(?P<mention>@\w+)"
            rf"|(?<![\w:;=])(?P<emoticon>{alternatives})(?![\w])"
            r"|(?P<hashtag>#[^\W_][\w'’]*)"
            r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*|\d+)"
            rf"|(?P<emoji>[{_EMOJI_CHARS}])"
            r"|(?P<punct>[.!?;…]+|,)"
        )
        expansions = {word for value in res.sms.values() for word in value.split()}
        self._cache: dict[tuple[str, bool, bool], tuple[Token, ...]] = {}
        self._known = (
            set(res.sms)
            | expansions
            | set(res.lexicons["fr"])
            | set(res.lexicons["en"])
            | STOPWORDS_FR
            | STOPWORDS_EN
            | set(BOOSTERS)
        )

    def parse(self, text: str) -> Parsed:
        return self.parse_batch([text])[0]

    def parse_batch(self, texts: Sequence[str]) -> list[Parsed]:
        """Many texts at once: their languages are guessed in one sparse product."""
        clipped = [text[:MAX_CHARS] for text in texts]
        split = [self._split(text) for text in clipped]
        words = [_words(raw_tokens) for raw_tokens in split]
        guesses = self.detector.guess_batch(words)
        return [
            self._finish(text, raw_tokens, self._language(text, raw_tokens, line, guess))
            for text, raw_tokens, line, guess in zip(clipped, split, words, guesses, strict=True)
        ]

    def _language(self, text: str, raw_tokens: list[tuple[str, str]], words: str, guess: Guess) -> str:
        if guess.lang in VOTED:
            return guess.lang  # what `choose` answers whatever the vote: not worth counting grammar words
        return choose(guess, self._detect(text, raw_tokens), words.count(" ") + 1)

    def _split(self, text: str) -> list[tuple[str, str]]:
        raw_tokens: list[tuple[str, str]] = []  # (kind, raw)
        for match in self._pattern.finditer(text):
            kind = match.lastgroup
            if kind in ("url", "mention"):
                continue
            raw = match.group()
            if kind in ("emoticon", "emoji"):
                raw_tokens.append((EMOJI, raw))
            elif kind == "hashtag":
                raw_tokens.append((HASHTAG, raw))
            elif kind == "word":
                raw_tokens.append((WORD, raw))
            else:
                raw_tokens.append((PUNCT, raw))
        return raw_tokens

    def _finish(self, text: str, raw_tokens: list[tuple[str, str]], lang: str) -> Parsed:
        shouting_all = text.upper() == text
        tokens: list[Token] = []
        for kind, raw in raw_tokens:
            if kind in (EMOJI, PUNCT):
                tokens.append(Token(raw, raw, kind))
            elif kind == HASHTAG:
                tokens.append(Token(raw[1:].lower().replace("’", "'"), raw, HASHTAG))
            else:
                shouted = not shouting_all and len(raw) > 1 and raw.isupper()
                self._word(raw, lang, shouted, tokens)
        if lang != "en":
            _french_context(tokens)
        return Parsed(lang, tokens)

    def _detect(self, text: str, raw_tokens: list[tuple[str, str]]) -> str:
        """Stopword ratios: cheap, offline, and right on tweets longer than a few words."""
        fr = en = 0
        sms = self.res.sms
        for kind, raw in raw_tokens:
            if kind != WORD:
                continue
            word = raw.lower().replace("’", "'")
            if word in STOPWORDS_FR or word in sms:
                fr += 1
            if word in STOPWORDS_EN:
                en += 1
        fr += min(2, len(_ACCENTED.findall(text, 0, 500)))
        if fr == en == 0:
            return "und"
        return "en" if en > fr else "fr"

    def _word(self, raw: str, lang: str, shouted: bool, out: list[Token]) -> None:
        if raw in ("g", "G") and out and out[-1].norm.isdigit():
            out.append(Token("g", raw, WORD))  # "200 g", "4 g": grams or mobile network, not SMS "j'ai"
            return
        key = (raw, lang == "en", shouted)
        expanded = self._cache.get(key)
        if expanded is None:
            expanded = self._expand(raw, lang == "en", shouted)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = expanded
        out.extend(expanded)

    def _expand(self, raw: str, english: bool, shouted: bool) -> tuple[Token, ...]:
        """One written word -> its normalised tokens (cached: the same words come back all day)."""
        word = raw.lower().replace("’", "'")
        out: list[Token] = []
        if english:
            if word.endswith("n't") and len(word) > 3:
                base = {"won't": "will", "can't": "can", "ain't": "is"}.get(word, word[:-3])
                return Token(base, raw, WORD, False, shouted), Token("not", raw, WORD, False, shouted)
        else:
            elided = _ELISION.match(word)
            if elided:
                out.append(Token(elided.group(1) + "'", raw, WORD))
                word = elided.group(2)
        elongated = False
        if _ELONGATED.search(word):
            elongated = True
            word = self._unelongate(word)
        expansion = None if english else self.res.sms.get(word)
        if expansion is None:
            out.append(Token(word, raw, WORD, elongated, shouted))
            return tuple(out)
        for part in expansion.split():
            elided = _ELISION.match(part)
            if elided:
                out.append(Token(elided.group(1) + "'", raw, WORD))
            out.append(Token(elided.group(2) if elided else part, raw, WORD, elongated, shouted))
        return tuple(out)

    def _unelongate(self, word: str) -> str:
        """ "pizzzza" -> "pizza", "trooop" -> "trop": try doubled letters, then single ones."""
        doubled = _ELONGATED.sub(r"\1\1", word)
        if doubled in self._known:
            return doubled
        single = _ELONGATED.sub(r"\1", word)
        return single if single in self._known else doubled


def _words(raw_tokens: list[tuple[str, str]]) -> str:
    """What the language detector reads: the words and hashtags, without links, mentions, numbers or emojis."""
    return " ".join(
        raw.lstrip("#") for kind, raw in raw_tokens if kind == HASHTAG or (kind == WORD and not raw.isdigit())
    )


def _french_context(tokens: list[Token]) -> None:
    """Spellings whose meaning depends on the neighbours ("plu", "mai", "g")."""
    for i, token in enumerate(tokens):
        norm = token.norm
        if norm == "plu":
            before = {t.norm for t in tokens[max(0, i - 3) : i]}
            # "ça m'a plu" is "plaire"; "yavè plu de pizza" ("il y avait") is SMS for "plus".
            plaire = bool(before & _PLAIRE_AUX) and "y" not in before
            tokens[i] = token._replace(norm="plaire" if plaire else "plus")
        elif norm == "mai":
            prev = tokens[i - 1].norm if i else ""
            nxt = tokens[i + 1].norm if i + 1 < len(tokens) else ""
            if not (prev.isdigit() or nxt.isdigit() or prev in _MAI_MONTH):
                tokens[i] = token._replace(norm="mais")
