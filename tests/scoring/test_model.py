"""Model files, training and the loader's choice of model, on small labelled sets written here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from veille.config import parse_config
from veille.core.errors import ConfigError
from veille.core.models import SentimentLabel
from veille.core.paths import data_dir
from veille.scoring import ScorerLoadError, load_scorer, trained_model_path
from veille.scoring.linear import STACK_INPUTS, LinearModel, ModelFileError
from veille.scoring.loader import bundled_model_bytes
from veille.scoring.settings import SentimentSettings
from veille.scoring.training import MIN_ROWS, STACK_MIN_ROWS, Example, TrainingDataError, read_tsv, train_model

NEG, NEU, POS = SentimentLabel.NEG, SentimentLabel.NEU, SentimentLabel.POS

# An agency's own vocabulary: "zorglub" is what its customers call a burnt pizza.
FR_ROWS = [
    *(Example("fr", NEG, f"encore une pizza zorglub ce soir {i}") for i in range(12)),
    *(Example("fr", NEG, f"livraison zorglub et froide, commande {i}") for i in range(6)),
    *(Example("fr", NEU, f"vous ouvrez à quelle heure le {i} ?") for i in range(12)),
    *(Example("fr", POS, f"pizza parfaite, merci l'équipe {i}") for i in range(12)),
]


def write_tsv(path: Path, rows: list[Example]) -> Path:
    lines = ["id\tlang\tlabel\ttext"] + [f"r{i}\t{e.lang}\t{e.label.value}\t{e.text}" for i, e in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bundled_model_loads_and_states_its_training_data() -> None:
    model = LinearModel.from_bytes(bundled_model_bytes())
    assert set(model.heads) == {"fr", "en"}
    assert "sentiment-train" in model.card or "UMSAB" in model.card
    assert "SemEval" in model.card
    assert model.heads["fr"].rows > 1000 and model.heads["en"].rows > 40_000


def test_read_tsv_accepts_the_shared_format_and_reports_bad_lines(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "ok.tsv", FR_ROWS[:3])
    assert read_tsv(path) == FR_ROWS[:3]
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tlang\tlabel\ttext\nr1\tfr\tangry\ttexte\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"bad.tsv:2: label 'angry'"):
        read_tsv(bad)
    bad.write_text("id\tlang\tlabel\ttext\nr1 fr neg texte\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="4 tab-separated columns"):
        read_tsv(bad)


def test_training_learns_the_agency_vocabulary_and_keeps_other_languages(tmp_path: Path) -> None:
    base = LinearModel.from_bytes(bundled_model_bytes())
    model, report = train_model(FR_ROWS, base=base)
    assert report["fr"] == f"trained on {len(FR_ROWS)} rows, on top of the base model"
    assert report["en"].startswith("kept the base model")
    assert model.heads["en"] is base.heads["en"]
    assert model.heads["fr"].prior is base.heads["fr"]
    path = tmp_path / "m.json.gz"
    model.save(path)
    again = LinearModel.load(path)
    assert again.heads["fr"].prior is not None and again.heads["fr"].prior.rows == base.heads["fr"].rows
    scorer = load_scorer(SentimentSettings(model_path=str(path)))
    assert scorer.score_batch(["pizza zorglub"])[0].label is NEG
    assert scorer.score_batch(["Worst service ever, avoid"])[0].label is NEG
    # What the bundled model knew is still there: the agency's 42 posts did not replace it.
    assert scorer.score_batch(["Service lamentable, je suis très déçu"])[0].label is NEG


def test_retraining_never_stacks_heads() -> None:
    base = LinearModel.from_bytes(bundled_model_bytes())
    first, _ = train_model(FR_ROWS, base=base)
    second, _ = train_model(FR_ROWS, base=first)
    assert second.heads["fr"].prior is base.heads["fr"]
    scratch, report = train_model(FR_ROWS, base=base, on_top=False)
    assert scratch.heads["fr"].prior is None
    assert report["fr"] == f"trained on {len(FR_ROWS)} rows"


def test_too_few_rows_is_refused_without_a_base() -> None:
    with pytest.raises(TrainingDataError, match=str(MIN_ROWS)):
        train_model(FR_ROWS[:5])


def test_binary_training_set_never_predicts_the_missing_class(tmp_path: Path) -> None:
    rows = [e for e in FR_ROWS if e.label is not NEU]
    model, _ = train_model(rows)
    path = tmp_path / "m.json.gz"
    model.save(path)
    scorer = load_scorer(SentimentSettings(model_path=str(path)))
    results = scorer.score_batch(["vous ouvrez à quelle heure ?", "pizza zorglub", "pizza parfaite"])
    assert NEU not in {r.label for r in results}


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    model, _ = train_model(FR_ROWS)
    path = tmp_path / "sub" / "m.json.gz"
    model.save(path)
    assert not list(path.parent.glob("*.tmp"))
    again = LinearModel.load(path)
    assert again.heads["fr"].vectorizer.vocabulary == model.heads["fr"].vectorizer.vocabulary


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not gzip at all",
        gzip.compress(b"{}"),
        gzip.compress(json.dumps({"format": "veille-sentiment-linear", "version": 99, "heads": {}}).encode()),
        gzip.compress(
            json.dumps(
                {
                    "format": "veille-sentiment-linear",
                    "version": 1,
                    "heads": {"fr": {"vocabulary": ["a"], "idf": "AAAA", "weights": "AA", "n_features": 3}},
                }
            ).encode()
        ),
    ],
)
def test_damaged_model_files_raise_model_file_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.json.gz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        LinearModel.load(path)


def test_loader_prefers_the_retrained_model_in_the_data_dir(tmp_path: Path) -> None:
    model, _ = train_model(FR_ROWS, base=LinearModel.from_bytes(bundled_model_bytes()))
    model.save(trained_model_path(tmp_path))
    scorer = load_scorer(SentimentSettings(), data_dir=tmp_path)
    assert scorer.origin == str(trained_model_path(tmp_path))
    assert load_scorer(SentimentSettings(), data_dir=tmp_path / "empty").origin == "bundled"


def test_damaged_retrained_model_falls_back_to_bundled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trained_model_path(tmp_path).write_bytes(b"\x1f\x8b broken")
    scorer = load_scorer(SentimentSettings(), data_dir=tmp_path)
    assert scorer.origin == "bundled"
    assert "sentiment.trained_model_unusable" in caplog.text


def test_explicit_model_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ScorerLoadError, match="is not a file"):
        load_scorer(SentimentSettings(model_path=str(tmp_path / "missing.json.gz")))
    (tmp_path / "bad.json.gz").write_bytes(b"junk")
    with pytest.raises(ScorerLoadError, match="damaged"):
        load_scorer(SentimentSettings(model_path=str(tmp_path / "bad.json.gz")))


def test_data_dir_resolution(tmp_path: Path) -> None:
    assert data_dir(None, environ={"VEILLE_HOME": str(tmp_path)}) == tmp_path
    db = tmp_path / "db" / "veille.db"
    assert data_dir(f"sqlite:///{db}", environ={}) == db.parent
    assert data_dir("postgresql+psycopg://u@h/db", environ={"XDG_DATA_HOME": str(tmp_path)}) == (tmp_path / "veille")


def test_sentiment_settings_are_validated(tmp_path: Path) -> None:
    config = parse_config('[sentiment]\nscorer = "default"\nbatch_size = 64\n', environ={})
    assert config.sentiment == SentimentSettings(scorer="default", batch_size=64)
    with pytest.raises(ConfigError) as error:
        parse_config('[sentiment]\nscorer = "transformer"\nmodel_pth = "x"\n', environ={})
    paths = {p.path for p in error.value.problems}
    assert {"sentiment.model_path", "sentiment.model_pth"} <= paths
    with pytest.raises(ConfigError) as error:
        parse_config(f'[sentiment]\nscorer = "transformer"\nmodel_path = "{tmp_path / "nope"}"\n', environ={})
    assert any("not a local directory" in p.message for p in error.value.problems)
    with pytest.raises(ConfigError):
        parse_config('[sentiment]\nscorer = "bert"\n', environ={})


def _many_rows() -> list[Example]:
    """STACK_MIN_ROWS rows or more of the agency's vocabulary, with the rules disagreeing on some of them."""
    rows = []
    for i in range(STACK_MIN_ROWS // 3 + 1):
        rows.append(Example("fr", NEG, f"pizza zorglub ce soir, table {i}"))
        rows.append(Example("fr", NEU, f"vous ouvrez le {i} ? on sera {i % 7} à table"))
        rows.append(Example("fr", POS, f"pizza parfaite, merci pour la table {i}"))
    return rows


def test_a_large_training_set_gets_a_stacker_that_survives_the_file(tmp_path: Path) -> None:
    rows = _many_rows()
    model, _ = train_model(rows, on_top=False)
    head = model.heads["fr"]
    assert head.stack is not None and head.stack.shape == (STACK_INPUTS, 3)
    path = tmp_path / "m.json.gz"
    model.save(path)
    again = LinearModel.load(path)
    assert again.heads["fr"].stack is not None
    texts = ["pizza zorglub", "vous ouvrez dimanche ?", "pizza parfaite"]
    assert [r.label for r in load_scorer(SentimentSettings(model_path=str(path))).score_batch(texts)] == [NEG, NEU, POS]
    # A small set (a few dozen corrections) gets no stacker: its out-of-fold verdicts would be noise.
    assert train_model(FR_ROWS, on_top=False)[0].heads["fr"].stack is None


def test_model_files_of_version_1_still_load(tmp_path: Path) -> None:
    """A model retrained by an older veille (no stacker) keeps working after an upgrade."""
    model, _ = train_model(FR_ROWS, on_top=False)
    path = tmp_path / "old.json.gz"
    model.save(path)
    doc = json.loads(gzip.decompress(path.read_bytes()))
    doc["version"] = 1
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert LinearModel.load(path).heads["fr"].stack is None
    assert load_scorer(SentimentSettings(model_path=str(path))).score_batch(["pizza zorglub"])[0].label is NEG
