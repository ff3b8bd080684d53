"""A loopback TCP relay a test can cut and restore: a database (or any peer) that goes away mid-run (G8).

`cut()` behaves like the server process dying: live connections are closed under the client's feet
and new ones are refused (nothing listens on the port). `restore()` listens on the same port again,
so the client finds its peer back at the address it was configured with.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self.accepted = 0  # connections accepted since start: tells whether the client reconnected
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._open = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_cut(self) -> bool:
        return not self._open.is_set()

    def cut(self) -> None:
        """Stop listening (new connections refused) and close every live connection."""
        self._open.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._open.is_set():
            return
        self._listen()

    # --- relaying -------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.05)  # the accept loop notices cut() within this delay
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._open.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), name="tcpproxy-accept", daemon=True)
        self._acceptor.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._open.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if not self._open.is_set():
                    client.close()
                    upstream.close()
                    return
                self._live.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="tcpproxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # One side finished or failed: close both, as a dying server would.
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._live.discard(src)
            self._live.discard(dst)
        for sock in (src, dst):
            sock.close()
