"""`veille inbox`: what awaits an answer, oldest first (table in French or English, JSON, CSV), --overdue,
and `done` / `no-reply` closing a conversation by hand."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from veille.cli import cli
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients

CONFIG = """[database]
url = "{url}"
[[clients]]
id = "resto"
keywords = ["pizza"]
  [clients.inbox]
  message = "2h"
[[clients]]
id = "osteo"
keywords = ["lemoine"]
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_LANG"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    messages = [  # (client, channel, conversation, minutes ago, text)
        ("resto", "message", "t_1", 300, "Vous pouvez envoyer la guirlande par la poste ?"),
        ("resto", "comment", "c_1", 30, "Vous êtes ouverts dimanche ?"),
        ("osteo", "review", "r_1", 600, "j'attends toujours mon remboursement"),
    ]
    with write_tx(engine) as conn:
        for client in ("resto", "osteo"):
            conn.execute(clients.insert().values(id=client, name=client.title(), updated_at=now))
        inbox_store.record(
            conn,
            [
                inbox_store.Message(
                    client,
                    f"{client}/fb",
                    channel,
                    conv,
                    now - timedelta(minutes=ago),
                    False,
                    "question",
                    "Léa",
                    text,
                    f"https://example.org/{conv}",
                )
                for client, channel, conv, ago, text in messages
            ],
        )
    engine.dispose()
    return path


def run(config: Path, *args: str, lang: str = "fr", code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["inbox", "--config", str(config), *args], env={"VEILLE_LANG": lang})
    assert result.exit_code == code, result.output
    return result.output


def test_the_longest_waiting_first_with_deadline_and_link(config: Path) -> None:
    out = run(config)
    assert out.index("example.org/r_1") < out.index("example.org/t_1") < out.index("example.org/c_1")
    assert "en retard" in out and "attend depuis" in out and "https://example.org/t_1" in out
    english = run(config, lang="en")
    assert "overdue" in english and "waiting for" in english and "en retard" not in english
    rows = json.loads(run(config, "--format", "json", "--client", "resto"))
    assert [(r["channel"], r["waiting_for"], r["overdue"]) for r in rows] == [
        ("message", "5h", True),
        ("comment", "30m", False),
    ]
    overdue = list(csv.DictReader(io.StringIO(run(config, "--format", "csv", "--overdue"))))
    assert [r["excerpt"] for r in overdue] == [messages_text("t_1")]  # the review (24 h) has waited only 10 h


def messages_text(conversation: str) -> str:
    return {"t_1": "Vous pouvez envoyer la guirlande par la poste ?"}[conversation]


def test_done_and_no_reply_close_by_hand(config: Path) -> None:
    assert run(config, "done", "2") == "#2 marquée comme répondue.\n"
    assert run(config, "no-reply", "1", lang="en") == "#1 marked: no answer needed.\n"
    assert "Aucune conversation #1 en attente" in run(config, "no-reply", "1", code=1)
    assert "unknown client" in run(config, "--client", "nobody", lang="en", code=2)
    assert [r["id"] for r in json.loads(run(config, "--format", "json"))] == [3]
    engine = make_engine(f"sqlite:///{config.parent / 'v.db'}")
    with read_conn(engine) as conn:
        states = {i.id: (i.state.value, i.closed_by) for i in inbox_store.by_ids(conn, [1, 2])}
    engine.dispose()
    assert states == {1: ("no_reply", "cli"), 2: ("answered", "cli")}
