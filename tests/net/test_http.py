"""HttpClient over real loopback servers: D1 D2 D6 D7 D8 D10 D11 D16, F1 to F6."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.http_peers import (
    LoopbackDialler,
    RawServer,
    ScriptedResolver,
    connect_proxy,
    gzip_bomb,
    make_certificate,
    read_head,
    reset_mid_body,
    serve_bytes,
    tls_handler,
)
from tests.support.server import LocalServer, Request, Response
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.net.http import HttpClient, HttpResponse, parse_retry_after, quiet_http_loggers
from veille.net.options import HttpConfig
from veille.net.redact import redact_url

PUBLIC = "93.184.215.14"
LAB = HttpConfig(allow_private_addresses=True)
GUARDED = HttpConfig(allow_private_addresses=False)


@pytest.fixture(scope="module")
def site() -> Iterator[LocalServer]:
    """One server for the module (each LocalServer costs 0.5 s to stop); tests use their own paths."""
    with LocalServer() as server:
        yield server


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[HttpClient]:
    async with HttpClient(LAB, clock=clock) as client:
        yield client


def lowered(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


async def failure(coro: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await coro  # type: ignore[misc]
    return caught.value


# --- basics, F6 ---------------------------------------------------------------------------------


async def test_get_returns_the_body_and_names_veille_in_the_user_agent(http: HttpClient, site: LocalServer) -> None:
    site.route("/basic", Response(200, "bonjour", {"X-Thing": "1"}))
    response = await http.get(site.url("/basic"), params={"q": "café"})
    assert (response.status, response.body, response.headers["x-thing"]) == (200, b"bonjour", "1")
    assert response.url == site.url("/basic?q=caf%C3%A9")
    sent = lowered(site.requests_to("/basic")[-1])
    assert "veille" in sent["user-agent"] and "https://" in sent["user-agent"]
    assert sent["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "TE",
        "Upgrade",
        "Trailer",
        "Proxy-Authorization",
        "Proxy-Connection",
    ],
)
async def test_f6_callers_cannot_set_host_or_hop_by_hop_headers(http: HttpClient, site: LocalServer, name: str) -> None:
    site.route("/f6", Response(200, "x"))
    with pytest.raises(ValueError, match="managed by the HTTP layer"):
        await http.get(site.url("/f6"), headers={name: "evil.example"})
    assert site.requests_to("/f6") == []


async def test_f6_header_injection_is_refused(http: HttpClient, site: LocalServer) -> None:
    with pytest.raises(ValueError):
        await http.get(site.url("/f6b"), headers={"X-Token": "a\r\nHost: evil"})


async def test_custom_headers_are_sent(http: HttpClient, site: LocalServer) -> None:
    site.route("/custom", Response(200, "x"))
    await http.get(site.url("/custom"), headers={"Authorization": "Bearer t0k", "Accept": "application/rss+xml"})
    sent = site.requests_to("/custom")[-1].headers
    assert sent["Authorization"] == "Bearer t0k" and sent["Accept"] == "application/rss+xml"


async def test_post_json_and_form(http: HttpClient, site: LocalServer) -> None:
    site.route("/post", lambda r: Response.json({"got": r.body.decode()}))
    response = await http.request("POST", site.url("/post"), json={"a": 1})
    assert response.json() == {"got": '{"a":1}'}
    response = await http.request("POST", site.url("/post"), data={"b": "2"})
    assert response.json() == {"got": "b=2"}


async def test_json_helper_reports_malformed_json_as_bad_response(http: HttpClient, site: LocalServer) -> None:
    site.route("/badjson", Response(200, "{not json", {"Content-Type": "application/json"}))
    response = await http.get(site.url("/badjson?key=SECRET"))
    with pytest.raises(PermanentFetchError) as caught:
        response.json()
    assert caught.value.kind is ErrorKind.BAD_RESPONSE and "SECRET" not in str(caught.value)


# --- D2 conditional GET -------------------------------------------------------------------------


async def test_d2_conditional_headers_and_304(http: HttpClient, site: LocalServer) -> None:
    def feed(request: Request) -> Response:
        if lowered(request).get("if-none-match") == '"v1"':
            return Response(304)
        return Response(200, "<rss/>", {"ETag": '"v1"', "Last-Modified": "Wed, 18 Nov 2026 10:00:00 GMT"})

    site.route("/d2", feed)
    first = await http.get(site.url("/d2"))
    assert not first.not_modified and first.body == b"<rss/>"
    second = await http.get(site.url("/d2"), etag=first.headers["etag"], last_modified=first.headers["last-modified"])
    sent = site.requests_to("/d2")[-1].headers  # spelled as in the RFC: some servers compare case-sensitively
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Wed, 18 Nov 2026 10:00:00 GMT"
    assert second.not_modified and second.status == 304 and second.body == b""


# --- D1 Retry-After and status classification ------------------------------------------------------

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("1.5", 1.5),
        ("315360000", 86_400.0),  # ten years -> 24 h
        (format_datetime(NOW + timedelta(minutes=2), usegmt=True), 120.0),
        (format_datetime(NOW - timedelta(minutes=2), usegmt=True), 0.0),
        (format_datetime(NOW + timedelta(days=3650), usegmt=True), 86_400.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("12abc", None),
        ("nan", None),
    ],
)
def test_d1_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW, cap=86_400.0) == expected


def test_d1_http_date_needs_a_reference_time() -> None:
    assert parse_retry_after("Fri, 20 Nov 2026 01:02:00 GMT", now=None, cap=10.0) is None
    assert HttpResponse(429, "http://x/", httpx.Headers({"Retry-After": "30"}), b"", 0.0).retry_after() == 30.0


@pytest.mark.parametrize(
    ("status", "headers", "error", "kind", "retry_after"),
    [
        (429, {"Retry-After": "120"}, RateLimited, ErrorKind.RATE_LIMITED, 120.0),
        (429, {}, RateLimited, ErrorKind.RATE_LIMITED, None),
        (429, {"Retry-After": "315360000"}, RateLimited, ErrorKind.RATE_LIMITED, 86_400.0),
        (503, {"Retry-After": "Fri, 20 Nov 2026 01:02:00 GMT"}, RateLimited, ErrorKind.RATE_LIMITED, 120.0),
        (503, {}, RetryableFetchError, ErrorKind.HTTP_5XX, None),
        (500, {}, RetryableFetchError, ErrorKind.HTTP_5XX, None),
        (502, {"Retry-After": "10"}, RetryableFetchError, ErrorKind.HTTP_5XX, None),
        (401, {}, AuthFailed, ErrorKind.AUTH, None),
        (403, {}, AuthFailed, ErrorKind.AUTH, None),
        (410, {}, PermanentFetchError, ErrorKind.GONE, None),
        (404, {}, PermanentFetchError, ErrorKind.NOT_FOUND, None),
        (400, {}, PermanentFetchError, ErrorKind.HTTP_4XX, None),
    ],
)
async def test_d1_statuses_are_classified(
    http: HttpClient,
    site: LocalServer,
    status: int,
    headers: dict[str, str],
    error: type[FetchError],
    kind: ErrorKind,
    retry_after: float | None,
) -> None:
    path = f"/status/{status}/{len(headers)}"
    site.route(path, Response(status, "nope", headers))
    caught = await failure(http.get(site.url(path) + "?api_key=SECRET123"))
    assert type(caught) is error
    assert (caught.kind, caught.retry_after) == (kind, retry_after)
    assert "SECRET123" not in str(caught) and str(status) in caught.message


async def test_accepted_statuses_are_returned(http: HttpClient, site: LocalServer) -> None:
    site.route("/accepted", Response(404, '{"error": "no such user"}'))
    response = await http.get(site.url("/accepted"), accept_statuses=frozenset({404}))
    assert response.status == 404 and response.json() == {"error": "no such user"}


# --- D6 body cap after decoding ---------------------------------------------------------------------


async def test_d6_gzip_bomb_is_cut_at_the_cap(http: HttpClient) -> None:
    bomb = gzip_bomb(1024)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    process = psutil.Process()
    with RawServer(serve_bytes(head, bomb)) as server:
        rss_before = process.memory_info().rss
        started = time.perf_counter()
        caught = await failure(http.get(server.url("/bomb"), max_bytes=15 * 1024 * 1024))
        took = time.perf_counter() - started
        rss_growth = process.memory_info().rss - rss_before
    assert isinstance(caught, PermanentFetchError) and caught.kind is ErrorKind.TOO_LARGE
    print(
        f"\nD6: 1 GiB gzip bomb ({len(bomb)} bytes on the wire) cut at 15 MiB in {took * 1000:.0f} ms, "
        f"RSS growth {rss_growth / 2**20:.1f} MiB"
    )


async def test_d6_default_cap_comes_from_config(site: LocalServer) -> None:
    site.route("/big", Response(200, b"x" * 5000, gzip=True))
    async with HttpClient(replace(LAB, max_body_bytes=4096)) as client:
        caught = await failure(client.get(site.url("/big")))
        assert caught.kind is ErrorKind.TOO_LARGE
        assert (await client.get(site.url("/big"), max_bytes=5000)).body == b"x" * 5000


async def test_d6_declared_length_over_the_cap_is_refused_before_reading(http: HttpClient, site: LocalServer) -> None:
    site.route("/long", Response(200, b"y" * 10_000))
    caught = await failure(http.get(site.url("/long"), max_bytes=1000))
    assert caught.kind is ErrorKind.TOO_LARGE


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw", "gzip-two-members", "gzip-gzip"])
async def test_compressed_bodies_are_decoded(http: HttpClient, site: LocalServer, encoding: str) -> None:
    text = ("Le service client de Veille est nul 😡 " * 5000).encode()
    if encoding == "gzip":
        body, header = gzip.compress(text), "gzip"
    elif encoding == "deflate-zlib":
        body, header = zlib.compress(text), "deflate"
    elif encoding == "deflate-raw":
        raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body, header = raw.compress(text) + raw.flush(), "deflate"
    elif encoding == "gzip-two-members":
        half = len(text) // 2
        body, header = gzip.compress(text[:half]) + gzip.compress(text[half:]), "gzip"
    else:
        body, header = gzip.compress(gzip.compress(text)), "gzip, gzip"
    site.route(f"/enc/{encoding}", Response(200, body, {"Content-Encoding": header}))
    response = await http.get(site.url(f"/enc/{encoding}"))
    assert response.body == text


def test_decoding_is_stepwise_and_survives_any_chunking() -> None:
    from veille.net.http import _DECODE_STEP, _Inflater  # the decoder is the risky part: test it directly

    text = b"Avis clients: " + bytes(range(256)) * 40
    stream = gzip.compress(text[:5000]) + gzip.compress(text[5000:]) + b"\r\n<trailing junk>"
    for cut in range(1, len(stream), 7):
        inflater = _Inflater("gzip")
        out = b"".join([*inflater.feed(stream[:cut]), *inflater.feed(stream[cut:]), *inflater.finish()])
        assert out == text, cut
    bomb = gzip_bomb(8)
    pieces = list(_Inflater("gzip").feed(bomb))
    assert sum(map(len, pieces)) == 8 << 20 and max(map(len, pieces)) <= _DECODE_STEP


async def test_head_reads_no_body_whatever_the_declared_length(http: HttpClient, site: LocalServer) -> None:
    site.route("/head", Response(200, b"h" * 10_000))
    response = await http.request("HEAD", site.url("/head"), max_bytes=100)
    assert response.status == 200 and response.body == b"" and response.headers["content-length"] == "10000"


async def test_corrupt_or_unknown_encodings_are_bad_responses(http: HttpClient, site: LocalServer) -> None:
    site.route("/corrupt", Response(200, b"\x1f\x8b\x08\x00garbage-garbage", {"Content-Encoding": "gzip"}))
    site.route("/zstd", Response(200, b"\x28\xb5\x2f\xfd", {"Content-Encoding": "zstd"}))
    for path in ("/corrupt", "/zstd"):
        assert (await failure(http.get(site.url(path)))).kind is ErrorKind.BAD_RESPONSE


# --- D7 total deadline ----------------------------------------------------------------------------


async def test_d7_drip_server_is_cut_at_the_total_deadline(http: HttpClient) -> None:
    with LocalServer() as server:
        server.route("/drip", Response(200, b"x" * 400, drip=0.05))  # 20 s of body, a byte every 50 ms
        started = time.monotonic()
        caught = await failure(http.get(server.url("/drip"), timeout=1.0))
        took = time.monotonic() - started
        assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.TIMEOUT
        assert took < 10  # behaviour, not speed: the read timeout alone would have let all 20 s run
        print(f"\nD7: drip aborted after {took:.2f} s with a 1 s deadline")
        server.route("/after", Response(200, b"fine"))
        assert (await http.get(server.url("/after"))).body == b"fine"  # the pool is not stuck


async def test_d7_default_deadline_comes_from_config(site: LocalServer) -> None:
    site.route("/slowdrip", Response(200, b"z" * 100, drip=0.05))
    async with HttpClient(replace(LAB, timeout=0.5)) as client:
        assert (await failure(client.get(site.url("/slowdrip")))).kind is ErrorKind.TIMEOUT


# --- D8 redirects ---------------------------------------------------------------------------------


async def test_d8_redirect_loop(http: HttpClient, site: LocalServer) -> None:
    site.route("/loop/a", Response(302, "", {"Location": "/loop/b"}))
    site.route("/loop/b", Response(302, "", {"Location": "/loop/a"}))
    caught = await failure(http.get(site.url("/loop/a")))
    assert caught.kind is ErrorKind.TOO_MANY_REDIRECTS


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
async def test_d8_at_most_max_redirects_hops(http: HttpClient, site: LocalServer, hops: int, ok: bool) -> None:
    for index in range(hops):
        status = 301 if index % 2 else 308
        site.route(f"/chain{hops}/{index}", Response(status, "", {"Location": f"/chain{hops}/{index + 1}"}))
    site.route(f"/chain{hops}/{hops}", Response(200, "end"))
    if ok:
        response = await http.get(site.url(f"/chain{hops}/0"))
        assert response.body == b"end" and response.url == site.url(f"/chain{hops}/{hops}")
        assert [status for status, _ in response.history] == [308, 301, 308, 301, 308]
    else:
        assert (await failure(http.get(site.url(f"/chain{hops}/0")))).kind is ErrorKind.TOO_MANY_REDIRECTS


@pytest.mark.parametrize(
    ("chain", "permanent"),
    [
        ([301], "/perm/1"),
        ([308, 301], "/perm/2"),
        ([301, 302], "/perm/1"),  # moved for good to /perm/1, which redirects temporarily
        ([302, 301], None),  # a temporary first hop: nothing permanent about the source's URL
        ([], None),
    ],
)
async def test_permanent_url_is_where_the_leading_permanent_hops_end(
    http: HttpClient, site: LocalServer, chain: list[int], permanent: str | None
) -> None:
    prefix = "/perm" + "".join(f"-{s}" for s in chain)
    for index, status in enumerate(chain):
        site.route(f"{prefix}/{index}", Response(status, "", {"Location": f"{prefix}/{index + 1}"}))
    site.route(f"{prefix}/{len(chain)}", Response(200, "end"))
    response = await http.get(site.url(f"{prefix}/0"))
    expected = site.url(permanent.replace("/perm", prefix)) if permanent else None
    assert response.body == b"end" and response.permanent_url == expected


async def test_redirect_methods_follow_browser_rules(http: HttpClient, site: LocalServer) -> None:
    site.route("/r303", Response(303, "", {"Location": "/landing"}))
    site.route("/r307", Response(307, "", {"Location": "/landing"}))
    site.route("/landing", lambda r: Response.json({"method": r.method, "body": r.body.decode()}))
    assert (await http.request("POST", site.url("/r303"), json={"a": 1})).json() == {"method": "GET", "body": ""}
    kept = await http.request("POST", site.url("/r307"), json={"a": 1})
    assert kept.json() == {"method": "POST", "body": '{"a":1}'}
    assert site.requests_to("/landing")[-1].headers.get("Content-Type") == "application/json"


async def test_cross_origin_redirect_drops_credentials(http: HttpClient, site: LocalServer) -> None:
    with LocalServer() as other:
        other.route("/elsewhere", Response(200, "moved"))
        site.route("/leave", Response(302, "", {"Location": other.url("/elsewhere")}))
        await http.get(
            site.url("/leave"),
            headers={"Authorization": "Bearer SECRET", "X-Api-Key": "K", "Accept": "application/json"},
        )
        sent = lowered(other.requests_to("/elsewhere")[-1])
    assert "authorization" not in sent and "x-api-key" not in sent and sent["accept"] == "application/json"


async def test_credentials_dropped_across_origins_stay_dropped(http: HttpClient, site: LocalServer) -> None:
    """site -> other -> other: the last hop is same-origin with the one before, but the credentials were site's."""
    with LocalServer() as other:
        other.route("/hop", Response(302, "", {"Location": "/hop2"}))
        other.route("/hop2", Response(200, "landed"))
        site.route("/away", Response(302, "", {"Location": other.url("/hop")}))
        response = await http.get(site.url("/away"), headers={"Authorization": "Bearer SECRET"})
        assert response.body == b"landed"
        assert [r.path for r in other.requests] == ["/hop", "/hop2"]
        assert all("authorization" not in lowered(r) for r in other.requests)


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.org/x"])
async def test_redirect_to_other_schemes_is_refused(http: HttpClient, site: LocalServer, location: str) -> None:
    site.route("/scheme", Response(302, "", {"Location": location}))
    assert (await failure(http.get(site.url("/scheme")))).kind is ErrorKind.FORBIDDEN_ADDRESS


