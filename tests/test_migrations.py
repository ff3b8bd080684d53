"""One Alembic history for SQLite and PostgreSQL; the daemon refuses a schema it does not match (G5)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from veille.errors import SchemaVersionError
from veille.store.engine import make_engine
from veille.store.migrate import check_schema, code_heads, downgrade, migrations_dir, upgrade
from veille.store.tables import all_metadata


def test_single_head() -> None:
    assert len(ScriptDirectory(str(migrations_dir())).get_heads()) == 1


def test_upgrade_from_empty_matches_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), all_metadata())
    assert diff == []
    check_schema(engine)  # at head: no error
    engine.dispose()


def test_unmigrated_database_is_refused_with_the_command_to_run(db_url: str) -> None:
    engine = make_engine(db_url)
    with pytest.raises(SchemaVersionError, match="veille db upgrade"):
        check_schema(engine)


def test_database_behind_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    revisions = list(ScriptDirectory(str(migrations_dir())).walk_revisions())
    if len(revisions) < 2:
        upgrade(engine)
        downgrade(engine, "base")
        with pytest.raises(SchemaVersionError, match="veille db upgrade"):
            check_schema(engine)
        return
    upgrade(engine, revisions[-1].revision)  # the first revision only
    with pytest.raises(SchemaVersionError, match="behind"):
        check_schema(engine)


def test_database_newer_than_code_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    with pytest.raises(SchemaVersionError, match="upgrade veille"):
        check_schema(engine)
    assert code_heads()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    downgrade(engine, "base")
    upgrade(engine)
    check_schema(engine)
