"""The compact vocabulary (sorted gram hashes, batched lookups) gives exactly what a dict of the grams gave.

The reference here is the scorer's former way, written out plainly: one dict lookup per gram, per text.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from veille.scoring import features
from veille.scoring.default import DefaultScorer
from veille.scoring.features import Batch, Vectorizer, Vocabulary, char_grams, word_features, words_for_chars
from veille.scoring.linear import LinearModel
from veille.scoring.loader import bundled_model_bytes
from veille.scoring.rules import Evidence
from veille.scoring.text import Parsed

HERE = Path(__file__).parent


def lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()[1:]  # without the header


def real_texts() -> list[str]:
    """Customer reviews, short posts in 14 languages, and a few long texts made of them."""
    customer = [line.split("\t")[3] for line in lines(HERE / "customer_sentiment.tsv")]
    short = [line.split("\t", 1)[1] for line in lines(HERE / "data/short_posts_lang.tsv")]
    long = [" ".join(customer[i : i + 40]) for i in range(0, len(customer), 40)]
    return customer + short + long + ["", "🙂🙂", "a", "Ça alors !!! 😡 #chezgege @chezgege http://x.fr"]


def reference_batch(vectorizer: Vectorizer, parsed: Sequence[Parsed], evidence: Sequence[Evidence]) -> Batch:
    """The TF-IDF rows with a plain dict of the grams, a text at a time."""
    index = {gram: i for i, gram in enumerate(vectorizer.vocabulary.grams())}
    docs, idx, val = [], [], []
    for n, (item, found) in enumerate(zip(parsed, evidence, strict=True)):
        word_ids = [index[g] for g in word_features(item, found.idiom_tokens) if g in index]
        char_ids = [
            index[g] for word in words_for_chars(item, found.idiom_tokens) for g in char_grams(word) if g in index
        ]
        for ids in (word_ids, char_ids):
            weights = vectorizer.idf[np.asarray(ids, dtype=np.int64)]
            norm = np.sqrt(np.sum(weights * weights))
            docs.append(np.full(len(ids), n, dtype=np.int64))
            idx.append(np.asarray(ids, dtype=np.int64))
            val.append(weights / norm if len(ids) else weights)
    return Batch(len(parsed), np.concatenate(docs), np.concatenate(idx), np.concatenate(val))


def as_rows(batch: Batch, size: int) -> list[list[tuple[int, float]]]:
    """Each text's (feature, value) pairs among the first `size` features (the vocabulary), sorted."""
    keep = batch.idx < size
    rows: list[list[tuple[int, float]]] = [[] for _ in range(batch.size)]
    for doc, idx, val in zip(batch.doc[keep].tolist(), batch.idx[keep].tolist(), batch.val[keep].tolist(), strict=True):
        rows[doc].append((idx, val))
    return [sorted(row) for row in rows]


@pytest.fixture(scope="module")
def scorer() -> DefaultScorer:
    return DefaultScorer(LinearModel.from_bytes(bundled_model_bytes()))


def test_the_bundled_heads_score_real_texts_exactly_as_with_a_dict(scorer: DefaultScorer) -> None:
    texts = real_texts()
    parsed = scorer.tokenizer.parse_batch(texts)
    evidence = [scorer.rules.evaluate(item) for item in parsed]
    for head in scorer.model.heads.values():
        vectorizer = head.vectorizer
        expected = reference_batch(vectorizer, parsed, evidence)
        rows = as_rows(expected, vectorizer.size)
        assert len(rows[0]) > 10
        for _ in range(2):  # the character grams' cache cold, then warm
            batch = vectorizer.transform(parsed, evidence)
            got = as_rows(batch, vectorizer.size)
            assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in rows]
            np.testing.assert_allclose(
                [v for row in got for _, v in row], [v for row in rows for _, v in row], rtol=1e-12
            )
        # Rule features and bias unchanged, so the logits (hence labels and probabilities) are the dict path's.
        rest = batch.idx >= vectorizer.size
        whole = Batch(
            batch.size,
            np.concatenate([expected.doc, batch.doc[rest]]),
            np.concatenate([expected.idx, batch.idx[rest]]),
            np.concatenate([expected.val, batch.val[rest]]),
        )
        np.testing.assert_allclose(head.logits(batch), head.logits(whole), rtol=1e-12, atol=1e-12)


def test_a_small_cache_or_one_text_at_a_time_changes_nothing(
    scorer: DefaultScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = real_texts()[:120]
    expected = scorer.score_batch(texts)
    assert [scorer.score_batch([text])[0] for text in texts] == expected
    monkeypatch.setattr(features, "_CACHE_LIMIT", 50)
    assert scorer.score_batch(texts) == expected  # the cache is emptied within the batch


def test_grams_come_back_in_feature_order_whatever_they_hold() -> None:
    grams = ["\tpizza", " pi", "\t😡", "\tpas\tbon", "a\udcff", ""]  # an emoji, a lone surrogate, the empty gram
    vocabulary = Vocabulary(grams)
    assert vocabulary.grams() == grams
    assert vocabulary.features(["\t😡", "\tpizza", "\tpizz", "a\udcff", ""]).tolist() == [2, 0, -1, 4, 5]
    assert vocabulary.get("\tpas\tbon") == 3 and vocabulary.get("bon") is None
    assert "\tpizza" in vocabulary and "\tpasta" not in vocabulary
    assert Vocabulary([]).features(["x"]).tolist() == [-1] and Vocabulary([]).grams() == []
    assert Vocabulary(grams) == vocabulary != Vocabulary(grams[:-1])


def test_a_pickled_vocabulary_is_rebuilt_in_a_process_with_other_str_hashes(tmp_path: Path) -> None:
    """str hashes are salted per process: a vocabulary sent elsewhere travels as its grams."""
    path = tmp_path / "vocabulary.pickle"
    path.write_bytes(pickle.dumps(Vocabulary(["\tpizza", "\tfroide", " fr"])))
    script = (
        "import pickle, sys; v = pickle.loads(open(sys.argv[1], 'rb').read()); "
        "print(v.features(['\\tfroide', ' fr', '\\tpizza', 'x']).tolist())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    found = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env, check=True
    )
    assert found.stdout.strip() == "[1, 2, 0, -1]"


def test_grams_with_the_same_hash_are_still_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features, "gram_hash", len)  # every gram of one length collides
    vocabulary = Vocabulary(["ab", "cd", "efg"])
    assert vocabulary.features(["cd", "ab", "xy", "efg", "hij"]).tolist() == [1, 0, -1, 2, -1]
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(["ab", "cd", "ab"])
