"""One Alembic history for SQLite and PostgreSQL; the daemon refuses a schema it does not match (G5)."""

from __future__ import annotations

import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError

from veille.core.errors import SchemaVersionError
from veille.store.engine import make_engine
from veille.store.migrate import (
    check_schema,
    code_heads,
    database_heads,
    downgrade,
    known_revisions,
    migrations_dir,
    upgrade,
)
from veille.store.schema import clients, engagement, hits, sources
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


# --- G6: a revision that fails, or would break references, changes nothing ----------------------


def add_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """A copy of migrations/ with one more revision on top (its upgrade() is `body`); returns the old head."""
    head = next(iter(code_heads()))
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "9999_g6_probe.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "g6probe"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\n\n"
        "def downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("VEILLE_MIGRATIONS", str(copy))
    return head


def seeded(db_url: str) -> Engine:
    """A database at the current head with one client, one source, one hit and its engagement."""
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=now))
        source_id = conn.execute(
            sources.insert().values(
                key="resto/f0",
                client_id="resto",
                kind="rss",
                target="https://example.org/",
                every_seconds=600,
                enabled=True,
                in_config=True,
                status="ok",
                consecutive_errors=0,
                hits_count=1,
            )
        ).inserted_primary_key[0]
        hit_id = conn.execute(
            hits.insert().values(
                source_id=source_id,
                client_id="resto",
                external_id="e1",
                text_hash="t",
                content_hash="c",
                content_changes=0,
                kind="rss",
                title="",
                text="chez gégé",
                direct=False,
                published_at=now,
                fetched_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(engagement.insert().values(hit_id=hit_id, observed_at=now, likes=3))
    return engine


def snapshot(engine: Engine) -> tuple[Any, ...]:
    names = set(inspect(engine).get_table_names())
    columns = {c["name"] for c in inspect(engine).get_columns("sources")}
    with engine.connect() as conn:
        rows = conn.execute(select(hits.c.id, hits.c.source_id, hits.c.text)).all()
        observed = conn.execute(select(func.count()).select_from(engagement)).scalar_one()
    return database_heads(engine), "g6_probe" in names, "g6_col" in columns, rows, observed


def test_g6_a_failing_revision_leaves_version_schema_and_data_unchanged(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = seeded(db_url)
    before = snapshot(engine)
    add_revision(
        tmp_path,
        monkeypatch,
        """
        op.create_table("g6_probe", sa.Column("id", sa.Integer(), primary_key=True))
        with op.batch_alter_table("sources") as batch:
            batch.add_column(sa.Column("g6_col", sa.Text(), nullable=True))
        op.execute("UPDATE hits SET text = 'rewritten'")
        raise RuntimeError("injected failure inside the revision")
    """,
    )
    with pytest.raises(RuntimeError, match="injected failure"):
        upgrade(engine)
    assert snapshot(engine) == before  # SQLite too: DDL is transactional there, and each revision is one tx
    engine.dispose()


def test_g6_a_table_rebuild_keeps_the_rows_that_reference_it(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite batch mode rebuilds a table (copy, DROP, rename); with foreign keys on, the DROP
    cascaded into hits and engagement and emptied them. env.py turns them off around migrations."""
    engine = seeded(db_url)
    _, _, _, rows, observed = snapshot(engine)
    add_revision(
        tmp_path,
        monkeypatch,
        """
        sqlite = op.get_bind().dialect.name == "sqlite"
        with op.batch_alter_table("sources", recreate="always" if sqlite else "auto") as batch:
            batch.add_column(sa.Column("g6_col", sa.Text(), nullable=True))
    """,
    )
    upgrade(engine)
    assert snapshot(engine) == ({"g6probe"}, False, True, rows, observed)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # the pooled connection got its foreign keys back
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    engine.dispose()


def test_g6_a_revision_leaving_dangling_references_is_rolled_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = seeded(db_url)
    before = snapshot(engine)
    add_revision(
        tmp_path,
        monkeypatch,
        """
        op.create_table("g6_probe", sa.Column("id", sa.Integer(), primary_key=True))
        op.execute("UPDATE hits SET source_id = 999999")
    """,
    )
    # PostgreSQL refuses the UPDATE itself; SQLite (foreign keys off while migrating) at the check
    # that runs before the revision's commit.
    with pytest.raises((IntegrityError, RuntimeError)):
        upgrade(engine)
    assert snapshot(engine) == before
    engine.dispose()


def test_the_fast_schema_check_reads_the_revisions_as_alembic_does(db_url: str) -> None:
    """check_schema reads heads without importing Alembic; it must agree with Alembic's own reading."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations_dir()))
    assert code_heads() == set(script.get_heads())
    assert known_revisions() == {rev.revision for rev in script.walk_revisions()}
    engine = make_engine(db_url)
    try:
        assert database_heads(engine) == set()
        upgrade(engine)
        with engine.connect() as connection:
            assert database_heads(engine) == set(MigrationContext.configure(connection).get_current_heads())
        check_schema(engine)
    finally:
        engine.dispose()


def test_the_line_scan_reads_annotated_and_multiline_revisions_as_alembic_does(tmp_path: Path) -> None:
    """The start-up scan reads `revision` lines, not the whole file: a typed assignment and a merge tuple written
    over several lines must give what Alembic reads."""
    from veille.store.migrate import _revision_graph

    versions = tmp_path / "versions"
    versions.mkdir()
    header = "from __future__ import annotations\n\n"
    (versions / "a.py").write_text(header + 'revision: str = "a"\ndown_revision = None\n', "utf-8")
    (versions / "b.py").write_text(header + "revision = 'b'  # the second\ndown_revision = 'a'\n", "utf-8")
    (versions / "c.py").write_text(header + 'revision = "c"\ndown_revision = "a"\n', "utf-8")
    (versions / "m.py").write_text(header + 'revision = "m"\ndown_revision = (\n    "b",\n    "c",\n)\n', "utf-8")
    _revision_graph.cache_clear()
    try:
        assert _revision_graph(tmp_path) == (frozenset("abcm"), frozenset("abc"))
    finally:
        _revision_graph.cache_clear()


def test_0011_fills_the_search_text_of_existing_hits(db_url: str) -> None:
    """Hits stored before 0011 get their folded search text, the same as new hits are written with."""
    from veille.store.search import search_text

    engine = make_engine(db_url)
    upgrade(engine, "0010")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=now))
        source_id = conn.execute(
            sources.insert().values(
                key="resto/f0",
                client_id="resto",
                kind="rss",
                target="https://example.org/",
                every_seconds=600,
                enabled=True,
                in_config=True,
                status="ok",
                consecutive_errors=0,
                hits_count=2,
            )
        ).inserted_primary_key[0]
        for n, (title, text, author) in enumerate([("CAFÉ", "Une ŒUVRE  d'art", "Hélène"), ("", "chez gégé", None)]):
            conn.execute(
                hits.insert().values(
                    source_id=source_id,
                    client_id="resto",
                    external_id=f"e{n}",
                    text_hash="t",
                    content_hash="c",
                    content_changes=0,
                    kind="rss",
                    title=title,
                    text=text,
                    author=author,
                    direct=False,
                    published_at=now,
                    fetched_at=now,
                )
            )
    upgrade(engine)
    with engine.connect() as conn:
        stored = [r.search_text for r in conn.execute(select(hits.c.search_text).order_by(hits.c.external_id))]
    engine.dispose()
    assert stored == [search_text("CAFÉ", "Une ŒUVRE  d'art", "Hélène"), search_text("", "chez gégé", None)]
    assert stored[0] == "cafe\x01une oeuvre d'art\x01helene"
