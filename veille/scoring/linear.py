"""The trained part of the default scorer: one multinomial logistic regression per language.

Stored as one gzip'd JSON file (vocabulary as a list, float arrays as base64 little-endian
float32) so that loading needs neither scikit-learn nor pickle: about 0.1 s for the bundled
model, and a model file from anywhere can never execute code.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veille.core.models import SentimentLabel
from veille.scoring.features import Batch, Vectorizer
from veille.scoring.rules import N_FEATURES, Evidence
from veille.scoring.text import Parsed

FORMAT = "veille-sentiment-linear"
VERSION = 2  # 2 adds the optional stacker; files of version 1 (no stacker) still load
READABLE_VERSIONS = (1, 2)
CLASSES = (SentimentLabel.NEG, SentimentLabel.NEU, SentimentLabel.POS)


class ModelFileError(ValueError):
    """A model file is missing, truncated or not a veille sentiment model."""


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)
    return array.reshape(shape)


@dataclass(slots=True)
class Head:
    """One language's vocabulary, IDF and weights (rows: features, columns: neg, neu, pos)."""

    vectorizer: Vectorizer
    weights: np.ndarray  # (n_features, 3), the last row is the bias
    rows: int = 0  # training rows, for the model card
    # A user's head is trained on top of the bundled one: their scores add up (a product of
    # experts), so 60 labelled posts sharpen the bundled model instead of replacing it.
    prior: Head | None = None
    # The learned combination of this head's verdict and the rules (issue 16): a small logistic
    # regression over [log P(neg), log P(neu), log P(pos), the rule features, 1], fitted on
    # out-of-fold predictions of the training rows, so the rules weigh what they are worth on
    # texts the text model had not seen. None: the head's own logits are the verdict.
    stack: np.ndarray | None = None  # (3 + N_FEATURES + 1, 3)

    def score(self, parsed: Sequence[Parsed], evidence: Sequence[Evidence]) -> np.ndarray:
        """(documents x 3) logits of this head plus its prior's."""
        logits = self.logits(self.vectorizer.transform(parsed, evidence))
        if self.stack is not None:
            logits = stacked(self.stack, logits, evidence)
        if self.prior is not None:
            logits += self.prior.score(parsed, evidence)
        return logits

    def logits(self, batch: Batch) -> np.ndarray:
        """(documents x 3) scores: a weighted bincount per class, no Python loop over features.

        One class at a time: an (entries x 3) array of contributions and its product were two more
        copies of a batch's largest arrays in the scoring helper's peak (issue 12); same sums, same order."""
        weights, idx, val = self.weights, batch.idx, batch.val
        return np.stack(
            [np.bincount(batch.doc, weights=weights[idx, k] * val, minlength=batch.size) for k in range(len(CLASSES))],
            axis=1,
        )


STACK_INPUTS = len(CLASSES) + N_FEATURES + 1


def stack_inputs(logits: np.ndarray, evidence: Sequence[Evidence]) -> np.ndarray:
    """(documents x STACK_INPUTS): the text model's log-probabilities, the rule features and a 1."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rules = np.array([e.features() for e in evidence], dtype=np.float64).reshape(len(evidence), N_FEATURES)
    return np.hstack([log_probs, rules, np.ones((len(evidence), 1))])


def stacked(stack: np.ndarray, logits: np.ndarray, evidence: Sequence[Evidence]) -> np.ndarray:
    """The stacker's logits for a batch (see Head.stack)."""
    combined: np.ndarray = stack_inputs(logits, evidence) @ stack
    return combined


@dataclass(slots=True)
class LinearModel:
    heads: dict[str, Head]
    card: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def head_for(self, lang: str) -> Head:
        """`und` (emoji-only, too short) and unknown languages use the French head: French first."""
        return self.heads.get(lang) or self.heads.get("fr") or next(iter(self.heads.values()))

    def save(self, path: Path) -> None:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "card": self.card,
            "meta": self.meta,
            "classes": [c.value for c in CLASSES],
            "heads": {},
        }
        for lang, head in self.heads.items():
            doc["heads"][lang] = _head_doc(head)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as out:
            json.dump(doc, out, ensure_ascii=False, separators=(",", ":"))
        tmp.replace(path)  # atomic: a running daemon never reads half a file

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        try:
            return cls.from_bytes(path.read_bytes())
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot be read ({exc.strerror})") from exc
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearModel:
        try:
            doc = json.loads(gzip.decompress(data))
            if doc.get("format") != FORMAT:
                raise ModelFileError("not a veille sentiment model")
            if doc.get("version") not in READABLE_VERSIONS:
                raise ModelFileError(f"model format version {doc.get('version')} is not supported")
            heads = {}
            for lang, raw in doc["heads"].items():
                heads[lang] = _head_from_doc(lang, raw)
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"damaged model file ({type(exc).__name__})") from exc
        if not heads:
            raise ModelFileError("the model has no language head")
        return cls(heads, str(doc.get("card", "")), dict(doc.get("meta", {})))


def _head_doc(head: Head) -> dict[str, Any]:
    vec = head.vectorizer
    doc: dict[str, Any] = {
        "vocabulary": vec.vocabulary.grams(),
        "idf": _encode(np.asarray(vec.idf)),
        "weights": _encode(head.weights),
        "n_features": int(head.weights.shape[0]),
        "rows": head.rows,
    }
    if head.stack is not None:
        doc["stack"] = _encode(head.stack)
    if head.prior is not None:
        doc["prior"] = _head_doc(head.prior)
    return doc


def _head_from_doc(lang: str, raw: dict[str, Any], depth: int = 0) -> Head:
    if depth > 3:
        raise ModelFileError(f"head {lang!r} nests too many priors")
    grams = raw["vocabulary"]
    if not isinstance(grams, list) or not all(isinstance(gram, str) for gram in grams):
        raise ModelFileError(f"head {lang!r} has a damaged vocabulary")
    vectorizer = Vectorizer(grams, _decode(raw["idf"], (len(grams),)))
    weights = _decode(raw["weights"], (raw["n_features"], len(CLASSES)))
    if weights.shape[0] != vectorizer.n_features:
        raise ModelFileError(f"head {lang!r} does not match this version's features")
    prior = _head_from_doc(lang, raw["prior"], depth + 1) if raw.get("prior") else None
    stack = _decode(raw["stack"], (STACK_INPUTS, len(CLASSES))) if raw.get("stack") else None
    return Head(vectorizer, weights, int(raw.get("rows", 0)), prior, stack)
