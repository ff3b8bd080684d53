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


class Vocabulary:
    """A fixed gram -> feature map (feature = the gram's position in `grams`), looked up a batch at a time.

    A dict of the bundled model's 152,000 grams held 33 MB of the scoring helper (a str object and a
    hash-table slot per gram). Here: the grams' 64-bit hashes, sorted, and the feature of each (2 MB),
    found with one numpy `searchsorted` for a whole batch of grams; the grams themselves are kept as one
    UTF-8 blob and its offsets (2 MB), only to be saved again or listed. Python's own str hash is used: it
    is computed in C and cached on each str, and is only ever compared within one process. Two of the
    model's grams with the same hash (odds about 1 in 10^9 a load) are detected, and that vocabulary is
    kept as a dict instead.
    A gram outside the vocabulary taken for one inside would need its hash to equal one of 152,000 among
    2^64: about 1 in 10^14 a lookup.
    """

    __slots__ = ("_blob", "_ends", "_exact", "_features", "_hashes")

    def __init__(self, grams: Sequence[str]) -> None:
        encoded = [gram.encode("utf-8", "surrogatepass") for gram in grams]
        self._blob = b"".join(encoded)
        self._ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
        del encoded
        hashes = np.fromiter(map(gram_hash, grams), dtype=np.int64, count=len(grams))
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._features = order.astype(np.int32)
        self._exact: dict[str, int] | None = None
        if len(grams) > 1 and bool((self._hashes[1:] == self._hashes[:-1]).any()):
            self._exact = {gram: i for i, gram in enumerate(grams)}  # a hash collision: exact, if bigger
            if len(self._exact) != len(grams):
                raise ValueError("the vocabulary lists a gram twice")

    def __len__(self) -> int:
        return len(self._ends)

    def features(self, grams: Sequence[str]) -> np.ndarray:
        """The feature of each gram (int64), -1 for a gram outside the vocabulary."""
        if self._exact is not None:
            get = self._exact.get
            return np.fromiter((get(gram, -1) for gram in grams), dtype=np.int64, count=len(grams))
        if not len(self._hashes):
            return np.full(len(grams), -1, dtype=np.int64)
        hashes = np.fromiter(map(gram_hash, grams), dtype=np.int64, count=len(grams))
        found = np.searchsorted(self._hashes, hashes)
        found[found == len(self._hashes)] = 0
        return np.where(self._hashes[found] == hashes, self._features[found], -1).astype(np.int64)

    def get(self, gram: str) -> int | None:
        feature = int(self.features([gram])[0])
        return None if feature < 0 else feature

    def __contains__(self, gram: object) -> bool:
        return isinstance(gram, str) and self.get(gram) is not None

    def grams(self) -> list[str]:
        """Every gram, in feature order (what the model file stores)."""
        ends = self._ends.tolist()
        blob = self._blob
        return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip([0, *ends], ends, strict=False)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._blob == other._blob and np.array_equal(self._ends, other._ends)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[Vocabulary], tuple[list[str]]]:
        """Pickled as its grams: str hashes differ from one process to the next (PYTHONHASHSEED)."""
        return (Vocabulary, (self.grams(),))


gram_hash = hash  # a module attribute so that a test can force collisions


@dataclass(frozen=True, slots=True)
class Batch:
    """A sparse (documents x features) matrix in coordinate form: what the model multiplies."""

    size: int  # number of documents
    doc: np.ndarray  # int64, row of each value
    idx: np.ndarray  # int64, feature of each value
    val: np.ndarray  # float64


