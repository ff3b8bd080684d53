"""A plain-asyncio network backend for httpcore: the dialler under `netguard.GuardedBackend`.

httpcore's default backend goes through anyio, which costs a cancel scope (`fail_after`) and a
sniffio lookup on every read and write, and answers `get_extra_info("is_readable")` - asked for
every idle connection each time a pool hands out a connection - with a fresh attribute table, a
`getpeername()` and a `poll()` syscall. Here a connection is an `asyncio.Protocol` buffering what the
event loop has already read: reads are served from the buffer, "is the idle peer gone or talking?"
is a flag, and a timer is armed only when a read or write really has to wait with a timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioBackend"]

_PAUSE_AT = 256 * 1024  # buffered bytes at which the socket stops being read until the reader catches up
_RESUME_AT = 64 * 1024


class _Connection(asyncio.Protocol):
    """What the event loop delivered for one connection, waiting for httpcore to read it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[bool] | None = None  # one reader or one writer at a time (HTTP/1.1)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= _PAUSE_AT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self.eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)

    def take(self, max_bytes: int) -> bytes:
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self.chunks.appendleft(rest)
        self.buffered -= len(chunk)
        if self.reading_paused and self.buffered <= _RESUME_AT and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk


async def _wait(connection: _Connection, timeout: float | None) -> bool:  # noqa: ASYNC109 - httpcore passes it
    """Wait for the protocol to wake us; False when `timeout` ran out first."""
    loop = asyncio.get_running_loop()
    waiter = connection.waiter = loop.create_future()
    timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
    try:
        woken: bool = await waiter
        return woken
    finally:
        connection.waiter = None
        if timer is not None:
            timer.cancel()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        self._closed = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        connection = self._connection
        if not connection.chunks:
            if self._closed:
                raise httpcore.ReadError("read from a closed connection")
            while not (connection.chunks or connection.eof or connection.lost):
                if not await _wait(connection, timeout):
                    raise httpcore.ReadTimeout("read timed out")
            if not connection.chunks:
                if connection.error is not None:
                    raise httpcore.ReadError(str(connection.error)) from connection.error
                return b""  # the peer closed: h11 decides whether that ended the message
        return connection.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        connection = self._connection
        if self._closed or connection.lost or self._transport.is_closing():
            raise httpcore.WriteError("write to a closed connection") from connection.error
        self._transport.write(buffer)
        while connection.writing_paused and not connection.lost:
            if not await _wait(connection, timeout):
                raise httpcore.WriteTimeout("write timed out")
        if connection.lost:
            raise httpcore.WriteError("connection lost while writing") from connection.error

    async def aclose(self) -> None:
        self._closed = True
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the peer closed during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        self._connection.transport = transport  # flow control now pauses the TLS transport
        return _Stream(transport, self._connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection with data or EOF pending is dead to HTTP/1.1
            connection = self._connection
            return bool(connection.chunks) or connection.eof or connection.lost
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Dials TCP with the running asyncio loop (asyncio sets TCP_NODELAY itself)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(_Connection, host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(transport, connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by veille")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
