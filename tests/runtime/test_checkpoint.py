"""SQLite checkpoints out of the commits (issue 17): the daemon's engine leaves them to its background job, which
copies the WAL into the database so that the WAL is started over and cut back; what was committed before a
SIGKILL is there after it, checkpointed or not."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.paths import REPO_ROOT
from veille.runtime.jobs import checkpoint_wal
from veille.store import engine as engine_module
from veille.store.engine import checkpoint, make_engine, write_tx

ROW = 4000  # bytes: one page of the WAL each
WRITTEN = 1500  # rows: 1,500 pages, past SQLite's automatic threshold (1,000)


def write_rows(engine: Engine, rows: int, batch: int = 50) -> None:
    with write_tx(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS blobs (x BLOB)")
    for _ in range(0, rows, batch):
        with write_tx(engine) as conn:
            conn.exec_driver_sql("INSERT INTO blobs (x) VALUES (randomblob(?))", [(ROW,)] * batch)


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(conn.execute("SELECT count(*) FROM blobs").fetchone()[0])


def test_commits_leave_the_wal_to_the_job_which_checkpoints_it_and_cuts_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "WAL_SIZE_LIMIT", 1024 * 1024)
    db, wal = tmp_path / "veille.db", tmp_path / "veille.db-wal"
    engine = make_engine(f"sqlite:///{db}", autocheckpoint=False)
    write_rows(engine, WRITTEN)
    assert wal.stat().st_size > WRITTEN * ROW  # no commit copied it: it grew past the automatic threshold
    assert db.stat().st_size < WRITTEN * ROW

    async def job_until_copied() -> None:
        stop = asyncio.Event()
        job = asyncio.create_task(checkpoint_wal(engine, stop, every=0.02))
        deadline = time.monotonic() + 10
        while db.stat().st_size < WRITTEN * ROW and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(job, 5)

    asyncio.run(job_until_copied())
    assert db.stat().st_size > WRITTEN * ROW  # the job copied the WAL into the database
    frames, copied = checkpoint(engine) or (0, -1)
    assert frames == copied  # nothing left to copy
    write_rows(engine, 50)  # the next writer starts the WAL over, and cuts its file back
    assert wal.stat().st_size <= 1024 * 1024
    engine.dispose()
    assert count_rows(db) == WRITTEN + 50


def test_other_engines_keep_the_automatic_checkpoints(tmp_path: Path) -> None:
    """`veille run --once` and the commands run no job: their commits checkpoint as SQLite does by default."""
    db, wal = tmp_path / "veille.db", tmp_path / "veille.db-wal"
    engine = make_engine(f"sqlite:///{db}")
    write_rows(engine, WRITTEN)
    assert wal.stat().st_size < WRITTEN * ROW
    assert db.stat().st_size > 1000 * ROW
    engine.dispose()


KILLED_WRITER = """
import os, signal, sys
from veille.store.engine import make_engine, write_tx
engine = make_engine(sys.argv[1], autocheckpoint=False)
with write_tx(engine) as conn:
    conn.exec_driver_sql("CREATE TABLE blobs (x BLOB)")
for _ in range(int(sys.argv[2])):
    with write_tx(engine) as conn:
        conn.exec_driver_sql("INSERT INTO blobs (x) VALUES (randomblob(4000))")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_rows_committed_before_a_sigkill_are_there_though_never_checkpointed(tmp_path: Path) -> None:
    db, wal = tmp_path / "veille.db", tmp_path / "veille.db-wal"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, f"sqlite:///{db}", "300"], env=env, timeout=120, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert wal.stat().st_size > 300 * ROW  # the rows were in the WAL only
    assert count_rows(db) == 300
