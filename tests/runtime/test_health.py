"""The health file: where it lives, and `veille health` when the daemon's process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from veille.config import load_config
from veille.runtime.health import Health, check_health, health_path, this_process, write_health


def _write(path: Path, pid: int, **fields: object) -> None:
    host, started = this_process()
    health = Health(pid=pid, updated_at=datetime.now(UTC).isoformat(), host=host, process_started=started)
    write_health(path, replace(health, **fields))


def test_a_fresh_file_of_a_live_daemon_is_healthy(tmp_path: Path) -> None:
    _write(tmp_path / "h.json", os.getpid())
    assert check_health(tmp_path / "h.json", datetime.now(UTC)) == []


def test_a_fresh_file_of_a_killed_daemon_says_it_is_not_running(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write(tmp_path / "h.json", dead.pid)
    assert check_health(tmp_path / "h.json", datetime.now(UTC)) == [
        f"the daemon is not running (its process {dead.pid} is gone)"
    ]


def test_a_reused_pid_is_not_the_daemon(tmp_path: Path) -> None:
    _, started = this_process()
    _write(tmp_path / "h.json", os.getpid(), process_started=started - 3600)
    (problem,) = check_health(tmp_path / "h.json", datetime.now(UTC))
    assert "not running" in problem


def test_another_hosts_daemon_is_judged_by_its_heartbeat_only(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write(tmp_path / "h.json", dead.pid, host="elsewhere.example")
    assert check_health(tmp_path / "h.json", datetime.now(UTC)) == []


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


def test_health_file_is_never_put_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    monkeypatch.delenv("VEILLE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    pg = load_config(_config(tmp_path, "postgresql+psycopg://veille@db.example/veille"))
    assert health_path(pg) == tmp_path / "xdg" / "veille" / "veille-health.json"
    sqlite = load_config(_config(tmp_path, f"sqlite:///{tmp_path / 'data' / 'v.db'}"))
    assert health_path(sqlite) == tmp_path / "data" / "veille-health.json"
    monkeypatch.setenv("VEILLE_HOME", str(tmp_path / "home"))
    assert health_path(pg) == tmp_path / "home" / "veille-health.json"