async def test_accepted_redirect_is_returned_unfollowed(http: HttpClient, site: LocalServer) -> None:
    site.route("/moved", Response(301, "", {"Location": "/new-home"}))
    response = await http.get(site.url("/moved"), accept_statuses=frozenset({301}))
    assert response.status == 301 and response.headers["location"] == "/new-home"


# --- D10 TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("expired", [False, True])
async def test_d10_untrusted_or_expired_certificate_is_tls(http: HttpClient, tmp_path: Path, expired: bool) -> None:
    certificate = make_certificate(tmp_path, ["127.0.0.1", "localhost"], expired=expired)
    with RawServer(tls_handler(certificate, b"never", [])) as server:
        caught = await failure(http.get(server.url("/", scheme="https")))
    assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.TLS
    assert "certificate" in caught.message


async def test_d10_plain_http_on_a_tls_port_is_tls(http: HttpClient) -> None:
    def plain(sock: socket.socket) -> None:
        sock.recv(65536)  # a ClientHello, answered in plain HTTP
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with RawServer(plain) as server:
        caught = await failure(http.get(server.url("/", scheme="https")))
    assert caught.kind is ErrorKind.TLS


# --- D11 network errors ----------------------------------------------------------------------------


async def test_d11_dns_failure_is_retryable_network() -> None:
    async with HttpClient(GUARDED, resolver=ScriptedResolver({})) as client:
        caught = await failure(client.get("https://no-such-host.example/feed?token=SECRET"))
    assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.NETWORK
    assert "DNS" in caught.message and "SECRET" not in str(caught)


