"""What a command says when the database fails under it: one line with the fix, never a traceback.

Every command goes through `explain` (the root group catches what a command let escape): a SQLite file in
a folder that cannot be written, a PostgreSQL server that does not answer, any other database error. The
traceback is logged only at `--log-level debug`. A URL veille cannot use is already a config problem
(veille.config.database_url_problem), reported when the config is read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from veille.cli.wording import _, text
from veille.core.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

BAD_CONFIGURATION = 2
FAILURE = 1

_SQLITE_CANNOT_WRITE = ("unable to open database file", "readonly database", "read-only file system")


def explain(exc: BaseException, database_url: str | None) -> tuple[str, int] | None:
    """(one line, exit code) for a database failure, or None when `exc` is something else (a bug)."""
    cause = exc.__cause__ if isinstance(exc, StorageError) and exc.__cause__ is not None else exc
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")  # loaded by whatever touched the database
    if sqlalchemy_exc is None or not isinstance(cause, sqlalchemy_exc.DBAPIError):
        return (f"veille: {text(str(exc))}", FAILURE) if isinstance(exc, StorageError) else None
    reason = _first_line(cause.orig)
    url = _parsed(database_url)
    if (
        url is not None
        and url.get_backend_name() == "sqlite"
        and any(s in reason.lower() for s in _SQLITE_CANNOT_WRITE)
    ):
        path = Path(url.database or "veille.db").expanduser().absolute()
        line = _(
            "veille: cannot open the SQLite database {path} ({reason}): its folder {folder} must exist and be "
            "writable (SQLite keeps {name}-wal and {name}-shm beside it); fix the folder's permissions or set "
            "[database] url / VEILLE_DATABASE_URL to a writable place"
        ).format(path=path, reason=reason, folder=path.parent, name=path.name)
        return line, BAD_CONFIGURATION
    if (
        url is not None
        and url.get_backend_name() == "postgresql"
        and isinstance(cause, sqlalchemy_exc.OperationalError)
    ):
        line = _(
            "veille: cannot reach PostgreSQL at {where} ({reason}): start the server, or fix [database] url / "
            "VEILLE_DATABASE_URL"
        ).format(where=f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}", reason=reason)
        return line, FAILURE
    return _("veille: database error: {reason}").format(reason=reason), FAILURE


def _first_line(error: BaseException | None) -> str:
    """The driver's own words without its hints: 'connection failed: ... failed: Connection refused' ->
    'Connection refused'."""
    text = str(error or "").strip().splitlines()[0] if str(error or "").strip() else type(error).__name__
    for prefix in ("connection failed: ",):
        text = text.removeprefix(prefix)
    if text.startswith("connection to server at") and "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    return text


def _parsed(database_url: str | None) -> URL | None:
    if not database_url:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(database_url)
    except Exception:
        return None
