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
import math
import shutil
import tempfile
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

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
SUMMED_TOGETHER = 32  # texts whose features' log-probabilities are gathered in one array (a few MB at most)
LOCKSTEP_FROM = 16  # texts in a batch from which the byte walk runs in numpy (see Automaton.features)
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
        rows, features = tables.automaton.features(encoded)
        scores = np.zeros((len(texts), len(tables.classes)), dtype=np.float32)
        if len(rows):
            # Feature counts per text, then each language's sum of log1p(count) x log-probability, summed per
            # text over the sorted pairs (numpy only: scipy's sparse product cost the scoring helper 21 MB).
            # SUMMED_TOGETHER texts at a time: a (pairs x languages) array for a whole batch was 9 MB of the
            # scoring helper's peak (issue 12). Each text's sum is the same whichever texts share its group.
            unique, counts = np.unique(rows * tables.ptc.shape[0] + features, return_counts=True)
            text_of, feature_of = np.divmod(unique, tables.ptc.shape[0])
            weight = np.log1p(counts).astype(np.float32)[:, None]
            starts = np.flatnonzero(np.r_[True, text_of[1:] != text_of[:-1]])
            ends = np.r_[starts[1:], len(unique)]
            for first in range(0, len(starts), SUMMED_TOGETHER):
                group = starts[first : first + SUMMED_TOGETHER]
                low, high = int(group[0]), int(ends[first : first + SUMMED_TOGETHER][-1])
                contribution = weight[low:high] * tables.ptc[feature_of[low:high]]
                scores[text_of[group]] = np.add.reduceat(contribution, group - low, axis=0) + tables.pc
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
                with _unpack() as unpacked:
                    self._tables = _Tables.load(self.languages, unpacked)
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


