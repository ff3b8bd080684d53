"""Where veille keeps what it makes besides the database: the retrained model, the health file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def data_dir(database_url: str | None = None, *, environ: Mapping[str, str] | None = None) -> Path:
    """Where veille keeps the files it makes besides the database (the retrained model)."""
    env = os.environ if environ is None else environ
    if env.get("VEILLE_HOME"):
        return Path(env["VEILLE_HOME"]).expanduser()
    if database_url:
        path = sqlite_path(database_url)
        if path is not None:
            return path.expanduser().resolve().parent
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "veille"
