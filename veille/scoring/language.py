"""Which language a short post is written in (issue 16): py3langid, restricted to likely languages.

The stop-word vote veille used before could only say "fr", "en" or "und", so a Spanish or Dutch
post was scored as French. py3langid (a maintained fork of langid.py: naive Bayes over byte
n-grams, trained on many domains, 4.6 MB, numpy only) names 97 languages; restricted to the 14 a
French business hears from and checked against French and English grammar words (`choose`), veille
names 97 % of the short posts of tests/scoring/data/short_posts_lang.tsv and 99.7 % of the dev
split's tweets rightly (`bench/sentiment_eval.py FILE --languages` prints the figures).

Cost: the model is read once per process (about 1.5 s, when the scorer loads, never at import: the
CLI starts without it). A batch walks its texts' bytes in step in numpy and scores them with one
sum over sorted (text, feature) pairs: about 15 to 25 µs a post (one post alone: about 100 µs).
"""

from __future__ import annotations

import lzma
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Western Europe's languages, those of France's largest immigrant communities and of its tourists:
# a post in another language is named after the closest of these (still not scored). Fewer
# candidates, fewer confusions: Catalan, Occitan or Luxembourgish would take short French posts.
CANDIDATES = ("fr", "en", "es", "de", "it", "nl", "pt", "pl", "ro", "tr", "ar", "ru", "zh", "ja")
MAX_CHARS = 300  # the first words tell the language; a whole article would only cost more
# When to believe a guess other than French or English (see `choose`); chosen on the list of short posts
# and the dev split (tests/scoring/test_language.py), with short French reviews ("Pizza margherita",
# "Tapis Royal", "Service rapide") that must not leave French.
SURE = 0.7  # the guess's probability needed against French or English grammar words in the post
LIKELY = 0.6  # ... when the post has none
MIN_WORDS = 3  # "Top !", "Nickel", "pizza froide", a name: too short to name a language veille does not score
CHUNK = 1024  # texts walked together at most: two arrays of (MAX_CHARS x 4 bytes of UTF-8) x 1024 x 8, 10 MB each
LOCKSTEP_FROM = 16  # texts in a batch from which the byte walk runs in numpy (see _Tables.features)
VOTED = ("fr", "en")  # the languages the grammar-word vote knows (veille.scoring.text)
# Written in another script: never confused with French, and Chinese or Japanese have no spaces to count words by.
OTHER_SCRIPTS = frozenset({"ar", "ru", "zh", "ja"})


@dataclass(frozen=True, slots=True)
class Guess:
    lang: str
    confidence: float  # the detector's probability for `lang` among the candidates


class LanguageDetector:
    """py3langid's model, restricted to `languages`; built lazily, shared by every scorer of the process."""

    def __init__(self, languages: Sequence[str] = CANDIDATES) -> None:
        self.languages = tuple(languages)
        self._tables: _Tables | None = None
        self._lock = threading.Lock()

    def guess_batch(self, texts: Sequence[str]) -> list[Guess]:
        """One guess per text. A text with no letters gets ("und", 0.0)."""
        if len(texts) > CHUNK:  # the batch walk holds a byte x text array: bound it
            return [
                guess
                for start in range(0, len(texts), CHUNK)
                for guess in self.guess_batch(texts[start : start + CHUNK])
            ]
        tables = self.load()
        encoded = [_encode(text[:MAX_CHARS]) for text in texts]
        rows, features = tables.features(encoded)
        scores = np.zeros((len(texts), len(tables.classes)), dtype=np.float32)
        if len(rows):
            # Feature counts per text, then each language's sum of log1p(count) x log-probability, summed per
            # text over the sorted pairs (numpy only: scipy's sparse product cost the scoring helper 21 MB).
            unique, counts = np.unique(rows * tables.ptc.shape[0] + features, return_counts=True)
            text_of, feature_of = np.divmod(unique, tables.ptc.shape[0])
            contribution = np.log1p(counts).astype(np.float32)[:, None] * tables.ptc[feature_of]
            starts = np.flatnonzero(np.r_[True, text_of[1:] != text_of[:-1]])
            scores[text_of[starts]] = np.add.reduceat(contribution, starts, axis=0) + tables.pc
        # py3langid's calibration: the softmax temperature grows with the square root of the length.
        lengths = np.fromiter((len(e) or 1 for e in encoded), dtype=np.float32, count=len(encoded))
        scores /= np.sqrt(lengths)[:, None]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        best = scores.argmax(axis=1)
        confidence = scores[np.arange(len(texts)), best].tolist()
        featured = set(rows.tolist())
        classes = tables.classes
        return [
            Guess(classes[b], confidence[i]) if i in featured else Guess("und", 0.0)
            for i, b in enumerate(best.tolist())
        ]

    def load(self) -> _Tables:
        """Read the model now (once per process) rather than on the first batch."""
        with self._lock:
            if self._tables is None:
                self._tables = _Tables.load(self.languages)
            return self._tables


