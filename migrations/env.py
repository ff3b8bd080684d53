"""Alembic environment: one history for SQLite and PostgreSQL.

The engine comes from `veille.store.migrate.alembic_config` (config.attributes["engine"]), or from
VEILLE_DATABASE_URL when Alembic's own CLI is used. SQLite runs in batch mode (ALTER via table copy),
and each revision runs in its own transaction so a failing one leaves the version unchanged and, DDL
being transactional on both backends, the schema too (G6, tests/test_migrations.py). On SQLite,
foreign keys are off while migrating (a table copy would cascade its DROP) and checked before each
revision commits.
"""

from __future__ import annotations

import os

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from veille.store.engine import make_engine
from veille.store.tables import all_metadata

target_metadata = all_metadata()


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        engine = make_engine(os.environ.get("VEILLE_DATABASE_URL", "sqlite:///veille.db"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                transaction_per_migration=True,
                compare_type=True,
                on_version_apply=[_check_foreign_keys] if sqlite else [],
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """SQLite's table rebuild (batch mode: copy, DROP, rename) with foreign keys ON would run the
    DROP's implicit DELETE and cascade it: recreating `sources` deleted every hit (G6, measured).
    The pragma is a no-op inside a transaction, so it is set on the raw connection, before any
    BEGIN and again after the last COMMIT (the pooled connection must not keep it off)."""
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")  # type: ignore[union-attr]


def _check_foreign_keys(*, ctx: MigrationContext, **_: object) -> None:
    """With foreign keys off, a revision could leave dangling references: refuse it before its
    transaction commits (the revision and its version row then roll back together)."""
    assert ctx.connection is not None
    broken = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(f"migration left {len(broken)} broken foreign key reference(s) in {', '.join(tables)}")


run_migrations_online()
