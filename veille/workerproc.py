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
import os
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import NoReturn

PIPE_SIZE = 1024 * 1024
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
    return process, Connection(request_write, readable=False), Connection(reply_read, writable=False)


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
