"""`veille score`, `veille sentiment train` and `veille label`, run through click."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.scoring.test_labels import add_hit
from veille.cli.sentiment import register
from veille.cli.wording import Group
from veille.core.models import SentimentLabel
from veille.scoring import trained_model_path
from veille.scoring.linear import LinearModel
from veille.store.engine import make_engine
from veille.store.labels import list_training_rows
from veille.store.migrate import upgrade


@pytest.fixture
def cli() -> click.Group:
    group = Group("veille")  # the CLI's group: picks the run's language (--lang) before parsing
    register(group)
    return group


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no ./config.toml here
    for name in ("VEILLE_CONFIG", "VEILLE_HOME", "VEILLE_LANG", "VEILLE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # never a model from the developer's home
    return CliRunner()


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "data" / "veille.db"
    url = f"sqlite:///{db}"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return config, url


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_score_prints_one_json_line_per_text_in_order(cli, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["score", "Service lamentable, à fuir", "Merci, c'était parfait ❤", "🙂"])
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert [o["label"] for o in out] == ["neg", "pos", "pos"]
    assert set(out[0]) == {"label", "score", "lang", "reasons"}
    assert out[0]["lang"] == "fr" and out[2]["lang"] == "und"
    assert out[0]["score"] < 0 < out[1]["score"]


def test_score_file_and_stdin(cli, runner: CliRunner, tmp_path: Path) -> None:
    texts = ["Trop bon !", "", "horrible expérience", "The staff were rude"]
    path = tmp_path / "posts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    from_file = runner.invoke(cli, ["score", "--file", str(path)])
    from_stdin = runner.invoke(cli, ["score", "--file", "-"], input="\n".join(texts) + "\n")
    assert from_file.exit_code == 0 and from_stdin.exit_code == 0
    assert from_file.output == from_stdin.output
    assert [o["label"] for o in lines(from_file.output)] == ["pos", "neu", "neg", "neg"]


def test_score_table_for_people(cli, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["score", "--format", "table", "jsui dégoutè 😥", "\x1b[31mrouge\x1b[0m"])
    assert result.exit_code == 0, result.output
    assert "neg" in result.output and "raisons" in result.output and "dégoutè" in result.output
    assert "\x1b[31m" not in result.output
    english = runner.invoke(cli, ["score", "--format", "table", "--lang", "en", "ok"])
    assert "reasons" in english.output


def test_score_without_text_explains(cli, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["score"])
    assert result.exit_code == 2
    assert "--file" in result.output


def test_help_is_french(cli, runner: CliRunner) -> None:
    for args in (["score", "--help"], ["sentiment", "train", "--help"], ["label", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0
    assert "Score le sentiment" in runner.invoke(cli, ["score", "--help"]).output


def test_label_then_train_uses_the_correction(cli, runner: CliRunner, configured, tmp_path: Path) -> None:
    config, url = configured
    engine = make_engine(url)
    hit = add_hit(engine, "x1", "la pizza était zorglub")
    result = runner.invoke(cli, ["label", str(hit), "neg", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "neg" in result.output
    [row] = list_training_rows(engine)
    assert row.label is SentimentLabel.NEG

    tsv = tmp_path / "mine.tsv"
    rows = ["id\tlang\tlabel\ttext"]
    rows += [f"n{i}\tfr\tneg\tpizza zorglub encore, commande {i}" for i in range(15)]
    rows += [f"u{i}\tfr\tneu\tvous livrez le {i} ?" for i in range(15)]
    rows += [f"p{i}\tfr\tpos\tpizza parfaite merci {i}" for i in range(15)]
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["sentiment", "train", str(tsv), "--config", str(config)])
    assert result.exit_code == 0, result.output
    target = trained_model_path(Path(url.removeprefix("sqlite:///")).parent)
    assert target.is_file()
    assert "1 correction" in result.output
    model = LinearModel.load(target)
    assert model.heads["fr"].rows == 46  # 45 lines of the file + 1 correction
    assert model.heads["fr"].prior is not None and model.heads["fr"].prior.rows > 1000  # on top of bundled
    assert model.heads["en"].rows > 40_000  # kept from the bundled model
    scored = runner.invoke(cli, ["score", "--config", str(config), "zorglub"])
    assert lines(scored.output)[0]["label"] == "neg"
    engine.dispose()


def test_label_unknown_hit_and_bad_value(cli, runner: CliRunner, configured) -> None:
    config, _ = configured
    result = runner.invoke(cli, ["label", "999", "neg", "--config", str(config)])
    assert result.exit_code == 1
    assert "999" in result.output
    result = runner.invoke(cli, ["label", "1", "angry", "--config", str(config)])
    assert result.exit_code == 2


def test_train_reports_a_bad_file(cli, runner: CliRunner, tmp_path: Path) -> None:
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("id\tlang\tlabel\ttext\nr1\tfr\tmaybe\tbof\n", encoding="utf-8")
    result = runner.invoke(cli, ["sentiment", "train", str(tsv), "--output", str(tmp_path / "m.json.gz")])
    assert result.exit_code == 2
    assert "bad.tsv:2" in result.output


def test_score_for_a_client_leaves_its_name_out_as_the_pipeline_does(cli, runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_text(
        '[[clients]]\nid = "garcon"\nname = "Au Mauvais Garçon"\nkeywords = ["au mauvais garçon", "@mauvaisgarcon"]\n'
        '  [[clients.sources]]\n  kind = "rss"\n  url = "https://example.org/feed.xml"\n',
        encoding="utf-8",
    )
    news = "Au Mauvais Garçon ouvre une boutique à Lyon"
    plain = lines(runner.invoke(cli, ["score", "--config", str(config), news]).output)
    as_client = runner.invoke(cli, ["score", "--config", str(config), "--client", "garcon", news])
    assert as_client.exit_code == 0, as_client.output
    (verdict,) = lines(as_client.output)
    assert plain[0]["label"] == "neg"  # the word "mauvais" in the name read as sentiment
    assert verdict["label"] != "neg" and not any("Mauvais" in r for r in verdict["reasons"])
    unknown = runner.invoke(cli, ["score", "--config", str(config), "--client", "nope", news])
    assert unknown.exit_code == 2 and "garcon" in unknown.output
