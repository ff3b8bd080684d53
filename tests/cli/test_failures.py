"""A database that fails under a command ends in one line saying what to fix, never a traceback (issue 11)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from veille.cli import cli

COMMANDS = [
    ("hits",),
    ("sources",),
    ("alerts",),
    ("status",),
    ("db", "upgrade"),
    ("db", "current"),
    ("purge", "--dry-run", "--older-than", "400d"),
    ("report", "--month", "2026-10"),
    ("ack", "1"),
    ("label", "1", "neg"),
    ("mute", "resto", "--for", "2h"),
    ("run", "--once"),
    ("run",),
]


@pytest.fixture(autouse=True)
def _english_and_quiet_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VEILLE_LANG", "en")
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level  # `run` and --log-level set up logging


def _config(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VEILLE_DATABASE_URL", url)
    path = tmp_path / "config.toml"
    path.write_text('[[clients]]\nid = "resto"\nkeywords = ["chez gégé"]\n', encoding="utf-8")
    return path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_sqlite_in_a_folder_that_cannot_be_written(
    command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc cannot hold a file, even for root (who ignores folder permissions)."""
    config = _config(tmp_path, "sqlite:////proc/veille-test/v.db", monkeypatch)
    result = _invoke(*command, "--config", str(config))
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "veille: cannot open the SQLite database /proc/veille-test/v.db (unable to open database file): its folder "
        "/proc/veille-test must exist and be writable (SQLite keeps v.db-wal and v.db-shm beside it); fix the "
        "folder's permissions or set [database] url / VEILLE_DATABASE_URL to a writable place"
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_postgresql_down(command: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    config = _config(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", monkeypatch)
    result = _invoke(*command, "--config", str(config))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"veille: cannot reach PostgreSQL at 127.0.0.1:{port}/test (Connection refused): start the server, or fix "
        "[database] url / VEILLE_DATABASE_URL"
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://veille@db.example/veille", "'mysql': only SQLite and PostgreSQL (psycopg) are supported"),
        ("postgresql://veille@db.example:port/veille", "is not a database URL"),
        ("::not a url", "is not a database URL"),
    ],
)
def test_a_url_veille_cannot_use_is_a_config_problem(
    url: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, url, monkeypatch)
    for command in (("hits",), ("db", "upgrade"), ("run", "--once")):
        result = _invoke(*command, "--config", str(config))
        assert result.exit_code == 2, result.output
        assert f"VEILLE_DATABASE_URL (environment): {says}" in result.output
        assert "Traceback" not in result.output


def test_the_traceback_only_at_debug_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, "sqlite:////proc/veille-test/v.db", monkeypatch)
    quiet = _invoke("hits", "--config", str(config))
    assert "Traceback" not in quiet.output
    loud = _invoke("--log-level", "debug", "hits", "--config", str(config))
    assert loud.exit_code == 2
    assert "Traceback" in loud.output and "sqlite3.OperationalError" in loud.output
    assert loud.output.strip().splitlines()[-1].startswith("veille: cannot open the SQLite database")
