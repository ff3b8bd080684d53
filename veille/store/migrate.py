"""Alembic, driven from code: `veille db upgrade`, and the schema check the daemon runs at start.

One migration history (`migrations/`) serves SQLite and PostgreSQL. The daemon refuses to start
on a database that is behind the code (run `veille db upgrade`) or ahead of it (upgrade veille).

Every command checks the schema, so the check does not import Alembic (a third of a second): the code's
heads come from the `revision`/`down_revision` lines of the revision files (tests/store/test_migrations.py
checks they agree with Alembic's own reading) and the database's from its `alembic_version` table.
Alembic itself runs the migrations.
"""

from __future__ import annotations

import ast
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from veille.core.errors import SchemaVersionError
from veille.core.i18n import N_

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def migrations_dir() -> Path:
    """$VEILLE_MIGRATIONS, else the copy a wheel installs as veille/migrations, else the checkout's migrations/."""
    configured = os.environ.get("VEILLE_MIGRATIONS")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parents[1]
    installed = here / "migrations"  # setup.py installs the top-level folder there
    return installed if installed.is_dir() else here.parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def code_heads() -> set[str]:
    revisions, parents = _revision_graph(migrations_dir())
    return set(revisions) - parents


def known_revisions() -> set[str]:
    return set(_revision_graph(migrations_dir())[0])


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@cache
def _revision_graph(folder: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(every revision, every revision some other one builds on), read from the revision files' literals.

    A line scan, not a parse of each file: parsing nine files cost 40 ms of every command's start."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((folder / "versions").glob("*.py")):
        values = _revision_literals(path.read_text(encoding="utf-8"))
        if isinstance(values.get("revision"), str):
            revisions.add(str(values["revision"]))
            down = values.get("down_revision")
            if isinstance(down, str):
                parents.add(down)
            elif isinstance(down, tuple | list):  # a merge revision
                parents.update(str(d) for d in down)
    return frozenset(revisions), frozenset(parents)


def _revision_literals(source: str) -> dict[str, object]:
    """`revision` and `down_revision` at the top level of a revision file; a value written over several lines
    (a long merge tuple) falls back to parsing the whole file."""
    values: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(source):
        try:
            values[match.group(1)] = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            return _parsed_literals(source)
    return values


def _parsed_literals(source: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value:
                    values[target.id] = ast.literal_eval(node.value)
    return values


def database_heads(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        return set(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def check_schema(engine: Engine) -> None:
    """Raise SchemaVersionError, saying what to run, unless the database is exactly at the code's head."""
    current = database_heads(engine)
    heads = code_heads()
    if current == heads:
        return
    if not current:
        raise SchemaVersionError(N_("the database has no schema yet: run `veille db upgrade`"))
    unknown = current - known_revisions()
    if unknown:
        raise SchemaVersionError(
            N_("the database schema ({revisions}) is newer than this veille: upgrade veille").format(
                revisions=", ".join(sorted(unknown))
            )
        )
    raise SchemaVersionError(
        N_("the database schema ({revisions}) is behind the code ({heads}): run `veille db upgrade`").format(
            revisions=", ".join(sorted(current)), heads=", ".join(sorted(heads))
        )
    )
