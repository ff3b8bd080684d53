"""Alembic, driven from code: `veille db upgrade`, and the schema check the daemon runs at start.

One migration history (`migrations/`) serves SQLite and PostgreSQL. The daemon refuses to start
on a database that is behind the code (run `veille db upgrade`) or ahead of it (upgrade veille).
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from veille.core.errors import SchemaVersionError
from veille.core.i18n import N_


def migrations_dir() -> Path:
    """$VEILLE_MIGRATIONS, else the copy a wheel installs as veille/migrations, else the checkout's migrations/."""
    configured = os.environ.get("VEILLE_MIGRATIONS")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve().parents[1]
    installed = here / "migrations"  # setup.py installs the top-level folder there
    return installed if installed.is_dir() else here.parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def code_heads() -> set[str]:
    script = ScriptDirectory(str(migrations_dir()))
    return set(script.get_heads())


def known_revisions() -> set[str]:
    script = ScriptDirectory(str(migrations_dir()))
    return {rev.revision for rev in script.walk_revisions()}


def database_heads(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


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
