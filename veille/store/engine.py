"""Database engine set-up and the two ways to touch it: `write_tx` and `read_conn`.

SQLite: WAL (readers never block the writer), foreign keys on, synchronous=FULL (NORMAL for the
transactions a restart recomputes, `write_tx(durable=False)`), a 10 s busy timeout, and `BEGIN IMMEDIATE`
for every write transaction so that two writers queue on the lock instead of failing with "database is
locked" when a read upgrades to a write (measured: deferred read-then-write transactions failed 900 times
in 1,200). Reads use plain deferred transactions and never take the write lock. PostgreSQL: a normal pool,
READ COMMITTED.

The daemon's SQLite engine (`make_engine(autocheckpoint=False)`) leaves checkpoints to a background job
(`checkpoint`): SQLite's automatic one runs inside the commit that crosses 1,000 pages of WAL, and one such
commit took 341 ms of the writer's time at 1,000 clients (issue 17). For the same reason Python's cyclic garbage
collector is paused while this process holds SQLite's write lock: a full collection of a daemon that keeps
clients' windows and summaries took 56 to 79 ms inside transactions of 94 ms (bench/alert_burst.py --spans).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from veille.core.errors import StorageError
from veille.core.paths import sqlite_path
from veille.store.search import register_sqlite_fold

BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT = 10  # seconds
# Prepared statements each SQLite connection keeps (the sqlite3 module's default is 128). A multi-row INSERT
# is one statement per row count, and a prepared INSERT of hundreds of rows takes hundreds of kilobytes in
# SQLite's own memory: with 128 of them per pooled connection, a first poll of 1,000 news feeds grew the
# daemon by 60 MB (bench/poll.py, article profile). Statements used on every batch stay cached.
SQLITE_CACHED_STATEMENTS = 16
# Without automatic checkpoints, the WAL file is cut back to this size when a writer restarts it after a
# complete checkpoint (it would otherwise keep the size of the biggest burst of writes until the daemon stops).
WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, echo: bool = False, autocheckpoint: bool = True) -> Engine:
    """Create an engine with the pragmas and transaction behaviour veille relies on.

    `autocheckpoint=False` (SQLite): commits never checkpoint; the caller runs `checkpoint` often enough that
    the WAL does not grow without end (the daemon's job). Processes that do not run it keep SQLite's default."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None and path.parent and not path.parent.exists():
            # A folder that cannot be made is reported by SQLite's own "unable to open database file" at
            # the first connection, where the caller says what to fix.
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={
                "timeout": BUSY_TIMEOUT_MS / 1000,
                "check_same_thread": False,
                "cached_statements": SQLITE_CACHED_STATEMENTS,
            },
            pool_pre_ping=False,
        )
        _install_sqlite_hooks(engine, autocheckpoint=autocheckpoint)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # pool_pre_ping: after a server restart or a network cut every pooled connection is dead; the
    # ping replaces it at checkout instead of failing the first statement of each one (G8).
    # connect_timeout: a server that does not answer (packets dropped) must fail a connect in
    # seconds, not hang the writer thread for the kernel's TCP timeout (minutes).
    connect_args: dict[str, Any] = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT}
    return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args)


