"""`veille audience`: the series and the change per account, as a table (French or English), JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from veille.cli import cli
from veille.store.audience import Figure, record_figures
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_LANG"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[[clients]]\nid = "resto"\nkeywords = ["pizza"]\n', encoding="utf-8")
    engine = make_engine(url)
    upgrade(engine)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=today))
        conn.execute(clients.insert().values(id="osteo", name="Osteo", updated_at=today))
        for days_ago, followers, rating in ((40, 1100, 4.6), (20, 1200, 4.5), (10, 1230, 4.5), (0, 1240, 4.3)):
            figures = [
                Figure("resto", "resto/fb", "facebook", "facebook: 1045", "followers", followers),
                Figure("resto", "resto/places", "google-places", "google-places: ChIJ", "rating", rating),
                Figure("osteo", "osteo/ig", "instagram", "instagram: 1784", "followers", followers / 10),
            ]
            record_figures(conn, figures, today - timedelta(days=days_ago))
        # A second figure the same day replaces the first.
        record_figures(conn, [Figure("resto", "resto/fb", "facebook", "facebook: 1045", "followers", 1241)], today)
    engine.dispose()
    return path


def run(config: Path, *args: str, lang: str = "fr") -> str:
    result = CliRunner().invoke(cli, ["audience", "--config", str(config), *args], env={"VEILLE_LANG": lang})
    assert result.exit_code == 0, result.output
    return result.output


def test_table_shows_the_change_over_the_period(config: Path) -> None:
    out = run(config, "--client", "resto")
    assert "abonnés" in out and "note" in out and "évolution" in out
    assert "+41" in out and "1\u202f241" in out  # 1200 twenty days ago -> 1241 today, the day's last figure
    assert "-0.2" in out and "osteo" not in out
    english = run(config, "--client", "resto", lang="en")
    assert "followers" in english and "change" in english and "abonnés" not in english


def test_json_and_csv(config: Path) -> None:
    rows = json.loads(run(config, "--since", "60d", "--format", "json"))
    fb = next(r for r in rows if r["source_key"] == "resto/fb")
    assert [p["value"] for p in fb["series"]] == [1100, 1200, 1230, 1241] and fb["change"] == 141
    assert fb["first_day"] == (date.today() - timedelta(days=40)).isoformat()
    lines = list(csv.DictReader(io.StringIO(run(config, "--since", "15d", "--format", "csv"))))
    assert {(r["source_key"], r["value"]) for r in lines if r["metric"] == "rating"} == {
        ("resto/places", "4.5"),
        ("resto/places", "4.3"),
    }


def test_empty_and_bad_since(config: Path, tmp_path: Path) -> None:
    assert "Aucun chiffre d'audience" in run(config, "--client", "nobody")
    result = CliRunner().invoke(
        cli, ["audience", "--config", str(config), "--since", "soon"], env={"VEILLE_LANG": "fr"}
    )
    assert result.exit_code == 2 and "--since" in result.output