class Automaton:
    """py3langid's byte automaton (Aho-Corasick over the model's 1-4 byte n-grams), in 15 MB instead of 38.

    py3langid stores a uint32 next state for each of 38,346 distinct rows x 256 bytes. Here bytes that
    move every row alike share one column (197 byte classes), and the next state is a uint16 offset in
    its class's block of states: in an Aho-Corasick automaton, byte b leads to the start state or to a
    state entered by b alone, so numbering the states by the class of the byte that enters them (each
    block opening with a copy of the start state) makes 16 bits enough. One step on a byte of class c:
    state = base[c] + table[rowbase[state] + c]. An automaton without such blocks would keep absolute
    uint32 states (base 0) in the same step: the features found never change.
    """

    def __init__(
        self, byte_class: bytes, base: np.ndarray, table: np.ndarray, rowbase: np.ndarray, output: np.ndarray
    ) -> None:
        self.byte_class = byte_class  # bytes.translate's table: each byte's class
        self.base = base  # (classes,) intp: the first state of each class's block
        self.table = table  # (rows x classes, flattened) uint16 or uint32: the next state, from its class's base
        self.rowbase = rowbase  # (states,) intp: where each state's row starts in the table
        self.output = output  # (states,) intp: the n-gram feature each state ends, or -1; state 0 is the start
        # The same for `walk`, which reads one item at a time: memoryviews give Python ints without a copy.
        self._steps = (byte_class, base.tolist(), table.data, rowbase.data, output.data)

    @classmethod
    def build(cls, chunks: Callable[[], Iterator[np.ndarray]], row: np.ndarray, output: np.ndarray) -> Automaton:
        """From py3langid's (nextmove, nextmove_row, out_feat); `chunks()` yields nextmove a few rows
        (of 256 bytes) at a time and is read twice, so that no copy of its 38 MB is ever held."""
        states = len(row)
        byte_class = np.zeros(256, dtype=np.intp)  # refined chunk by chunk: equal columns so far
        entered = np.full(states, -1, dtype=np.intp)  # the byte that leads to each state (the start aside)
        blocks = True
        for chunk in chunks():
            by_byte = np.ascontiguousarray(chunk.T)
            _, column = np.unique(
                by_byte.view(np.dtype((np.void, by_byte.shape[1] * by_byte.itemsize))).ravel(), return_inverse=True
            )
            _, byte_class = np.unique(byte_class * 256 + column.ravel(), return_inverse=True)
            if blocks:
                moved = chunk.ravel().astype(np.intp)
                byte = np.tile(np.arange(256, dtype=np.intp), len(chunk))[moved != 0]
                moved = moved[moved != 0]
                before = entered[moved]
                entered[moved] = byte
                blocks = bool(np.all((before < 0) | (before == byte)) and np.all(entered[moved] == byte))
        n_classes = int(byte_class.max()) + 1
        some_byte = np.unique(byte_class, return_index=True)[1]  # one byte of each class
        state_class = np.where(entered >= 0, byte_class[entered], -1)
        state_class[0] = -1  # the start state: copied at the head of every block
        sizes = np.bincount(state_class[state_class >= 0], minlength=n_classes) + 1
        if blocks and int(sizes.max()) <= 1 << 16:
            base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
            placed = np.argsort(state_class, kind="stable")[np.count_nonzero(state_class < 0) :]  # by class
            renumbered = np.zeros(states, dtype=np.intp)  # old state -> new, the start aside
            renumbered[placed] = np.arange(len(placed)) + np.repeat(np.arange(1, n_classes + 1), sizes - 1)
            old_of_new = np.zeros(int(sizes.sum()), dtype=np.intp)  # each block's head: the start (state 0)
            old_of_new[renumbered[placed]] = placed
            table = np.empty((int(row.max()) + 1, n_classes), dtype=np.uint16)
        else:
            base = np.zeros(n_classes, dtype=np.intp)
            renumbered = old_of_new = np.arange(states, dtype=np.intp)
            table = np.empty((int(row.max()) + 1, n_classes), dtype=np.uint32)
        done = 0
        for chunk in chunks():
            moved = chunk[:, some_byte].astype(np.intp)
            table[done : done + len(chunk)] = np.where(moved == 0, 0, renumbered[moved] - base)
            done += len(chunk)
        return cls(
            byte_class=byte_class.astype(np.uint8).tobytes(),
            base=base,
            table=table.reshape(-1),
            rowbase=row.astype(np.intp)[old_of_new] * n_classes,
            output=output.astype(np.intp)[old_of_new],
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
        columns = np.zeros((int(ordered[0]), len(encoded)), dtype=np.intp)  # byte position x text: byte classes
        for column, i in enumerate(order):
            columns[: ordered[column], column] = np.frombuffer(encoded[i].translate(self.byte_class), np.uint8)
        walking = np.searchsorted(-ordered, -np.arange(len(columns)), side="left")  # texts longer than p
        state = np.zeros(len(encoded), dtype=np.intp)
        outputs = np.full(columns.shape, -1, dtype=np.intp)  # the feature each text's byte ends, or -1
        base, table, rowbase, output = self.base, self.table, self.rowbase, self.output
        for position, count in enumerate(walking.tolist()):
            byte_class = columns[position, :count]
            moved = base[byte_class] + table[rowbase[state[:count]] + byte_class]
            state[:count] = moved
            outputs[position, :count] = output[moved]
        positions, columns_found = np.nonzero(outputs >= 0)
        return order[columns_found], outputs[positions, columns_found]

    def walk(self, encoded: bytes) -> list[int]:
        """The n-gram features of the text, repeats included: one pass of the automaton over its bytes."""
        byte_class, base, table, rowbase, output = self._steps
        state = 0
        found: list[int] = []
        for c in encoded.translate(byte_class):
            state = base[c] + table[rowbase[state] + c]
            feature = output[state]
            if feature >= 0:
                found.append(feature)
        return found


@dataclass(frozen=True, slots=True)
class _Tables:
    """The model's arrays for the chosen languages."""

    classes: tuple[str, ...]
    ptc: np.ndarray  # feature x language log-probabilities, float16 as shipped (exact in the float32 products)
    pc: np.ndarray  # language priors
    automaton: Automaton  # finds the n-gram features in a text's bytes

    @classmethod
    def load(cls, languages: Sequence[str], unpacked: IO[bytes]) -> _Tables:
        """py3langid's model (an npz, unpacked by `_unpack`) read a few rows at a time, without pickle:
        neither the languages veille does not consider nor the automaton's 38 MB table are ever held whole.
        tests/scoring/test_language.py checks the answers stay py3langid's."""
        with zipfile.ZipFile(unpacked) as archive:
            all_classes = [str(c) for c in _read(archive, "classes").tolist()]
            wanted = set(languages)
            chosen = [i for i, c in enumerate(all_classes) if c in wanted]
            pc = _read(archive, "pc")[chosen].astype(np.float32)
            ptc = np.empty((_shape(archive, "ptc")[0], len(chosen)), dtype=np.float16)
            done = 0
            for rows in _rows(archive, "ptc"):
                ptc[done : done + len(rows)] = rows[:, chosen]
                done += len(rows)
            automaton = Automaton.build(
                lambda: _rows(archive, "nextmove", width=256),
                _read(archive, "nextmove_row"),
                _read(archive, "out_feat"),
            )
        return cls(tuple(all_classes[i] for i in chosen), ptc, pc, automaton)


def _unpack() -> IO[bytes]:
    """py3langid's model file (an LZMA'd npz, 68 MB unpacked) as a temporary file, on disk, not in memory."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    unpacked = tempfile.TemporaryFile(suffix=".npz")  # noqa: SIM115 - the caller closes it
    with lzma.open(MODEL_DIR / MODEL_FILE) as packed:
        shutil.copyfileobj(packed, unpacked, length=1 << 20)
    return unpacked


def _read(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(name + ".npy") as member:
        array: np.ndarray = np.lib.format.read_array(member, allow_pickle=False)
    return array


def _shape(archive: zipfile.ZipFile, name: str) -> tuple[int, ...]:
    with archive.open(name + ".npy") as member:
        return _header(member)[0]


def _header(member: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, Fortran order, dtype) of the .npy file being read, left at its data."""
    if np.lib.format.read_magic(member) == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)


def _rows(archive: zipfile.ZipFile, name: str, width: int = 0, chunk_bytes: int = 1 << 18) -> Iterator[np.ndarray]:
    """A C-ordered array of the npz a few rows at a time (rows of `width` items; 0: the array's second axis).
    Small chunks: each pass's temporaries are a few times a chunk, and they are part of the helper's peak."""
    with archive.open(name + ".npy") as member:
        shape, fortran_order, dtype = _header(member)
        width = width or shape[1]
        if fortran_order or dtype.hasobject or math.prod(shape) % width:
            raise ValueError(f"py3langid's {name} is not a C-ordered table of {width} columns")
        rows_left = math.prod(shape) // width
        per_chunk = max(1, chunk_bytes // (width * dtype.itemsize))
        while rows_left:
            count = min(per_chunk, rows_left)
            data = member.read(count * width * dtype.itemsize)
            yield np.frombuffer(data, dtype=dtype).reshape(count, width)
            rows_left -= count
