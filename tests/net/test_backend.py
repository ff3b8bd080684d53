"""The plain-asyncio httpcore backend over real loopback sockets: reads, writes, flow control, errors.

TLS through `start_tls` is covered where it matters, through the address guard (tests/net/test_guard.py)
and the client (tests/net/test_http.py, D10).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import threading
import time

import httpcore
import pytest

from tests.support.http_peers import RawServer, read_head
from veille.net.backend import AsyncioBackend

MIB = 1 << 20


async def connect(server: RawServer) -> httpcore.AsyncNetworkStream:
    return await AsyncioBackend().connect_tcp("127.0.0.1", server.port, timeout=5)


async def read_all(stream: httpcore.AsyncNetworkStream, max_bytes: int = 65536) -> bytes:
    data = b""
    while chunk := await stream.read(max_bytes, timeout=5):
        data += chunk
    return data


async def test_a_large_answer_arrives_whole_through_paused_reading() -> None:
    payload = bytes(range(256)) * (4 * MIB // 256)

    def send(sock: socket.socket) -> None:
        read_head(sock)
        sock.sendall(payload)

    with RawServer(send) as server:
        stream = await connect(server)
        await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=5)
        await asyncio.sleep(0.2)  # let the loop buffer well past the pause mark before anyone reads
        received = await read_all(stream, max_bytes=10_000)
        await stream.aclose()
    assert received == payload


async def test_a_large_write_waits_for_a_slow_reader_and_arrives_whole() -> None:
    payload = b"veille" * (8 * MIB // 6)
    got = bytearray()

    def slow_reader(sock: socket.socket) -> None:
        time.sleep(0.2)  # the client's send buffer fills up: asyncio pauses writing
        while len(got) < len(payload):
            chunk = sock.recv(MIB)
            if not chunk:
                break
            got.extend(chunk)
        sock.sendall(b"done")

    with RawServer(slow_reader) as server:
        stream = await connect(server)
        await stream.write(payload, timeout=10)
        assert await stream.read(100, timeout=10) == b"done"
        await stream.aclose()
    assert bytes(got) == payload


async def test_read_times_out_when_the_peer_stays_silent() -> None:
    release = threading.Event()

    def silent(sock: socket.socket) -> None:
        read_head(sock)
        release.wait(5)

    with RawServer(silent) as server:
        stream = await connect(server)
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.2)
        release.set()
        await stream.aclose()


async def test_a_tls_handshake_the_peer_never_answers_times_out() -> None:
    release = threading.Event()
    with RawServer(lambda sock: release.wait(5) and None) as server:
        stream = await connect(server)
        with pytest.raises(httpcore.ConnectTimeout):
            await stream.start_tls(ssl.create_default_context(), server_hostname="feeds.example", timeout=0.2)
        release.set()


async def test_an_idle_connection_the_peer_closed_reads_as_readable_then_ends() -> None:
    """httpcore drops idle pooled connections that are "readable": a peer that hung up must show so."""

    def answer_then_hang_up(sock: socket.socket) -> None:
        read_head(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with RawServer(answer_then_hang_up) as server:
        stream = await connect(server)
        assert stream.get_extra_info("is_readable") is False
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await stream.read(65536, timeout=5)).endswith(b"ok")
        for _ in range(500):  # the FIN reaches the event loop within a few iterations
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        assert stream.get_extra_info("is_readable") is True
        assert await stream.read(100) == b""
        await stream.aclose()


async def test_extra_info_names_both_ends() -> None:
    with RawServer(read_head) as server:
        stream = await connect(server)
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("socket") is not None
        await stream.aclose()


async def test_a_closed_stream_refuses_reads_and_writes() -> None:
    with RawServer(read_head) as server:
        stream = await connect(server)
        await stream.aclose()
        with pytest.raises(httpcore.ReadError):
            await stream.read(100)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"GET / HTTP/1.1\r\n\r\n")


async def test_a_refused_connection_is_a_connect_error_carrying_the_os_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpcore.ConnectError) as caught:
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    cause = caught.value.__cause__
    assert isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED


async def test_socket_options_are_applied() -> None:
    with RawServer(read_head) as server:
        stream = await AsyncioBackend().connect_tcp(
            "127.0.0.1", server.port, timeout=5, socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        )
        assert stream.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        await stream.aclose()
