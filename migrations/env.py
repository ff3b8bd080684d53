"""Alembic environment: one history for SQLite and PostgreSQL.

The engine comes from `veille.store.migrate.alembic_config` (config.attributes["engine"]), or from
VEILLE_DATABASE_URL when Alembic's own CLI is used. SQLite runs in batch mode (ALTER via table copy),
and each revision runs in its own transaction so a failing one leaves the version unchanged.
"""

from __future__ import annotations

import os

from alembic import context

from veille.store.engine import make_engine
from veille.store.tables import all_metadata

target_metadata = all_metadata()


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        engine = make_engine(os.environ.get("VEILLE_DATABASE_URL", "sqlite:///veille.db"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