async def test_d11_connection_refused_is_retryable_network(http: HttpClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    caught = await failure(http.get(f"http://127.0.0.1:{port}/"))
    assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.NETWORK
    assert "ECONNREFUSED" in caught.message


async def test_d11_reset_mid_body_is_retryable_network(http: HttpClient) -> None:
    with RawServer(reset_mid_body) as server:
        caught = await failure(http.get(server.url("/reset")))
    assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.NETWORK


async def test_d11_truncated_body_is_retryable_network(http: HttpClient, site: LocalServer) -> None:
    site.route("/truncated", Response(200, b"a" * 1000, truncate_at=10))
    caught = await failure(http.get(site.url("/truncated")))
    assert isinstance(caught, RetryableFetchError) and caught.kind is ErrorKind.NETWORK


# --- D16 per-host limit ----------------------------------------------------------------------------


async def test_d16_fifty_requests_to_one_host_keep_within_the_limit(site: LocalServer) -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(_request: Request) -> Response:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return Response(200, "ok")

    site.route("/d16", slow)
    async with HttpClient(replace(LAB, per_host_limit=3)) as client:
        results = await asyncio.gather(*(client.get(site.url("/d16")) for _ in range(50)))
    assert all(r.status == 200 for r in results)
    assert len(site.requests_to("/d16")) == 50
    assert 1 < peak[0] <= 3, peak[0]
    print(f"\nD16: peak concurrent requests at the server {peak[0]} (limit 3)")


async def test_d16_connections_opened_to_one_host_stay_within_the_limit() -> None:
    lock, open_now, peak = threading.Lock(), [0], [0]

    def keep_alive(sock: socket.socket) -> None:
        with lock:
            open_now[0] += 1
            peak[0] = max(peak[0], open_now[0])
        try:
            while read_head(sock):
                time.sleep(0.02)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        finally:
            with lock:
                open_now[0] -= 1

    with RawServer(keep_alive) as server:
        async with HttpClient(replace(LAB, per_host_limit=4)) as client:
            results = await asyncio.gather(*(client.get(server.url(f"/{i}")) for i in range(50)))
        assert all(r.body == b"ok" for r in results)
        assert peak[0] <= 4 and server.connections <= 4, (peak[0], server.connections)
    print(f"\nD16: {server.connections} connections opened for 50 requests, peak {peak[0]} open (limit 4)")


@pytest.mark.parametrize(
    ("status", "body", "connections"),
    [
        (304, b"", 1),
        (204, b"", 1),
        (404, b"not here", 1),
        (302, b"moved, no Location", 1),
        (500, b"x" * 200_000, 4),  # past the 64 KiB worth reading: dropped with its connection
    ],
)
async def test_bodies_not_returned_are_read_so_the_connection_is_reused(
    status: int, body: bytes, connections: int
) -> None:
    """A poll is mostly 304s: each one used to close its keep-alive connection and dial anew."""

    def keep_alive(sock: socket.socket) -> None:
        while read_head(sock):
            sock.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    with RawServer(keep_alive) as server:
        async with HttpClient(LAB) as client:
            for _ in range(4):
                try:
                    assert (await client.get(server.url("/again"), etag='"v1"')).status == status
                except FetchError as exc:
                    assert f"HTTP {status}" in exc.message
        assert server.connections == connections


# --- F1 to F5: SSRF and network identity ------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "[fc00::1]",
        "localhost",
    ],
)
async def test_f1_client_refuses_forbidden_hosts(site: LocalServer, host: str) -> None:
    dialler = LoopbackDialler(site.port)
    site.route("/f1", Response(200, "secret"))
    async with HttpClient(GUARDED, network_backend=dialler) as client:
        caught = await failure(client.get(f"http://{host}:{site.port}/f1"))
    assert isinstance(caught, PermanentFetchError) and caught.kind is ErrorKind.FORBIDDEN_ADDRESS
    assert dialler.dialled == [] and site.requests_to("/f1") == []