def _install_sqlite_hooks(engine: Engine, *, autocheckpoint: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint = 0")
            cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        cursor.close()
        register_sqlite_fold(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.info.get("veille_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


@dataclass(slots=True)
class WriteStats:
    """How long this process's write transactions held the lock (the lock is the database's scarce
    resource: on SQLite one writer at a time, on PostgreSQL the rows and advisory locks it took)."""

    count: int = 0
    total_seconds: float = 0.0
    longest_seconds: float = 0.0
    failures: int = 0  # lock timeouts and other storage failures
    durations: list[float] | None = None  # every transaction's, once a benchmark sets a list here

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total_seconds += seconds
        self.longest_seconds = max(self.longest_seconds, seconds)
        if self.durations is not None:
            self.durations.append(seconds)


_WRITE_STATS: weakref.WeakKeyDictionary[Engine, WriteStats] = weakref.WeakKeyDictionary()


def write_stats(engine: Engine) -> WriteStats:
    """This engine's write-transaction figures (for benchmarks and operators' metrics)."""
    return _WRITE_STATS.setdefault(engine, WriteStats())


# The interpreter's switch interval while a write transaction holds SQLite's lock (the default is 5 ms).
LOCKED_SWITCH_INTERVAL = 0.0005


class _Collector:
    """While any write transaction of this process holds SQLite's lock (they do not overlap: the lock is the
    database's), pauses the garbage collector (a collection that came due meanwhile runs after the commit) and
    shortens the interpreter's switch interval.

    The driver lets the GIL go around every step of a statement (each row inserted or read back), and a thread
    waiting for it takes it back only after the switch interval if another thread is busy: on a first poll of
    news feeds, with the event loop and the scoring stage busy, the writer's thread spent 15 to 40 ms of CPU in
    transactions that held the lock 150 to 300 ms (issue 17). Shortened, it waits a tenth as long each time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._paused = False  # by us: a collector someone else disabled stays so
        self._interval = 0.0  # the switch interval to restore

    def pause(self) -> None:
        with self._lock:
            if self._holders == 0:
                if gc.isenabled():
                    gc.disable()
                    self._paused = True
                self._interval = sys.getswitchinterval()
                sys.setswitchinterval(min(self._interval, LOCKED_SWITCH_INTERVAL))
            self._holders += 1

    def resume(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                sys.setswitchinterval(self._interval)
                if self._paused:
                    self._paused = False
                    gc.enable()


_COLLECTOR = _Collector()
_BEGUN = "veille_write_began"  # Connection.info: perf_counter() when the open write transaction took the lock


def held_for(conn: Connection) -> float:
    """Seconds the write transaction open on `conn` has held the lock (0 outside `write_tx`): a hook that bounds
    its own work counts what its caller did first in the same transaction."""
    began = conn.info.get(_BEGUN)
    return time.perf_counter() - began if began is not None else 0.0


@contextmanager
def write_tx(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A write transaction: BEGIN IMMEDIATE on SQLite. Commits on success, rolls back on error.

    Database-level failures (read-only file, disk full, lock timeout) become StorageError so the
    caller can keep its in-memory state (ETag, cursors) unadvanced and retry the cycle later.

    `durable=False`: the commit does not wait for the disk (SQLite: synchronous=NORMAL for this one
    transaction; PostgreSQL: synchronous_commit off). On SQLite the commit holds the write lock while the WAL
    is synced, a few ms and up to 50 ms on a busy disk (issue 17). Only for writes that a restart recomputes
    from durable rows: a power cut may undo them, a process crash does not, the database stays consistent
    either way, and the next durable commit (the outbox relay's claim, before anything they lead to is sent)
    syncs the log they are in with its own.
    """
    stats = write_stats(engine)
    sqlite = is_sqlite(engine)
    relaxed = not durable and sqlite
    try:
        with engine.connect() as connection:
            connection.info["veille_begin"] = "IMMEDIATE"
            if relaxed:
                _synchronous(connection, "NORMAL")
            paused = False
            try:
                with connection.begin():
                    begun = time.perf_counter()  # after BEGIN IMMEDIATE: the lock is held from here to the commit
                    connection.info[_BEGUN] = begun
                    if sqlite:
                        _COLLECTOR.pause()
                        paused = True
                    if not durable and not relaxed:
                        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    yield connection
                stats.record(time.perf_counter() - begun)
            finally:
                if paused:
                    _COLLECTOR.resume()
                connection.info.pop("veille_begin", None)
                connection.info.pop(_BEGUN, None)
                if relaxed:
                    _synchronous(connection, "FULL")  # the pooled connection is durable again for the next user
    except DBAPIError as exc:
        if not _is_storage_failure(exc):
            raise
        stats.failures += 1
        raise StorageError(f"database write failed: {exc.orig}") from exc


def _synchronous(connection: Connection, level: str) -> None:
    """Set SQLite's synchronous level outside a transaction (through the driver: SQLAlchemy would begin one)."""
    try:
        connection.connection.driver_connection.execute(f"PRAGMA synchronous = {level}")  # type: ignore[union-attr]
    except Exception:
        connection.invalidate()  # never hand a connection of unknown durability back to the pool
        raise


def checkpoint(engine: Engine) -> tuple[int, int] | None:
    """Copy what the WAL holds into the database file (SQLite; None on PostgreSQL): PASSIVE, so it never takes
    the write lock nor waits for readers; it copies what no reader still needs, the rest at the next call.
    Returns the WAL's frames and how many of them are now in the database; once they are all there, the next
    write starts the WAL over (and cuts its file to WAL_SIZE_LIMIT)."""
    if not is_sqlite(engine):
        return None
    try:
        with engine.connect() as connection:
            # Through the driver: SQLAlchemy would begin a transaction, in which SQLite refuses to checkpoint.
            driver = connection.connection.driver_connection
            _busy, frames, copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # type: ignore[union-attr]
    except DBAPIError as exc:
        if not _is_storage_failure(exc):
            raise
        raise StorageError(f"database checkpoint failed: {exc.orig}") from exc
    except sqlite3.OperationalError as exc:  # the driver's own: the statement did not go through SQLAlchemy
        raise StorageError(f"database checkpoint failed: {exc}") from exc
    return int(frames), int(copied)


@contextmanager
def read_conn(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (deferred on SQLite: never takes the write lock).

    An unreachable database becomes StorageError here too, so loops that only read (health,
    the refresh of risky hits) back off like the writers instead of logging a traceback."""
    try:
        with engine.connect() as connection, connection.begin():
            yield connection
    except DBAPIError as exc:
        if not _is_storage_failure(exc):
            raise
        raise StorageError(f"database read failed: {exc.orig}") from exc


def _is_storage_failure(exc: DBAPIError) -> bool:
    """The database, not the statement, failed: lock timeout, read-only, disk full, server gone.

    `connection_invalidated` covers the disconnects psycopg reports as InterfaceError; integrity
    and programming errors stay what they are (bugs, not outages)."""
    return isinstance(exc, OperationalError) or exc.connection_invalidated


def on_network_filesystem(path: Path) -> bool:
    """True if `path` lives on NFS/CIFS/SMB, where WAL's shared memory is unsafe."""
    try:
        target = os.path.realpath(path.parent if not path.exists() else path)
        best, fstype = "", ""
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
        return fstype.startswith(("nfs", "cifs", "smb"))
    except OSError:
        return False
