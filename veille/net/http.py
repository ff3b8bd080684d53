"""The only HTTP client veille builds: every source fetches through `HttpClient`.

What it guarantees, so that no source has to think about it:

* a TOTAL deadline per request (connect, redirects and the whole body), not just a read timeout:
  a server dripping one byte a second cannot hold a poll for longer than `http.timeout`;
* a body cap counted AFTER decompression, decoded in small steps: a gzip bomb is cut at the cap
  with bounded memory;
* redirects followed by hand, each hop re-checked by the address guard (`veille.net.guard`), which
  also vets the address actually dialled (no SSRF, no DNS rebinding);
* at most `http.per_host_limit` requests in flight per host;
* no environment proxies, no cookie jar, a User-Agent naming veille;
* failures mapped onto the `veille.core.errors` tree by type, with messages that never carry a query
  string (API keys live there) or a header value.

With `http.proxy` set, the proxy (chosen by the operator) is dialled without address checks and it
resolves the target names itself: targets then get the scheme and literal-address checks only, so
the proxy must enforce its own egress policy.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import importlib
import json as jsonlib
import logging
import re
import ssl
import sys
import types
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import certifi
import httpcore

from veille.core.clock import Clock, SystemClock
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RateLimited, RetryableFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind
from veille.net.guard import GuardedBackend, ResolutionError, Resolver, check_url_static, host_problem
from veille.net.options import HttpConfig
from veille.net.redact import redact_url


def _httpx_without_its_cli() -> None:
    """Import httpx without its command-line client: httpx loads it whenever rich and pygments are installed
    (veille depends on rich), and they cost about 50 ms of every `veille run --once` start, for a tool
    veille never runs. `httpx.main` still works: it loads the real client on first call."""
    if "httpx" in sys.modules:
        return
    stub = types.ModuleType("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        sys.modules.pop("httpx._main", None)
        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stub.__dict__["main"] = main
    sys.modules["httpx._main"] = stub
    try:
        importlib.import_module("httpx")
    finally:
        if sys.modules.get("httpx._main") is stub:  # a later `import httpx._main` loads the real module
            del sys.modules["httpx._main"]


_httpx_without_its_cli()
import httpx  # noqa: E402 - after the function above, which imports it without its CLI

__all__ = [
    "HttpClient",
    "HttpResponse",
    "parse_retry_after",
    "quiet_http_loggers",
    "redact_url",
]

_Pairs = tuple[tuple[bytes, bytes], ...]  # header (name, value) pairs as sent
_Primitive = str | int | float | bool | None
QueryParams = Mapping[str, _Primitive | Sequence[_Primitive]]  # what httpx encodes in a query string
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
MAX_HOST_POOLS = 64  # idle per-host pools kept open (each holds at most per_host_limit connections)
_MANAGED_HEADERS = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"})
# Caller headers kept when a redirect leaves the origin; the rest may hold credentials.
_CROSS_ORIGIN_HEADERS = frozenset({b"accept", b"accept-language"})
_DECODE_STEP = 64 * 1024  # most bytes one decompression step may produce
_DISCARD_LIMIT = 64 * 1024  # most bytes of an unwanted body read to keep its connection
# What httpcore raises for a failed exchange, timeouts aside (its exceptions share no base class).
_TRANSPORT_ERRORS = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError, httpcore.UnsupportedProtocol)
_RETRY_SECONDS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*$")


def quiet_http_loggers() -> None:
    """httpx logs every request URL at INFO (a Telegram URL holds the bot token): keep them quiet."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_retry_after(value: str | None, *, now: datetime | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), within [0, cap].

    None when absent or unreadable; an HTTP-date needs `now` (the response's arrival time).
    """
    if value is None:
        return None
    match = _RETRY_SECONDS.match(value)
    if match:
        seconds = float(match.group(1))
    elif now is None:
        return None
    else:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), cap)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read response. `body` is decoded (gunzipped) and at most the cap in size."""

    status: int
    url: str  # final URL, after redirects (may hold a query with keys: show it with redact_url)
    headers: httpx.Headers
    body: bytes
    elapsed: float  # seconds, whole exchange including redirects
    history: tuple[tuple[int, str], ...] = ()  # (status, URL it redirected from), oldest first
    # Where the leading run of permanent redirects (301/308) ended: the resource's new home, which a
    # source may adopt (D9). None without redirects or when the first hop was temporary.
    permanent_url: str | None = None
    received_at: datetime | None = field(default=None, repr=False)
    max_retry_after: float = field(default=86_400.0, repr=False)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise PermanentFetchError(
                ErrorKind.BAD_RESPONSE, N_("malformed JSON from {url}").format(url=redact_url(self.url))
            ) from None

    def retry_after(self) -> float | None:
        """Retry-After in seconds, negative -> 0, capped at `http.max_retry_after`; None if absent."""
        return parse_retry_after(self.headers.get("retry-after"), now=self.received_at, cap=self.max_retry_after)


@dataclass(slots=True)
class _HostSlot:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass(frozen=True, slots=True)
class _Hop:
    """One request of a fetch: the first one, then one per redirect followed."""

    method: str
    url: httpx.URL
    headers: _Pairs  # the caller's, checked; those unsafe across origins dropped
    body: bytes | None = None
    body_headers: _Pairs = ()  # Content-Type/-Length, as httpx encodes the body


class HttpClient:
    """Shared async HTTP client; one per daemon. Use `async with HttpClient(config) as http:`.

    Requests go straight to httpcore's connection pools (public API): httpx's client would add, per
    request, an auth flow, a redirect loop we do not use, a cookie jar, event hooks and two stream
    wrappers, and normalise every header twice. httpx still parses URLs and encodes bodies.
    """

    def __init__(
        self,
        config: HttpConfig,
        *,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`resolver` and `network_backend` (the inner httpcore dialler) are for tests."""
        self._config = config
        self._clock = clock or SystemClock()
        self._proxy = httpx.Proxy(config.proxy) if config.proxy else None
        self._guard = GuardedBackend(
            allow_private=config.allow_private_addresses,
            resolver=resolver,
            inner=network_backend,
            trusted_hosts=[self._proxy.url.host] if self._proxy else [],
        )
        self._tls: ssl.SSLContext | None = None  # see _tls_context
        self._default_headers = (
            (b"accept", (b"Accept", b"*/*")),
            (b"accept-encoding", (b"Accept-Encoding", b"gzip, deflate")),
            (b"connection", (b"Connection", b"keep-alive")),
            (b"user-agent", (b"User-Agent", config.user_agent.encode())),
        )
        # One connection pool per host: httpcore scans every connection of a pool on each request,
        # so one big pool costs O(connections) per request (measured 2.7 ms/request with 100).
        self._pools: OrderedDict[tuple[str, str], httpcore.AsyncConnectionPool] = OrderedDict()  # (scheme, host)
        self._closing: set[asyncio.Task[None]] = set()
        self._hosts: dict[str, _HostSlot] = {}

    def _tls_context(self) -> ssl.SSLContext:
        """Built once, on the first https origin: reading certifi's bundle costs ~15 ms, a tenth of a
        `veille run --once` start, and a cron run over plain-http feeds never needs it."""
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls

    def _make_pool(self, scheme: str) -> httpcore.AsyncConnectionPool:
        """A pool whose every connection is dialled by the address guard (the proxy's too)."""
        limit = self._config.per_host_limit
        tls = scheme == "https" or self._proxy is not None
        common: dict[str, Any] = {
            "ssl_context": self._tls_context() if tls else None,
            "max_connections": limit,
            "max_keepalive_connections": min(limit, 20),
            "retries": 0,
            "network_backend": self._guard,
        }
        proxy = self._proxy
        if proxy is None:
            return httpcore.AsyncConnectionPool(**common)
        url = httpcore.URL(
            scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port, target=proxy.url.raw_path
        )
        if proxy.url.scheme == "socks5":  # needs the socksio package, as httpx does
            return httpcore.AsyncSOCKSProxy(proxy_url=url, proxy_auth=proxy.raw_auth, **common)
        return httpcore.AsyncHTTPProxy(
            proxy_url=url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=self._tls_context() if proxy.url.scheme == "https" else None,
            **common,
        )

    def _pool_for(self, scheme: str, host: str) -> httpcore.AsyncConnectionPool:
        """The origin's own pool (least recently used idle pools are closed beyond MAX_HOST_POOLS). An
        http and an https origin of one host have a pool each; the host's slots bound them together."""
        key = (scheme, host)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = self._pools[key] = self._make_pool(scheme)
        idle = [k for k in self._pools if k[1] not in self._hosts and k != key]
        for victim in idle[: max(0, len(self._pools) - MAX_HOST_POOLS)]:
            task = asyncio.get_running_loop().create_task(self._pools.pop(victim).aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return pool

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        await asyncio.gather(*(p.aclose() for p in pools), *self._closing, return_exceptions=True)

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: QueryParams | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the total deadline, applied with asyncio.timeout_at
        accept_statuses: frozenset[int] = frozenset(),
    ) -> HttpResponse:
        """GET; `etag`/`last_modified` from the previous poll make it conditional (304 -> not_modified)."""
        merged = dict(headers or {})
        if etag:
            merged["If-None-Match"] = etag
        if last_modified:
            merged["If-Modified-Since"] = last_modified
        return await self.request(
            "GET",
            url,
            headers=merged,
            params=params,
            max_bytes=max_bytes,
            timeout=timeout,
            accept_statuses=accept_statuses,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: QueryParams | None = None,
        json: object = None,
        data: Mapping[str, str] | str | bytes | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the total deadline, applied with asyncio.timeout_at
        accept_statuses: frozenset[int] = frozenset(),
    ) -> HttpResponse:
        """Send one request, following redirects; raise a `FetchError` for anything but 2xx/304.

        Statuses in `accept_statuses` are returned instead of raised (redirects included, unfollowed).
        Raises ValueError for a caller header the layer manages (Host, hop-by-hop) or an unparsable URL.
        """
        caller = _checked_headers(headers)
        cap = self._config.max_body_bytes if max_bytes is None else max_bytes
        budget = self._config.timeout if timeout is None else timeout
        target = _target(str(url), self._config.allow_private_addresses)
        if params is not None:
            try:
                target = target.copy_merge_params(params)
            except httpx.InvalidURL:
                raise ValueError(f"invalid URL {redact_url(url)}") from None
        method = method.upper()
        body, body_headers = _encode_body(method, target, json=json, data=data)
        hop = _Hop(method, target, caller, body, body_headers)
        extensions = {"timeout": {"connect": min(self._config.connect_timeout, budget)}}
        started = self._clock.monotonic()
        try:
            return await self._follow(
                hop, cap=cap, budget=budget, accept=accept_statuses, started=started, extensions=extensions
            )
        except FetchError:
            raise
        except TimeoutError:
            raise RetryableFetchError(
                ErrorKind.TIMEOUT,
                N_("no complete response within {budget:g} s from {url}").format(budget=budget, url=redact_url(url)),
            ) from None
        except httpcore.TimeoutException as exc:
            raise RetryableFetchError(
                ErrorKind.TIMEOUT, N_("{phase} timed out ({url})").format(phase=_phase(exc), url=redact_url(url))
            ) from None
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, url) from None

    async def _follow(
        self,
        hop: _Hop,
        *,
        cap: int,
        budget: float,
        accept: frozenset[int],
        started: float,
        extensions: dict[str, Any],
    ) -> HttpResponse:
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        history: list[tuple[int, str]] = []
        permanent: str | None = None
        while True:
            self._check_hop(hop.url)
            host = hop.url.host
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = _HostSlot(asyncio.Semaphore(self._config.per_host_limit))
            slot.users += 1
            try:
                # Waiting for one of the host's slots counts against the deadline only after the first
                # hop: queueing behind our own requests is not the server's fault.
                async with asyncio.timeout_at(deadline) as scope:
                    await slot.semaphore.acquire()
                    try:
                        if deadline is None:
                            deadline = loop.time() + budget
                            scope.reschedule(deadline)
                        status, headers, body, readable = await self._exchange(hop, cap, accept, extensions)
                    finally:
                        slot.semaphore.release()
            finally:
                slot.users -= 1
                if slot.users == 0:
                    del self._hosts[host]
            location = headers.get("location")
            if status not in _REDIRECTS or status in accept or not location:
                break
            if len(history) >= self._config.max_redirects:
                raise PermanentFetchError(
                    ErrorKind.TOO_MANY_REDIRECTS,
                    N_("more than {max_redirects} redirects from {url}").format(
                        max_redirects=self._config.max_redirects, url=redact_url(history[0][1])
                    ),
                )
            try:
                target = hop.url.join(location)
            except httpx.InvalidURL:
                raise PermanentFetchError(ErrorKind.BAD_RESPONSE, N_("redirect to an invalid URL")) from None
            if status in _PERMANENT and all(s in _PERMANENT for s, _ in history):
                permanent = str(target)
            history.append((status, str(hop.url)))
            if str(target) in {url for _, url in history}:
                raise PermanentFetchError(
                    ErrorKind.TOO_MANY_REDIRECTS, N_("redirect loop at {url}").format(url=redact_url(target))
                )
            hop = _redirected(hop, status, target)
        result = HttpResponse(
            status=status,
            url=str(hop.url),
            headers=headers,
            body=body,
            elapsed=self._clock.monotonic() - started,
            history=tuple(history),
            permanent_url=permanent,
            received_at=self._clock.now(),
            max_retry_after=self._config.max_retry_after,
        )
        if readable:
            return result
        raise _status_error(result)

    async def _exchange(
        self, hop: _Hop, cap: int, accept: frozenset[int], extensions: dict[str, Any]
    ) -> tuple[int, httpx.Headers, bytes, bool]:
        """One request and its whole response: (status, headers, decoded body, body wanted)."""
        url = hop.url
        pool = self._pool_for(url.scheme, url.host)
        request = httpcore.Request(
            hop.method,
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=self._wire_headers(hop),
            content=hop.body,
            extensions=extensions,
        )
        response = await pool.handle_async_request(request)
        try:
            status = response.status
            headers = httpx.Headers(response.headers)
            readable = status in accept or 200 <= status < 300 or status == 304
            if readable and hop.method != "HEAD" and status not in (204, 304):
                body = await _read_body(response, headers, url, cap)
            else:
                body = await _discard(response)
        finally:
            await response.aclose()
        return status, headers, body, readable

    def _wire_headers(self, hop: _Hop) -> list[tuple[bytes, bytes]]:
        """Host, then veille's defaults unless the caller set them, the caller's, the body's."""
        named = {name.lower() for name, _ in hop.headers}
        headers = [(b"Host", hop.url.netloc)]
        headers += [pair for lowered, pair in self._default_headers if lowered not in named]
        headers += hop.headers
        headers += [(name, value) for name, value in hop.body_headers if name.lower() not in named]
        return headers

    def _check_hop(self, url: httpx.URL) -> None:
        """Scheme and literal-address check before each hop; the backend vets resolved names."""
        if url.scheme not in ("http", "https"):
            raise PermanentFetchError(
                ErrorKind.FORBIDDEN_ADDRESS, N_("refused non-http(s) URL (scheme {scheme!r})").format(scheme=url.scheme)
            )
        problem = host_problem(url.host, allow_private=self._config.allow_private_addresses)
        if problem:
            raise PermanentFetchError(ErrorKind.FORBIDDEN_ADDRESS, N_("{problem}: refused").format(problem=problem))


@functools.lru_cache(maxsize=4096)
def _target(url: str, allow_private: bool) -> httpx.URL:
    """The static address check, then httpx's parse, once per distinct URL: pollers fetch the same
    URLs all day. Raises (uncached) PermanentFetchError for a refused URL, ValueError for a broken one."""
    problem = check_url_static(url, allow_private=allow_private)
    if problem:  # before httpx parses it: httpx rejects some spellings browsers accept (0177.0.0.1)
        raise PermanentFetchError(
            ErrorKind.FORBIDDEN_ADDRESS, N_("{url}: {problem}").format(url=redact_url(url), problem=problem)
        )
    try:
        return httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError(f"invalid URL {redact_url(url)}") from None


def _redirected(previous: _Hop, status: int, target: httpx.URL) -> _Hop:
    """Browser rules: 303 (and 301/302 after POST) become GET without a body; credentials and custom
    headers are dropped when the origin changes, and stay dropped for the rest of the chain."""
    method, body, body_headers = previous.method, previous.body, previous.body_headers
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body, body_headers = "GET", None, ()
    headers = previous.headers
    if _origin(target) != _origin(previous.url):
        headers = tuple((k, v) for k, v in headers if k.lower() in _CROSS_ORIGIN_HEADERS)
    return _Hop(method, target, headers, body, body_headers)


def _encode_body(
    method: str, url: httpx.URL, *, json: object, data: Mapping[str, str] | str | bytes | None
) -> tuple[bytes | None, _Pairs]:
    """The body and its Content-Type/-Length, encoded by httpx (form, JSON or raw bytes)."""
    if json is None and data is None:
        return None, ((b"Content-Length", b"0"),) if method in ("POST", "PUT", "PATCH") else ()
    kwargs: dict[str, Any] = {"json": json}
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    else:
        kwargs["data"] = data
    encoded = httpx.Request(method, url, **kwargs)
    return encoded.content, tuple((k, v) for k, v in encoded.headers.raw if k.lower() != b"host")


def _checked_headers(headers: Mapping[str, str] | None) -> _Pairs:
    """The caller's headers as sent (names spelled as given: some servers care), refused when the
    layer manages them or when they could split the request."""
    checked: dict[str, tuple[bytes, bytes]] = {}
    pairs = _raw_pairs(headers) if isinstance(headers, httpx.Headers) else (headers or {}).items()
    for name, value in pairs:
        lowered = name.lower()
        if lowered in _MANAGED_HEADERS or lowered.startswith("proxy-"):
            raise ValueError(f"header {name!r} is managed by the HTTP layer and may not be set")
        if any(ch in name + value for ch in "\r\n\0"):
            raise ValueError(f"header {name!r} contains a line break")
        checked[lowered] = (name.encode(), value.encode())  # a repeated name: the last value wins
    return tuple(checked.values())


def _raw_pairs(headers: httpx.Headers) -> list[tuple[str, str]]:
    """Header pairs as spelled by the caller (`items()` lowercases names; some servers care)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class _Inflater:
    """Decodes one gzip/deflate layer in steps of at most `_DECODE_STEP` output bytes, so a bomb
    never inflates more than one step past the cap. Concatenated gzip members are all decoded;
    bytes after the last member that are not a gzip header are ignored, as browsers do."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._obj: Any = None
        self._members = 0
        self._held = b""  # the start of a next member, too short to tell
        self._done = False

    def _start(self, data: bytes) -> Any:
        if self._gzip:
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
        wrapped = data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self._done:
            if self._obj is None:
                data, self._held = self._held + data, b""
                if len(data) < 2:
                    self._held = data
                    return
                if self._members and not data.startswith(b"\x1f\x8b"):
                    self._done = True  # trailing bytes, not another member
                    return
                self._obj = self._start(data)
            out = self._obj.decompress(data, _DECODE_STEP)
            if out:
                yield out
            if self._obj.eof:
                self._members += 1
                data, self._obj = self._obj.unused_data, None
                self._done = not self._gzip
                continue
            data = self._obj.unconsumed_tail
            if not data and len(out) < _DECODE_STEP:
                return  # input used up and no output pending: wait for the next chunk

    def finish(self) -> Iterator[bytes]:
        if self._obj is not None:
            tail = self._obj.flush()
            if tail:
                yield tail


async def _read_body(response: httpcore.Response, headers: httpx.Headers, url: httpx.URL, cap: int) -> bytes:
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    unsupported = [e for e in encodings if e not in ("gzip", "x-gzip", "deflate")]
    if unsupported:
        raise PermanentFetchError(
            ErrorKind.BAD_RESPONSE,
            N_("unsupported content-encoding {unsupported!r} from {host}").format(
                unsupported=unsupported[0], host=url.host
            ),
        )
    length = headers.get("content-length", "")
    if not encodings and length.isdigit() and int(length) > cap:
        raise _too_large(url, cap)
    if not encodings:
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_stream():
            size += len(raw)
            if size > cap:
                raise _too_large(url, cap)
            chunks.append(raw)
        return b"".join(chunks)
    layers = [_Inflater(e) for e in reversed(encodings)]  # the last encoding applied is undone first
    body = bytearray()

    def decoded(chunk: bytes, depth: int = 0) -> Iterator[bytes]:
        if depth == len(layers):
            yield chunk
            return
        for piece in layers[depth].feed(chunk):
            yield from decoded(piece, depth + 1)

    def finished(depth: int = 0) -> Iterator[bytes]:
        if depth == len(layers):
            return
        for piece in layers[depth].finish():
            yield from decoded(piece, depth + 1)
        yield from finished(depth + 1)

    try:
        async for raw in response.aiter_stream():
            for piece in decoded(raw):
                if len(body) + len(piece) > cap:
                    raise _too_large(url, cap)
                body += piece
        for piece in finished():
            if len(body) + len(piece) > cap:
                raise _too_large(url, cap)
            body += piece
    except zlib.error:
        raise PermanentFetchError(
            ErrorKind.BAD_RESPONSE, N_("corrupt compressed body from {host}").format(host=url.host)
        ) from None
    return bytes(body)


async def _discard(response: httpcore.Response) -> bytes:
    """Read an unwanted body (none for 304, 204 and HEAD; a short one for errors and redirects) so the
    connection goes back to the pool: closing a half-read response closes its connection too."""
    left = _DISCARD_LIMIT
    async for chunk in response.aiter_stream():
        left -= len(chunk)
        if left < 0:
            break  # not worth reading: the connection is dropped instead
    return b""


def _too_large(url: httpx.URL, cap: int) -> PermanentFetchError:
    return PermanentFetchError(
        ErrorKind.TOO_LARGE,
        N_("body over {cap} bytes (after decompression) from {url}").format(cap=cap, url=redact_url(url)),
    )


def _status_error(response: HttpResponse) -> FetchError:
    status, where = response.status, redact_url(response.url)
    message = N_("HTTP {status} from {url}").format(status=status, url=where)
    if status == 429:
        return RateLimited(message, retry_after=response.retry_after())
    if status == 503 and response.retry_after() is not None:
        return RateLimited(message, retry_after=response.retry_after())
    if status >= 500:
        return RetryableFetchError(ErrorKind.HTTP_5XX, message)
    if status in (401, 403):
        return AuthFailed(message)
    if status == 410:
        return PermanentFetchError(ErrorKind.GONE, message)
    if status == 404:  # gone too once it lasts `[daemon] gone_after` (D9, decided by the pipeline)
        return PermanentFetchError(ErrorKind.NOT_FOUND, message)
    if status >= 400:
        return PermanentFetchError(ErrorKind.HTTP_4XX, message)
    # 1xx or an unfollowed 3xx (no Location): the caller cannot use it.
    return PermanentFetchError(ErrorKind.BAD_RESPONSE, message)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _phase(exc: httpcore.TimeoutException) -> str:
    if isinstance(exc, httpcore.ConnectTimeout):
        return N_("connect")
    if isinstance(exc, httpcore.PoolTimeout):
        return N_("waiting for a connection")
    return N_("read") if isinstance(exc, httpcore.ReadTimeout) else N_("write")


def _transport_error(exc: Exception, url: str) -> FetchError:
    """TLS failures by type (ssl.SSLError anywhere in the cause chain); everything else is network."""
    host = redact_url(url)
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return RetryableFetchError(
                ErrorKind.TLS,
                N_("certificate rejected for {host}: {verify_message}").format(
                    host=host, verify_message=cause.verify_message or N_("verification failed")
                ),
            )
        if isinstance(cause, ssl.SSLError):
            return RetryableFetchError(
                ErrorKind.TLS,
                N_("TLS failure with {host}: {reason}").format(
                    host=host, reason=cause.reason or N_("handshake failed")
                ),
            )
    detail = (
        N_("connection closed mid-response")
        if isinstance(exc, httpcore.RemoteProtocolError)
        else N_("connection failed")
    )
    for cause in _causes(exc):
        if isinstance(cause, ResolutionError):
            detail = N_("DNS lookup failed")
            break
        if isinstance(cause, OSError) and cause.errno is not None and cause.errno in errno.errorcode:
            detail = errno.errorcode[cause.errno]
            break
    return RetryableFetchError(ErrorKind.NETWORK, N_("{detail} ({host})").format(detail=detail, host=host))
