"""Turn a parsed text into sparse TF-IDF features (word 1-2-grams, character 2-5-grams) plus the rules.

Shared by training and scoring so the two can never disagree. Character n-grams are taken inside
each normalised word (padded with spaces, like scikit-learn's `char_wb`): they catch spelling
variants the SMS table does not list ("dégoutééé", "magnifik"). A word's n-grams are cached, since
the same words come back in every batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from veille.scoring.lexicon import NEGATORS_EN, NEGATORS_FR
from veille.scoring.rules import N_FEATURES, SCOPE, Evidence
from veille.scoring.text import EMOJI, PUNCT, Parsed

_NEGATORS = NEGATORS_FR | NEGATORS_EN
CHAR_MIN, CHAR_MAX = 2, 5
_CACHE_LIMIT = 200_000


def word_features(parsed: Parsed, skip: frozenset[int] = frozenset()) -> list[str]:
    """Unigrams, bigrams and negation-marked unigrams ("\\t!bon" in "pas bon"), tab-prefixed.

    Tokens at `skip` positions (idioms: the rules give their valence) break the sequence like punctuation."""
    out: list[str] = []
    prev = ""
    scope = 0
    for position, token in enumerate(parsed.tokens):
        if token.kind == PUNCT or position in skip:
            prev, scope = "", 0
            continue
        norm = token.norm
        out.append("\t" + norm)
        if prev:
            out.append(f"\t{prev}\t{norm}")
        if scope and token.kind != EMOJI:
            out.append("\t!" + norm)
            scope -= 1
        if norm in _NEGATORS:
            scope = SCOPE
        prev = norm
    return out


def char_grams(word: str) -> list[str]:
    padded = f" {word} "
    size = len(padded)
    return [padded[k : k + n] for n in range(CHAR_MIN, CHAR_MAX + 1) for k in range(size - n + 1)]


def words_for_chars(parsed: Parsed, skip: frozenset[int] = frozenset()) -> Iterator[str]:
    for position, token in enumerate(parsed.tokens):
        if token.kind not in (PUNCT, EMOJI) and len(token.norm) > 1 and position not in skip:
            yield token.norm


@dataclass(frozen=True, slots=True)
class Batch:
    """A sparse (documents x features) matrix in coordinate form: what the model multiplies."""

    size: int  # number of documents
    doc: np.ndarray  # int64, row of each value
    idx: np.ndarray  # int64, feature of each value
    val: np.ndarray  # float64


class Vectorizer:
    """Maps parsed texts to TF-IDF rows with a fixed vocabulary, in a few numpy passes per batch."""

    def __init__(self, vocabulary: dict[str, int], idf: Sequence[float] | np.ndarray | None = None) -> None:
        self.vocabulary = vocabulary
        self.size = len(vocabulary)
        self.idf = np.ones(self.size) if idf is None else np.asarray(idf, dtype=np.float64)
        self._char_cache: dict[str, list[int]] = {}

    @property
    def n_features(self) -> int:
        """Vocabulary, then the rule features, then a constant 1 (the bias)."""
        return self.size + N_FEATURES + 1

    def _chars(self, word: str) -> list[int]:
        cached = self._char_cache.get(word)
        if cached is None:
            get = self.vocabulary.get
            cached = [j for j in map(get, char_grams(word)) if j is not None]
            if len(self._char_cache) > _CACHE_LIMIT:
                self._char_cache.clear()
            self._char_cache[word] = cached
        return cached

    def transform(self, parsed: Sequence[Parsed], evidence: Sequence[Evidence]) -> Batch:
        get = self.vocabulary.get
        word_idx: list[int] = []
        word_len: list[int] = []
        char_idx: list[int] = []
        char_len: list[int] = []
        for item, found in zip(parsed, evidence, strict=True):
            before = len(word_idx)
            word_idx.extend(j for j in map(get, word_features(item, found.idiom_tokens)) if j is not None)
            word_len.append(len(word_idx) - before)
            before = len(char_idx)
            for word in words_for_chars(item, found.idiom_tokens):
                char_idx.extend(self._chars(word))
            char_len.append(len(char_idx) - before)
        n = len(parsed)
        parts = [self._tfidf(n, word_idx, word_len), self._tfidf(n, char_idx, char_len)]
        dense = np.array([e.features() for e in evidence], dtype=np.float64).reshape(n, N_FEATURES)
        rows, cols = np.nonzero(dense)
        parts.append((rows.astype(np.int64), cols.astype(np.int64) + self.size, dense[rows, cols]))
        docs = np.arange(n, dtype=np.int64)
        parts.append((docs, np.full(n, self.n_features - 1, dtype=np.int64), np.ones(n)))
        return Batch(n, *(np.concatenate([p[k] for p in parts]) for k in range(3)))

    def _tfidf(self, n: int, indices: list[int], lengths: list[int]) -> tuple[np.ndarray, ...]:
        """Each occurrence weighs its feature's IDF, scaled so a document's block has unit length.

        Repeated n-grams are not merged here (a linear model just adds them up): a feature seen
        k times gets k * idf / norm, with norm = sqrt(sum of idf² over occurrences). No sort, so
        the cost stays linear in the text.
        """
        if not indices:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        idx = np.asarray(indices, dtype=np.int64)
        val = self.idf[idx]
        norms = np.sqrt(np.bincount(doc, weights=val * val, minlength=n))
        return doc, idx, val / norms[doc]


def all_grams(parsed: Parsed) -> Iterable[str]:
    """Every candidate feature of a text, for building a vocabulary at training time."""
    yield from word_features(parsed)
    for word in words_for_chars(parsed):
        yield from char_grams(word)