async def test_f1_connect_time_refusal_through_the_client(site: LocalServer) -> None:
    resolver = ScriptedResolver({"intranet.example": ["10.20.30.40"]})
    dialler = LoopbackDialler(site.port)
    async with HttpClient(GUARDED, resolver=resolver, network_backend=dialler) as client:
        caught = await failure(client.get("http://intranet.example/admin"))
    assert caught.kind is ErrorKind.FORBIDDEN_ADDRESS and "10.20.30.40" in caught.message
    assert dialler.dialled == []


async def test_f2_rebinding_through_the_client(site: LocalServer) -> None:
    site.route("/f2", Response(200, "internal"))
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    dialler = LoopbackDialler(site.port)
    assert [str(a) for a in await resolver("rebind.example", 80)] == [PUBLIC]  # what a pre-check would see
    async with HttpClient(GUARDED, resolver=resolver, network_backend=dialler) as client:
        caught = await failure(client.get("http://rebind.example/f2"))
    assert caught.kind is ErrorKind.FORBIDDEN_ADDRESS
    assert dialler.dialled == [] and site.requests_to("/f2") == []


async def test_f3_public_url_redirecting_to_loopback_is_refused(site: LocalServer) -> None:
    site.route("/f3", Response(302, "", {"Location": f"http://127.0.0.1:{site.port}/f3-secret"}))
    site.route("/f3-name", Response(302, "", {"Location": "http://internal.example/f3-secret"}))
    site.route("/f3-secret", Response(200, "root:x:0:0"))
    resolver = ScriptedResolver({"public.example": [PUBLIC], "internal.example": ["192.168.0.2"]})
    dialler = LoopbackDialler(site.port)
    async with HttpClient(GUARDED, resolver=resolver, network_backend=dialler) as client:
        for path in ("/f3", "/f3-name"):
            caught = await failure(client.get(f"http://public.example{path}"))
            assert caught.kind is ErrorKind.FORBIDDEN_ADDRESS
    assert set(dialler.dialled) == {PUBLIC}
    assert site.requests_to("/f3-secret") == []


