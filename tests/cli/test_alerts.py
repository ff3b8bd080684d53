"""`veille alerts`, `ack`, `mute`, `unmute`, `status`: documented, and working on a migrated database."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support.alerting import CONFIG, hit
from veille.cli import alerts as alert_commands
from veille.config import load_config
from veille.core.clock import SystemClock
from veille.runtime.alerting import AlertingService
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade

COMMANDS = ["alerts", "ack", "mute", "unmute", "replay", "export", "status"]


@pytest.fixture
def cli() -> click.Group:
    group = click.Group()
    alert_commands.register(group)
    return group


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    text = CONFIG.format(channel="console", extra="").replace(
        'timezone = "Europe/Paris"', f'timezone = "Europe/Paris"\n[database]\nurl = "sqlite:///{tmp_path}/v.db"'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(str(path), environ={})
    engine = make_engine(config.database_url)
    upgrade(engine)
    clock = SystemClock()
    service = AlertingService(config, engine, clock, {})
    with write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock)])  # type: ignore[arg-type]
    engine.dispose()
    return str(path)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli: click.Group, command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--config" in result.output


def test_alerts_ack_mute_status(cli: click.Group, config_file: str) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["alerts", "--config", config_file, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    (incident,) = json.loads(listed.output)
    assert (incident["client"], incident["cause"], incident["status"]) == ("resto", "buzz", "pending")
    summary = incident["summary"]  # the default hit: "Intoxication chez Gégé, honte !"
    assert (summary["posts"], summary["authors"], summary["terms"][0]) == (1, 1, "intoxication")
    assert summary["text"].startswith("intoxication") and "1 post, 1 auteur, 1 source" in summary["text"]
    table = runner.invoke(cli, ["alerts", "--config", config_file])
    assert table.exit_code == 0 and "resto" in table.output
    acked = runner.invoke(cli, ["ack", str(incident["id"]), "--config", config_file, "--contact", "backup"])
    assert acked.exit_code == 0 and "backup" in acked.output
    again = json.loads(runner.invoke(cli, ["alerts", "--config", config_file, "--format", "json"]).output)
    assert again[0]["status"] == "acked" and again[0]["acks"][0].startswith("ack backup")
    unknown = runner.invoke(cli, ["ack", "999", "--config", config_file])
    assert unknown.exit_code == 1 and "999" in unknown.output
    muted = runner.invoke(cli, ["mute", "resto", "--for", "2h", "--config", config_file])
    assert muted.exit_code == 0 and "resto" in muted.output
    bad = runner.invoke(cli, ["mute", "nobody", "--for", "2h", "--config", config_file])
    assert bad.exit_code == 1 and "nobody" in bad.output
    status = json.loads(runner.invoke(cli, ["status", "--config", config_file, "--format", "json"]).output)
    assert status["open_incidents"] == 1 and "resto" in status["muted"]
    lifted = runner.invoke(cli, ["unmute", "resto", "--config", config_file])
    assert lifted.exit_code == 0 and "1" in lifted.output
    text = runner.invoke(cli, ["status", "--config", config_file])
    assert text.exit_code == 0 and "Incidents ouverts : 1" in text.output


def test_ack_of_a_taken_incident_says_by_whom_and_records_nothing(
    cli: click.Group, config_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_LANG", "en")
    runner = CliRunner()
    (incident,) = json.loads(runner.invoke(cli, ["alerts", "--config", config_file, "--format", "json"]).output)
    first = runner.invoke(cli, ["ack", str(incident["id"]), "--config", config_file, "--contact", "backup"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, ["ack", str(incident["id"]), "--config", config_file])
    assert second.exit_code == 1
    assert f"Incident #INC-{incident['id']} is already taken by backup since " in second.output
    assert len(second.output.strip().splitlines()) == 1
    (after,) = json.loads(runner.invoke(cli, ["alerts", "--config", config_file, "--format", "json"]).output)
    assert len(after["acks"]) == 1 and after["acks"][0].startswith("ack backup")
    snoozed = runner.invoke(cli, ["ack", str(incident["id"]), "--config", config_file, "--for", "2h"])
    assert snoozed.exit_code == 0, snoozed.output


def test_replay_rejects_a_malformed_timeline(cli: click.Group, config_file: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ts": "yesterday", "client": "resto", "text": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["replay", str(bad), "--config", config_file])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output
