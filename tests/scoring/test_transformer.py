"""The optional transformer scorer, on a tiny randomly initialised XLM-RoBERTa saved to tmp_path.

Skipped when the `transformer` extra (transformers + torch) is not installed. Nothing is fetched
from a hub: the model and its tokenizer are built here and loaded with local_files_only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veille.core.models import SentimentLabel
from veille.scoring import ScorerLoadError, load_scorer
from veille.scoring.settings import SentimentSettings

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

WORDS = ["le", "service", "est", "nul", "super", "merci", "the", "food", "was", "great", "bad"]


def build_tiny_model(path: Path, id2label: dict[int, str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForSequenceClassification

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=80,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    model = XLMRobertaForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("xlmr"), {0: "negative", 1: "neutral", 2: "positive"})


def test_transformer_scorer_scores_batches_in_order(model_dir: Path) -> None:
    scorer = load_scorer(SentimentSettings(scorer="transformer", model_path=str(model_dir)))
    assert scorer.name == "transformer"
    texts = ["le service est nul 😡", "the food was great", "", "x" * 1_000_000] + ["merci"] * 20
    results = scorer.score_batch(texts)
    assert len(results) == len(texts)
    for result in results:
        assert result.label in set(SentimentLabel)
        assert -1.0 <= result.score <= 1.0
        assert result.reasons[-1] == "model:transformer"
    assert results[0].lang == "fr" and results[1].lang == "en"
    assert "-😡" in results[0].reasons  # the rule layer still explains
    assert scorer.score_batch(texts[:2]) == results[:2]  # deterministic (eval mode, no dropout)


def test_texts_longer_than_the_models_positions_are_truncated_to_them(model_dir: Path) -> None:
    """The tiny model has 80 position embeddings (78 usable, as in RoBERTa): 300 known words must still score."""
    scorer = load_scorer(SentimentSettings(scorer="transformer", model_path=str(model_dir)))
    (result,) = scorer.score_batch([" ".join(WORDS * 30)])
    assert result.label in set(SentimentLabel)


def test_every_language_is_scored(model_dir: Path) -> None:
    """A multilingual model reads Spanish: unlike the default scorer, the transformer leaves nothing unscored."""
    scorer = load_scorer(SentimentSettings(scorer="transformer", model_path=str(model_dir)))
    (result,) = scorer.score_batch(["la comida llegó fría y el camarero fue muy grosero"])
    assert result.label in set(SentimentLabel) and result.lang == "es"


def test_label_names_are_mapped(tmp_path: Path) -> None:
    from veille.scoring.transformer import label_map

    assert label_map({0: "Neg", 1: "Neu", 2: "Pos"}, 3) == [SentimentLabel.NEG, SentimentLabel.NEU, SentimentLabel.POS]
    assert label_map({0: "positive", 1: "negative"}, 2) == [SentimentLabel.POS, SentimentLabel.NEG]
    assert label_map({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, 3)[0] is SentimentLabel.NEG
    with pytest.raises(ScorerLoadError):
        label_map({0: "joy", 1: "anger", 2: "fear", 3: "sadness"}, 4)


def test_two_label_model(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "bin", {0: "positive", 1: "negative"})
    results = load_scorer(SentimentSettings(scorer="transformer", model_path=str(path))).score_batch(["super"])
    assert results[0].label in (SentimentLabel.POS, SentimentLabel.NEG)


def test_never_a_hub_name(tmp_path: Path) -> None:
    with pytest.raises(ScorerLoadError, match="not a local model directory"):
        load_scorer(SentimentSettings(scorer="transformer", model_path="cardiffnlp/twitter-xlm-roberta-base-sentiment"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScorerLoadError, match="does not hold a usable model"):
        load_scorer(SentimentSettings(scorer="transformer", model_path=str(empty)))
