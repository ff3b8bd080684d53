"""A real HTTP server on 127.0.0.1 that plays remote hosts (feed hosts, APIs, the Bot API).

Routes map a path to a handler `(request) -> Response`; a handler may also write to the socket
itself (slow drip, truncated bodies). Every request is recorded for assertions. TCP_NODELAY is set,
or every small response costs about 40 ms of Nagle delay.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    drip: float = 0.0  # seconds between 1-byte writes
    truncate_at: int | None = None  # close the connection after this many body bytes

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data), {"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer._Server  # type: ignore[name-defined]
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
        owner = self.server.owner
        owner.requests.append(request)
        handler = owner.routes.get(parts.path) or owner.routes.get("*")
        response = handler(request) if handler else Response(404, b"not found")
        payload = response.body.encode() if isinstance(response.body, str) else response.body
        if response.gzip:
            payload = gzip.compress(payload)
            response.headers.setdefault("Content-Encoding", "gzip")
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.truncate_at is not None:
            self.wfile.write(payload[: response.truncate_at])
            self.wfile.flush()
            self.close_connection = True
            return
        if response.drip:
            for index in range(len(payload)):
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                if owner.stopping.wait(response.drip):
                    return
            return
        self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve


class LocalServer:
    """Start with `with LocalServer() as server:`; `server.url("/feed")` gives a full URL."""

    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        owner: LocalServer

        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that went away (a daemon killed mid-request) is not a server bug: no traceback.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._server = self._Server((host, 0), _Handler)
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, handler: Handler | Response) -> None:
        self.routes[path] = handler if callable(handler) else (lambda _r, resp=handler: resp)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def serve(routes: dict[str, Handler | Response] | None = None) -> Iterator[LocalServer]:
    """Generator for pytest fixtures: `yield from serve({...})`."""
    with LocalServer() as server:
        for path, handler in (routes or {}).items():
            server.route(path, handler)
        yield server
