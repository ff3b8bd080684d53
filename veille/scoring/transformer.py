"""Optional stronger scorer: a sequence-classification transformer (e.g. XLM-T) from a LOCAL directory.

Needs the `transformer` extra (transformers + torch). The model is loaded with
`local_files_only=True` from the directory given as `[sentiment] model_path`: nothing is ever
fetched from a hub at run time. About 10 posts per second per core for XLM-T base, so size the
batch and the worker accordingly. Language and reasons come from the default scorer's rule layer.
A multilingual model (XLM-T reads about 30 languages) scores every post, whatever its language: none is
left unscored as with the default scorer. README "A stronger, multilingual scorer" says how to get one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veille.core.models import SentimentLabel, SentimentResult
from veille.scoring.base import ScorerLoadError
from veille.scoring.lexicon import load_resources
from veille.scoring.rules import Rules
from veille.scoring.text import MAX_CHARS, Tokenizer

_ORDER = (SentimentLabel.NEG, SentimentLabel.NEU, SentimentLabel.POS)


def label_map(id2label: dict[Any, str], num_labels: int) -> list[SentimentLabel]:
    """Map the model's output indices to neg/neu/pos from its own label names."""
    names = [str(id2label.get(i, id2label.get(str(i), ""))).lower() for i in range(num_labels)]
    mapped = []
    for name in names:
        if name.startswith("neg"):
            mapped.append(SentimentLabel.NEG)
        elif name.startswith("neu"):
            mapped.append(SentimentLabel.NEU)
        elif name.startswith("pos"):
            mapped.append(SentimentLabel.POS)
        else:
            break
    if len(mapped) == num_labels and len(set(mapped)) == num_labels:
        return mapped
    if num_labels == 3:  # LABEL_0..2: the XLM-T / TweetEval convention is negative, neutral, positive
        return list(_ORDER)
    raise ScorerLoadError(f"cannot map the model's labels {names} to neg/neu/pos")


class TransformerScorer:
    name = "transformer"

    def __init__(self, tokenizer: Any, model: Any, *, batch_size: int = 16, max_length: int = 128) -> None:
        import torch

        self._torch = torch
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.labels = label_map(dict(model.config.id2label or {}), int(model.config.num_labels))
        self.batch_size = batch_size
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 2:
            # RoBERTa-family models (XLM-T) number positions from the padding index + 1: a model with 514
            # position embeddings reads 512 tokens; truncating to more raised "index out of bounds".
            max_length = min(max_length, positions - 2)
        self.max_length = max_length
        res = load_resources()
        self._text = Tokenizer(res)
        self._rules = Rules(res)
        self.origin = str(getattr(model.config, "_name_or_path", ""))

    @classmethod
    def load(cls, path: Path) -> TransformerScorer:
        if not path.is_dir():
            raise ScorerLoadError(f"sentiment.model_path: {path} is not a local model directory")
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:
            raise ScorerLoadError(
                "the transformer scorer needs transformers and torch: pip install 'veille[transformer]'"
            ) from exc
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ScorerLoadError(
                f"sentiment.model_path: {path} does not hold a usable model ({type(exc).__name__})"
            ) from exc
        return cls(tokenizer, model)

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        torch = self._torch
        clipped = [(text if isinstance(text, str) else str(text))[:MAX_CHARS] for text in texts]
        results: list[SentimentResult] = []
        for start in range(0, len(clipped), self.batch_size):
            chunk = clipped[start : start + self.batch_size]
            encoded = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            with torch.inference_mode():
                probs = torch.softmax(self.model(**encoded).logits, dim=-1).tolist()
            for text, row in zip(chunk, probs, strict=True):
                by_label = dict.fromkeys(_ORDER, 0.0)
                for label, p in zip(self.labels, row, strict=True):
                    by_label[label] += p
                best = max(_ORDER, key=by_label.__getitem__)
                parsed = self._text.parse(text)
                reasons = (*self._rules.evaluate(parsed).reasons, "model:transformer")
                score = max(-1.0, min(1.0, by_label[SentimentLabel.POS] - by_label[SentimentLabel.NEG]))
                results.append(SentimentResult(best, round(score, 4), parsed.lang, reasons))
        return results