async def test_public_hosts_are_fetched_in_guarded_mode(site: LocalServer) -> None:
    site.route("/public", Response(200, "hello"))
    resolver = ScriptedResolver({"public.example": [PUBLIC]})
    dialler = LoopbackDialler(site.port)
    async with HttpClient(GUARDED, resolver=resolver, network_backend=dialler) as client:
        assert (await client.get("http://public.example/public")).body == b"hello"
    assert dialler.dialled == [PUBLIC]


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/feed", "gopher://example.org/", "data:text/plain,hi"]
)
async def test_f4_other_schemes_are_refused(http: HttpClient, url: str) -> None:
    caught = await failure(http.get(url))
    assert caught.kind is ErrorKind.FORBIDDEN_ADDRESS


async def test_f5_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch, site: LocalServer) -> None:
    with LocalServer() as proxy:
        proxy.route("*", Response(200, "via proxy"))
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        site.route("/f5", Response(200, "direct"))
        async with HttpClient(LAB) as client:
            assert (await client.get(site.url("/f5"))).body == b"direct"
        assert proxy.requests == []


async def test_f5_a_configured_proxy_is_used(site: LocalServer) -> None:
    with LocalServer() as proxy:
        proxy.route("*", Response(200, "via proxy"))
        site.route("/f5b", Response(200, "direct"))
        # Guarded mode: the operator's proxy is trusted even on loopback; the target is vetted statically.
        async with HttpClient(replace(GUARDED, proxy=proxy.url(""))) as client:
            assert (await client.get(f"http://{PUBLIC}/f5b")).body == b"via proxy"
            assert (await failure(client.get("http://10.0.0.1/"))).kind is ErrorKind.FORBIDDEN_ADDRESS
        assert [r.path for r in proxy.requests] == ["/f5b"]
        assert site.requests_to("/f5b") == []


