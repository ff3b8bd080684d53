"""Peers for the HTTP layer's tests that `LocalServer` cannot play.

* `RawServer`: a TCP server on 127.0.0.1 handing each accepted socket to a function (reset mid-body,
  a streamed gzip bomb, TLS with a chosen certificate).
* `gzip_bomb`: a real, valid gzip stream of N MiB of zeros (1 GiB is about 1 MB), built in ~0.2 s.
* `make_certificate`: a CA and a leaf certificate for given names, made with `cryptography`.
* `LoopbackDialler`: an httpcore backend playing "the internet": whatever public address the guard
  vetted is served by one loopback port, and every address dialled is recorded.
* `ScriptedResolver`: a resolver answering from a script, recording each lookup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpcore

ConnectionHandler = Callable[[socket.socket], None]


def read_head(sock: socket.socket) -> bytes:
    """Read a request up to the blank line (tests send no bodies to raw servers)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the client hung up on purpose (cap reached, deadline)
        sock.sendall(data)


class RawServer:
    """`with RawServer(handler) as server:`; each connection runs `handler(sock)` in its own thread."""

    def __init__(self, handler: ConnectionHandler) -> None:
        self._handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        try:
            self._handler(sock)
        except OSError:
            pass
        finally:
            sock.close()

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()


def reset_mid_body(sock: socket.socket) -> None:
    """Promise 100,000 bytes, send 1,000, then reset the connection (RST, not FIN)."""
    read_head(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def serve_bytes(head: bytes, body: bytes) -> ConnectionHandler:
    def handler(sock: socket.socket) -> None:
        read_head(sock)
        send_quietly(sock, head + body)

    return handler


def gzip_bomb(mib: int = 1024) -> bytes:
    """`mib` MiB of zeros as one valid gzip member. After a full flush the compressor forgets its
    history, so every further MiB compresses to the same bytes and can be repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = bytes(1 << 20)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return header + first + repeat * (mib - 1) + tail + trailer


@dataclass
class Certificate:
    cert_file: Path
    key_file: Path
    ca_file: Path


def make_certificate(directory: Path, names: Iterable[str], *, expired: bool = False) -> Certificate:
    """A throwaway CA and a server certificate for `names` (DNS names or IP addresses)."""
    import pytest

    pytest.importorskip("cryptography", reason="TLS tests need the `cryptography` test dependency")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veille test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = list(names)
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = (
        (now - dt.timedelta(days=10), now - dt.timedelta(days=5))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=1))
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    result = Certificate(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    result.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    result.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return result


def tls_handler(certificate: Certificate, body: bytes, server_names: list[str | None]) -> ConnectionHandler:
    """Serve `body` over TLS; records the SNI name each client sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)

    def remember(_sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        server_names.append(name)

    context.sni_callback = remember  # type: ignore[assignment]

    def handler(sock: socket.socket) -> None:
        try:
            tls = context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate
        with tls:
            read_head(tls)
            send_quietly(tls, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return handler


@dataclass
class ScriptedResolver:
    """Answers lookups from `answers[host]`: a list of addresses, or a list of such lists consumed
    one per lookup (the last one repeats). Unknown names fail like DNS does."""

    answers: dict[str, Sequence[str] | Sequence[Sequence[str]]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        count = self.lookups.count(host)
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        script = self.answers[host]
        if script and not isinstance(script[0], str):
            script = script[min(count, len(script) - 1)]
        return [ipaddress.ip_address(a) for a in script]  # type: ignore[arg-type]


class LoopbackDialler(httpcore.AsyncNetworkBackend):
    """Plays the internet: any vetted address is served by the loopback `port`; records dials."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dialled: list[str] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialled.append(host)
        return await self._inner.connect_tcp("127.0.0.1", self.port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def connect_proxy(targets: list[str]) -> ConnectionHandler:
    """An HTTP proxy that only tunnels (CONNECT host:port), to 127.0.0.1:port; records each target asked."""

    def relay(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def handler(sock: socket.socket) -> None:
        head = read_head(sock).decode("latin-1")
        method, target, _ = head.split(" ", 2)
        targets.append(target)
        if method != "CONNECT":
            send_quietly(sock, b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        port = int(target.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as upstream:
            send_quietly(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=relay, args=(upstream, sock), daemon=True)
            back.start()
            relay(sock, upstream)
            back.join(timeout=5)

    return handler