def choose(guess: Guess, vote: str, words: int) -> str:
    """The post's language from the detector's guess and the stop-word `vote` ("fr", "en" or "und").

    French and English are taken as guessed. Another language only when the detector is fairly sure
    and the post has a few words: "Tapis Royal" must not become unscored Turkish, nor "pizza froide"
    Italian. Otherwise
    the vote decides, and an undecided short post stays "und" (the scorer reads it as French first)."""
    if guess.lang in VOTED:
        return guess.lang
    if guess.lang in OTHER_SCRIPTS and guess.confidence >= SURE:
        return guess.lang
    needed = LIKELY if vote == "und" else SURE
    if guess.lang != "und" and guess.confidence >= needed and words >= MIN_WORDS:
        return guess.lang
    return vote


SHARED_DETECTOR = LanguageDetector()  # nothing loaded until the first guess


def _encode(text: str) -> bytes:
    """As py3langid reads text: NFC, lower-cased when shouted, UTF-8."""
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf-8", errors="surrogatepass")


@dataclass(frozen=True, slots=True)
class _Tables:
    """The model's arrays for the chosen languages (float32: half the memory, and one type for the products)."""

    classes: tuple[str, ...]
    ptc: np.ndarray  # feature x language log-probabilities
    pc: np.ndarray  # language priors
    nextmove: Any  # the byte automaton that finds the n-gram features (a memoryview of next_array)
    rowbase: list[int]
    output: Any
    next_array: np.ndarray  # the same automaton as numpy arrays, for the batch walk
    row_array: np.ndarray
    output_array: np.ndarray

    @classmethod
    def load(cls, languages: Sequence[str]) -> _Tables:
        """py3langid's model file read as its own loader does (LZMA to a temporary file, then numpy without
        pickle), minus the copy of the 39 MB automaton into a stdlib array that its loader makes: that copy
        was the scoring helper's peak. tests/scoring/test_language.py checks the answers stay py3langid's."""
        from py3langid.langid import MODEL_DIR, MODEL_FILE

        with tempfile.TemporaryFile(suffix=".npz") as unpacked:
            with lzma.open(MODEL_DIR / MODEL_FILE) as packed:
                shutil.copyfileobj(packed, unpacked, length=1 << 20)
            unpacked.seek(0)
            with np.load(unpacked, allow_pickle=False) as data:
                all_classes = [str(c) for c in data["classes"].tolist()]
                wanted = set(languages)
                chosen = [i for i, c in enumerate(all_classes) if c in wanted]
                ptc, pc = data["ptc"][:, chosen], data["pc"][chosen]
                nextmove = np.ascontiguousarray(data["nextmove"], dtype=np.uint32)
                row, output = data["nextmove_row"], data["out_feat"]
        return cls(
            classes=tuple(all_classes[i] for i in chosen),
            ptc=np.ascontiguousarray(ptc, dtype=np.float32),  # numpy would convert float16 each batch
            pc=np.asarray(pc, dtype=np.float32),
            nextmove=memoryview(nextmove.data),  # indexed one byte at a time by `walk`: Python ints, no copy
            rowbase=[r << 8 for r in row.tolist()],
            output=output.tolist(),
            next_array=nextmove,
            row_array=np.asarray(row, dtype=np.intp) << 8,
            output_array=np.asarray(output, dtype=np.intp),
        )

    def features(self, encoded: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(text index, n-gram feature) of every feature found, repeats included: the byte automaton's
        outputs. A batch walks all its texts in step, a byte position at a time, in numpy (half the cost of
        walking each text in Python); a few texts are walked one by one (numpy's per-call cost would win)."""
        if len(encoded) < LOCKSTEP_FROM:
            rows: list[int] = []
            found: list[int] = []
            for i, text in enumerate(encoded):
                features = self.walk(text)
                rows.extend([i] * len(features))
                found.extend(features)
            return np.asarray(rows, dtype=np.intp), np.asarray(found, dtype=np.intp)
        lengths = np.fromiter(map(len, encoded), dtype=np.intp, count=len(encoded))
        order = np.argsort(-lengths, kind="stable")  # longest first: the texts still walking are a prefix
        ordered = lengths[order]
        if not ordered[0]:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        columns = np.zeros((int(ordered[0]), len(encoded)), dtype=np.intp)  # byte position x text
        for column, i in enumerate(order):
            columns[: ordered[column], column] = np.frombuffer(encoded[i], dtype=np.uint8)
        walking = np.searchsorted(-ordered, -np.arange(len(columns)), side="left")  # texts longer than p
        state = np.zeros(len(encoded), dtype=np.intp)
        outputs = np.full(columns.shape, -1, dtype=np.intp)  # the feature each text's byte ends, or -1
        next_array, row_array, output_array = self.next_array, self.row_array, self.output_array
        for position, count in enumerate(walking.tolist()):
            moved = next_array[row_array[state[:count]] + columns[position, :count]]
            state[:count] = moved
            outputs[position, :count] = output_array[moved]
        positions, columns_found = np.nonzero(outputs >= 0)
        return order[columns_found], outputs[positions, columns_found]

    def walk(self, encoded: bytes) -> list[int]:
        """The n-gram features of the text, repeats included: one pass of the automaton over its bytes."""
        nextmove, rowbase, output = self.nextmove, self.rowbase, self.output
        state = 0
        found: list[int] = []
        for byte in encoded:
            state = nextmove[rowbase[state] + byte]
            feature = output[state]
            if feature >= 0:
                found.append(feature)
        return found