# --- helpers others use -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.org/v1/search?key=SECRET&q=x#frag", "https://api.example.org/v1/search"),
        ("https://user:pass@example.org:8443/feed", "https://example.org:8443/feed"),
        (
            "https://api.telegram.org/bot123456:AAE-secret_token/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
        ("http://[::1]:8080/x?y", "http://[::1]:8080/x"),
        ("http://[::1", "<invalid URL>"),
        (
            "https://hooks.example.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX1",
            "https://hooks.example.com/services/T00000000/B00000000/***",
        ),
        (
            "https://example.org/feeds/2024/posts-0123456789abcdef.xml",
            "https://example.org/feeds/2024/posts-0123456789abcdef.xml",
        ),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_quiet_http_loggers() -> None:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    quiet_http_loggers()
    assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in ("httpx", "httpcore"))


async def test_elapsed_and_received_at_use_the_injected_clock(site: LocalServer) -> None:
    clock = FakeClock()
    site.route(
        "/clock", Response(429, "", {"Retry-After": format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)})
    )
    async with HttpClient(LAB, clock=clock) as client:
        response = await client.get(site.url("/clock"), accept_statuses=frozenset({429}))
    assert response.elapsed == 0.0 and response.received_at == clock.now()
    assert response.retry_after() == 90.0