class Vectorizer:
    """Maps parsed texts to TF-IDF rows with a fixed vocabulary, in a few numpy passes per batch."""

    def __init__(self, vocabulary: Vocabulary | Sequence[str], idf: Sequence[float] | np.ndarray | None = None) -> None:
        self.vocabulary = vocabulary if isinstance(vocabulary, Vocabulary) else Vocabulary(vocabulary)
        self.size = len(self.vocabulary)
        self.idf = np.ones(self.size) if idf is None else np.asarray(idf, dtype=np.float64)
        # A word's character-gram features as int32 bytes (a few dozen bytes a word, where a list of ints
        # would cost 36 bytes a feature): the same words come back in every batch.
        self._char_cache: dict[str, bytes] = {}

    @property
    def n_features(self) -> int:
        """Vocabulary, then the rule features, then a constant 1 (the bias)."""
        return self.size + N_FEATURES + 1

    def _learn_chars(self, words: Iterable[str]) -> None:
        """Put the character-gram features of `words` (not cached yet) in the cache, with one lookup for all."""
        cache = self._char_cache
        unique = dict.fromkeys(words)
        new = [word for word in unique if word not in cache]
        if not new:
            return
        if len(cache) + len(new) > _CACHE_LIMIT:
            cache.clear()
            new = list(unique)
        grams = [char_grams(word) for word in new]
        features = self.vocabulary.features([gram for word_grams in grams for gram in word_grams]).astype(np.int32)
        known = features >= 0
        ends = np.cumsum(np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))).tolist()
        start = 0
        for word, end in zip(new, ends, strict=True):
            cache[word] = features[start:end][known[start:end]].tobytes()
            start = end

    def transform(self, parsed: Sequence[Parsed], evidence: Sequence[Evidence]) -> Batch:
        words: list[str] = []  # the batch's word features, then looked up at once
        words_per_doc: list[int] = []
        char_words: list[str] = []  # the words whose character grams count
        char_words_per_doc: list[int] = []
        for item, found in zip(parsed, evidence, strict=True):
            before = len(words)
            words.extend(word_features(item, found.idiom_tokens))
            words_per_doc.append(len(words) - before)
            before = len(char_words)
            char_words.extend(words_for_chars(item, found.idiom_tokens))
            char_words_per_doc.append(len(char_words) - before)
        n = len(parsed)
        word_doc = np.repeat(np.arange(n, dtype=np.int64), words_per_doc)
        word_idx = self.vocabulary.features(words)
        known = word_idx >= 0
        self._learn_chars(char_words)
        pieces = list(map(self._char_cache.__getitem__, char_words))
        char_idx = np.frombuffer(b"".join(pieces), dtype=np.int32).astype(np.int64)
        per_word = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces)) // 4
        char_doc = np.repeat(np.repeat(np.arange(n, dtype=np.int64), char_words_per_doc), per_word)
        parts = [self._tfidf(n, word_doc[known], word_idx[known]), self._tfidf(n, char_doc, char_idx)]
        dense = np.array([e.features() for e in evidence], dtype=np.float64).reshape(n, N_FEATURES)
        rows, cols = np.nonzero(dense)
        parts.append((rows.astype(np.int64), cols.astype(np.int64) + self.size, dense[rows, cols]))
        docs = np.arange(n, dtype=np.int64)
        parts.append((docs, np.full(n, self.n_features - 1, dtype=np.int64), np.ones(n)))
        return Batch(n, *(np.concatenate([p[k] for p in parts]) for k in range(3)))

    def _tfidf(self, n: int, doc: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """Each occurrence weighs its feature's IDF, scaled so a document's block has unit length.

        Repeated n-grams are not merged here (a linear model just adds them up): a feature seen
        k times gets k * idf / norm, with norm = sqrt(sum of idf² over occurrences). No sort, so
        the cost stays linear in the text.
        """
        if not len(idx):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        val = self.idf[idx]
        norms = np.sqrt(np.bincount(doc, weights=val * val, minlength=n))
        return doc, idx, val / norms[doc]


def all_grams(parsed: Parsed) -> Iterable[str]:
    """Every candidate feature of a text, for building a vocabulary at training time."""
    yield from word_features(parsed)
    for word in words_for_chars(parsed):
        yield from char_grams(word)
