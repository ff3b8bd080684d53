"""The Dockerfile, read (no Docker daemon here): a pinned base, a health check that outlasts the CLI's
start-up, everything it copies present, and an entry point that passes arguments through (run for real
under sh with a stand-in `veille` that records its arguments)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
ENTRYPOINT = REPO_ROOT / "scripts" / "docker-entrypoint.sh"


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [name]]


def test_the_base_image_is_pinned() -> None:
    (base,) = _instructions("FROM")
    assert "@sha256:" in base or re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base.strip()), base


def test_the_health_check_outlasts_the_cli_start_up() -> None:
    (check,) = _instructions("HEALTHCHECK")
    timeout = re.search(r"--timeout=(\d+)s", check)
    assert timeout and int(timeout.group(1)) >= 15, check
    assert '"veille", "health"' in check


def test_everything_the_build_copies_exists() -> None:
    for copy in _instructions("COPY"):
        for source in copy.split()[:-1]:
            assert (REPO_ROOT / source).exists(), source
    assert any("setup.py" in copy for copy in _instructions("COPY")), "setup.py lists the packages"


def _entrypoint(tmp_path: Path, *args: str) -> list[list[str]]:
    """The veille commands the entry point runs for `docker run veille ARGS`."""
    (entry,) = _instructions("ENTRYPOINT")
    assert json.loads(entry) == ["veille-entrypoint"]
    assert any(copy.startswith("scripts/docker-entrypoint.sh ") for copy in _instructions("COPY"))
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "veille"
    fake.parent.mkdir(parents=True)
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{calls}"\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, check=True, timeout=30)
    return [line.split() for line in calls.read_text(encoding="utf-8").splitlines()]


def test_the_entry_point_passes_arguments_through(tmp_path: Path) -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert _entrypoint(tmp_path / "plain") == [["db", "upgrade"], ["run"]]
    assert _entrypoint(tmp_path / "debug", "--log-level", "debug") == [
        ["db", "upgrade"],
        ["run", "--log-level", "debug"],
    ]
    assert _entrypoint(tmp_path / "hits", "hits", "--client", "resto") == [["hits", "--client", "resto"]]