def test_public_surface_is_honest() -> None:
    import veille.net.guard
    import veille.net.http

    for module in (veille.net.http, veille.net.guard):
        assert sorted(module.__all__) == module.__all__
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"HttpClient", "HttpResponse", "redact_url", "quiet_http_loggers"} <= set(veille.net.http.__all__)
    assert {"forbidden_reason", "check_url_static"} <= set(veille.net.guard.__all__)


async def test_f5_https_through_a_connect_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TLS upgrade of a proxied stream (veille.net.backend's start_tls over a CONNECT tunnel)."""
    certificate = make_certificate(tmp_path, ["feeds.example"])
    monkeypatch.setattr("veille.net.http.certifi.where", lambda: str(certificate.ca_file))  # trust the test CA
    names: list[str | None] = []
    targets: list[str] = []
    with RawServer(tls_handler(certificate, b"tunnelled", names)) as site, RawServer(connect_proxy(targets)) as proxy:
        config = replace(GUARDED, proxy=proxy.url(""))
        async with HttpClient(config) as client:
            response = await client.get(f"https://feeds.example:{site.port}/flux")
        assert response.body == b"tunnelled"
        assert targets == [f"feeds.example:{site.port}"]  # the proxy resolved the name, not us
        assert names == ["feeds.example"]  # SNI and certificate checked for the site, through the tunnel
        with pytest.raises(RetryableFetchError) as caught:  # a certificate for another name is refused
            async with HttpClient(config) as client:
                await client.get(f"https://other.example:{site.port}/flux")
        assert caught.value.kind is ErrorKind.TLS


def test_httpx_is_imported_without_its_command_line_client() -> None:
    """rich and pygments (httpx's CLI) are not loaded by the HTTP layer; httpx.main still loads the real client."""
    code = (
        "import sys, veille.net.http, httpx; "
        "print(sorted(m for m in ('rich', 'pygments', 'httpx._main') if m in sys.modules)); "
        "import httpx._main; print(httpx._main.main.name)"
    )
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.split() == ["[]", "main"]
