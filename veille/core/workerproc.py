"""Starting one of veille's helper processes: `python -m MODULE READ_FD WRITE_FD ARGS...`.

The daemon keeps its own process for I/O and moves CPU-bound work to helpers (feed parsing,
sentiment scoring) so that both cores work and a runaway parse can be killed. A helper is a fresh
interpreter started with fork+exec, never a fork of the daemon (whose threads, sockets and
database connections must not be copied) and not through multiprocessing (which would re-import
the daemon's main module). It talks over two pipes with length-prefixed messages
(`multiprocessing.connection.Connection`), enlarged to 1 MiB where the kernel allows it so that
sending a usual request never blocks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import NoReturn

log = logging.getLogger("veille.core.workerproc")

PIPE_SIZE = 1024 * 1024
# Helpers run this much nicer than the daemon: when parsing and scoring keep both cores busy (a first poll of
# news feeds), the daemon's writer still gets the CPU while it holds the database's write lock (issue 17: its
# transactions held the lock for ten times their own CPU time), and its timers and HTTP keep their pace.
HELPER_NICENESS = 5
_F_SETPIPE_SZ = 1031  # Linux fcntl; absent from Python's fcntl module before 3.10 on some builds


def spawn(module: str, *args: str) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
    """Start `module` with a request pipe and a reply pipe; returns (process, requests, replies)."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    for fd in (request_write, reply_write):
        _enlarge_pipe(fd)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", module, str(request_read), str(reply_write), *args],
            pass_fds=(request_read, reply_write),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except BaseException:
        for fd in (request_read, request_write, reply_read, reply_write):
            os.close(fd)
        raise
    os.close(request_read)
    os.close(reply_write)
    with contextlib.suppress(OSError):  # a helper that already exited, or a system that refuses
        os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICENESS)
    return process, Connection(request_write, readable=False), Connection(reply_read, writable=False)


class Helper:
    """The daemon's side of one helper process: the process and its two pipes.

    Used by one caller at a time (the parse pool's idle queue, the scorer's lock). `kill` and `stop`
    are safe to call twice and leave it ready for `spawn` again."""

    def __init__(self, module: str, *args: str) -> None:
        self.module = module
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.requests: Connection | None = None
        self.replies: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> None:
        """fork+exec only (a few ms): the helper's imports happen after, in the helper."""
        self.process, self.requests, self.replies = spawn(self.module, *self.args)

    def kill(self) -> None:
        """Stop the process at once and release its pipes."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
                log.error("helper %s (%s) did not exit after SIGKILL", self.process.pid, self.module)
        for conn in (self.requests, self.replies):
            if conn is not None:
                conn.close()
        self.process = self.requests = self.replies = None

    def stop(self, grace: float = 1.0) -> None:
        """Ask the helper to exit (an empty message), then kill it if it does not within `grace` seconds."""
        if self.process is not None and self.requests is not None and self.process.poll() is None:
            try:
                self.requests.send_bytes(b"")
                self.process.wait(timeout=grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def helper_pipes(read_fd: int, write_fd: int) -> tuple[Connection, Connection]:
    """The helper's side: its (requests, replies) pipes. Ctrl-C reaches the whole process group, but
    only the daemon decides when its helpers stop, so SIGINT is ignored here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return Connection(read_fd, writable=False), Connection(write_fd, readable=False)


def incoming(requests: Connection) -> Iterator[bytes]:
    """Requests until the daemon's polite "stop" (an empty message) or its end (the pipe closed).

    A MemoryError while receiving (a request too big for the helper's cap) reaches the caller."""
    while True:
        try:
            message = requests.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        yield message


def run_helper(main: Callable[[], int]) -> NoReturn:
    """A helper's entry point: exit with `main()`'s code, quietly when the daemon is gone.

    A daemon killed (SIGKILL, OOM) while a helper starts or works leaves it a reply pipe with no
    reader: its next send raises BrokenPipeError. That is the daemon's crash, not the helper's, so
    it ends without the traceback that would send the operator looking for a parser or scorer bug.
    """
    try:
        code = main()
    except BrokenPipeError:
        code = 0
    sys.exit(code)


def limit_memory(max_bytes: int) -> None:
    """Cap the address space so that work that balloons raises MemoryError in the helper, not the daemon."""
    if max_bytes <= 0:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            max_bytes = min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the wall-clock limits remain
        pass


def _enlarge_pipe(fd: int) -> None:
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), PIPE_SIZE)
