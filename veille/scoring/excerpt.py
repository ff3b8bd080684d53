"""What of a hit is scored: bounded whatever its length, chosen where the sentiment is.

A post, a review or a comment is scored whole. A news article is not: its body is mostly neutral
reporting (diluting whatever it says about the client), and the model's cost grows with the length
(a 3 KB article cost ten times a tweet). The rule, for a text longer than SHORT_TEXT characters:
- the title;
- the lead: the first LEAD_SENTENCES sentences (news sites put what happened there);
- the matched passages: each sentence naming one of the terms the hit matched, with the sentence after
  it (a verdict often follows the name: "Chez Gégé a fermé. Les clients sont furieux."), for the first
  MAX_PASSAGES such sentences;
in text order, each sentence cut at MAX_SENTENCE characters, the whole at most MAX_EXCERPT characters.
A term is found as the matcher finds it (accents and case folded, at word boundaries); a term of several
tokens ("tapis royal -perse") whose phrase appears nowhere is looked for by its longest word.
bench/sentiment_eval.py measures this rule against scoring the whole text, on long articles.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from functools import lru_cache

from veille.core.matching import fold, term_pattern

SHORT_TEXT = 600  # characters: below this, title and text are scored whole
LEAD_SENTENCES = 2
MAX_PASSAGES = 3
MAX_SENTENCE = 300
MAX_EXCERPT = 1200
MAX_SCAN = 64 * 1024  # characters of the text searched for passages (the stored field's size)
# A sentence ends with one of these marks before white space, or at a line break. The mark is matched, not
# looked behind for: a pattern that starts with a set of characters is scanned for in C, a look-behind is
# tried at every position (splitting an article cost more than folding it).
_SENTENCE_END = re.compile(r"[.!?…»]\s+|\n+")


def sentiment_excerpt(title: str, text: str, terms: Sequence[str] = ()) -> str:
    """The text to score for a hit with this title and text that matched these terms (see the module doc)."""
    if len(text) <= SHORT_TEXT:
        return (f"{title}. " if title and not text.startswith(title) else "") + text
    return _long_excerpt(title, text, tuple(terms))


@lru_cache(maxsize=1024)
def _long_excerpt(title: str, text: str, terms: tuple[str, ...]) -> str:
    """Remembered: the pipeline scores a new article's excerpt, then the alerting service looks for crisis
    words in the same excerpt, in the same write transaction (the pipeline forgets them after each one)."""
    head = f"{title}. " if title and not text.startswith(title) else ""
    sentences = [s for s in _sentences(text[:MAX_SCAN]) if s.strip()]
    chosen = set(range(min(LEAD_SENTENCES, len(sentences))))
    for index in _passages(sentences, terms):
        chosen.update((index, index + 1))
    parts = [head.strip()] if head else []
    parts += [sentences[i][:MAX_SENTENCE].strip() for i in sorted(chosen) if i < len(sentences)]
    return " ".join(parts)[:MAX_EXCERPT]


def _sentences(text: str) -> list[str]:
    """The text cut after each sentence's end mark, the white space between sentences dropped."""
    parts: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        cut = end.start() if end.group()[0] == "\n" else end.start() + 1  # the mark stays with its sentence
        parts.append(text[start:cut])
        start = end.end()
    parts.append(text[start:])
    return parts


def forget_excerpts() -> None:
    """Drop the remembered excerpts (their articles' texts with them)."""
    _long_excerpt.cache_clear()


def _passages(sentences: list[str], terms: Sequence[str]) -> list[int]:
    """Indices of the first MAX_PASSAGES sentences naming a term (the first term's first, then the next's)."""
    patterns = [_pattern(term) for term in terms]
    folded = _FoldedSentences(sentences)
    found: list[int] = []
    for pattern in (p for p in patterns if p is not None):
        for index in folded.naming(pattern):
            if index not in found:
                found.append(index)
                if len(found) >= MAX_PASSAGES:
                    return sorted(found)
    if not found:  # a term of several tokens: look for its longest word
        for term in terms:
            words = sorted(re.split(r"[^a-z0-9]+", fold(term)), key=len, reverse=True)
            if words and len(words[0]) >= 3:
                found.extend(folded.naming(re.compile(term_pattern(words[0]))))
        found = sorted(set(found))[:MAX_PASSAGES]
    return sorted(found)


_JOIN = "\x00"  # between folded sentences: fold keeps it, and no term pattern ends or starts on it


class _FoldedSentences:
    """A text's sentences folded in one call and searched in one pass per term, as one string joined by _JOIN;
    a match running across two sentences sends that term back to a search of each sentence alone."""

    def __init__(self, sentences: list[str]) -> None:
        self.sentences = sentences
        self.joined = "" if any(_JOIN in s for s in sentences) else fold(_JOIN.join(sentences))
        self.starts: list[int] = []
        if self.joined:
            position = 0
            for part in self.joined.split(_JOIN):
                self.starts.append(position)
                position += len(part) + 1
        self._each: list[str] | None = None

    def naming(self, pattern: re.Pattern[str]) -> list[int]:
        """Indices of the sentences the pattern finds, in order."""
        if len(self.starts) == len(self.sentences):
            indices: list[int] = []
            for match in pattern.finditer(self.joined):
                if _JOIN in match.group():
                    break
                index = bisect.bisect_right(self.starts, match.start()) - 1
                if not indices or indices[-1] != index:
                    indices.append(index)
            else:
                return indices
        if self._each is None:
            self._each = [fold(sentence) for sentence in self.sentences]
        return [index for index, text in enumerate(self._each) if pattern.search(text)]


@lru_cache(maxsize=256)
def _pattern(term: str) -> re.Pattern[str] | None:
    try:
        return re.compile(term_pattern(fold(term)))
    except ValueError:  # no letters or digits
        return None
