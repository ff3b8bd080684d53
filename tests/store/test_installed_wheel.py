"""A plain install works: the wheel carries migrations/ (as veille/migrations), so a fresh environment
can run `veille db upgrade` and `veille hits` with no checkout in sight (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow

_NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "*.db*", "tests"
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_wheel_installed_in_a_fresh_venv_upgrades_the_database_and_lists_hits(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE)
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", source, cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("veille-*.whl")

    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    # The dependencies come from this test's environment (no network); veille itself only from the wheel:
    # a .pth-added folder's own .pth files (the checkout's editable finder) are not run.
    purelib = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip()
    )
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    where = _run(python, "-c", "import veille; print(veille.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(purelib)), where.stdout + where.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///{work / "v.db"}"\n[[clients]]\nid = "resto"\nkeywords = ["chez gégé"]\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")} | {"VEILLE_LANG": "en"}
    veille = venv / "bin" / "veille"
    upgrade = _run(veille, "db", "upgrade", "--config", "config.toml", cwd=work, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database at revision" in upgrade.stdout
    hits = _run(veille, "hits", "--config", "config.toml", cwd=work, env=env)
    assert hits.returncode == 0, hits.stderr
    # The compiled wording catalogue is package data: the installed wheel speaks French by default.
    french = _run(veille, "db", "upgrade", "--config", "config.toml", cwd=work, env=env | {"VEILLE_LANG": "fr"})
    assert french.returncode == 0 and "base à jour" in french.stdout, french.stdout + french.stderr
    usage = _run(veille, "hits", "--bogus", cwd=work, env=env | {"VEILLE_LANG": "fr"})
    assert "Erreur : Option inconnue" in usage.stderr, usage.stderr
