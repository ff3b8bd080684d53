"""Address policy (F1, F2, F4) and the connect-time guard, with real sockets and real TLS."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.http_peers import (
    LoopbackDialler,
    RawServer,
    ScriptedResolver,
    make_certificate,
    tls_handler,
)
from tests.support.server import LocalServer, Response
from veille.core.errors import PermanentFetchError
from veille.core.models import ErrorKind
from veille.net.guard import GuardedBackend, check_url_static, forbidden_reason, parse_host_address

PUBLIC = "93.184.215.14"

FORBIDDEN = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.10.10": "link-local",
    "100.64.0.1": "CGNAT",
    "100.127.255.254": "CGNAT",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this-network",
    "::": "unspecified",
    "::ffff:127.0.0.1": "loopback, embedded in IPv6",
    "::ffff:10.0.0.1": "private, embedded in IPv6",
    "::ffff:169.254.169.254": "cloud metadata",
    "64:ff9b::7f00:1": "loopback, embedded",
    "2002:7f00:1::": "loopback, embedded",
    "fc00::1": "unique-local",
    "fd12:3456::1": "unique-local",
    "fe80::1": "link-local",
    "fec0::1": "site-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::7f00:1": "reserved",
    "192.0.2.1": "not publicly routable",
    "198.18.0.1": "not publicly routable",
    "2001:db8::1": "not publicly routable",
}
PUBLIC_ADDRESSES = [
    PUBLIC,
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "172.32.0.1",
    "100.128.0.1",
    "11.0.0.1",
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN.items())
def test_forbidden_addresses_have_a_reason(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "127.1",
    "017700000001",
    "0x7f.0.0.0x1",
    "127.0.0.1.",
    "0177.0.1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "\uff11\uff12\uff17.0.0.1",
    "127\u30020.0.1",
    "%31%32%37.0.0.1",
    "0X7F.0.0.1",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_decoded(host: str) -> None:
    address = parse_host_address(host)
    assert address is not None
    assert forbidden_reason(address) is not None
    mapped = getattr(address, "ipv4_mapped", None)
    assert str(mapped or address) == "127.0.0.1"


@pytest.mark.parametrize("host", ["example.org", "feeds.example.org.", "0x.example", "1e3.example", "xn--caf-dma.fr"])
def test_domain_names_are_not_addresses(host: str) -> None:
    assert parse_host_address(host) is None


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "08.0.0.1", "example.0x1", "1.2.3.4294967296", "[::g]"])
def test_numeric_looking_garbage_is_invalid(host: str) -> None:
    with pytest.raises(ValueError):
        parse_host_address(host)


def _spell(value: int, parts: int, radices: list[int]) -> str:
    """Render a 32-bit address as inet_aton accepts it: 1 to 4 parts, each decimal, octal or hex."""
    sizes = [1] * (parts - 1) + [4 - (parts - 1)]
    raw = value.to_bytes(4, "big")
    numbers, offset = [], 0
    for size in sizes:
        numbers.append(int.from_bytes(raw[offset : offset + size], "big"))
        offset += size
    rendered = []
    for number, radix in zip(numbers, radices, strict=False):
        rendered.append({10: str(number), 8: "0" + format(number, "o"), 16: hex(number)}[radix])
    return ".".join(rendered)


@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.lists(st.sampled_from([8, 10, 16]), min_size=4, max_size=4))
def test_decoding_agrees_with_libc_inet_aton(value: int, parts: int, radices: list[int]) -> None:
    spelled = _spell(value, parts, radices)
    assert socket.inet_aton(spelled) == ipaddress.IPv4Address(value).packed
    assert parse_host_address(spelled) == ipaddress.IPv4Address(value)


F1_URLS = [
    "http://127.0.0.1/feed",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.10/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0:8080/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fc00::1]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "https://127.1/",
    "http://localhost:8080/",
    "http://admin.localhost/",
    "http://[fe80::1%25eth0]/",
    "http://0/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://127.0.0.1./",
    "http://[::]/",
    "http://0x0a.0.0.1/",
    "http://3232235777/",
]


@pytest.mark.parametrize("url", F1_URLS)
def test_f1_static_check_refuses_forbidden_literals(url: str) -> None:
    problem = check_url_static(url, allow_private=False)
    assert problem is not None and ("address" in problem or "loopback name" in problem)
    assert check_url_static(url, allow_private=True) is None  # the lab opt-in


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/feed",
        "gopher://example.org:70/",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "example.org/feed",
    ],
)
def test_f4_schemes_other_than_http_are_refused_even_in_lab_mode(url: str) -> None:
    for allow in (False, True):
        problem = check_url_static(url, allow_private=allow)
        assert problem is not None and "scheme must be http or https" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/feed.xml",
        "http://93.184.215.14/rss",
        "https://[2606:4700::1]/",
        "HTTPS://Example.ORG:8443/a?b=c",
    ],
)
def test_public_urls_pass_the_static_check(url: str) -> None:
    assert check_url_static(url, allow_private=False) is None


@pytest.mark.parametrize("url", ["http://[::1/", "http://example.org:99999/", "http:///feed", "http://1.2.3.4.5/"])
def test_malformed_urls_get_a_message(url: str) -> None:
    assert check_url_static(url, allow_private=False) is not None


# --- connect time -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_server() -> Iterator[LocalServer]:
    with LocalServer() as server:  # each LocalServer costs 0.5 s to stop: share one
        yield server


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fc00::1",
        "localhost",
    ],
)
async def test_f1_connect_time_refuses_with_the_system_resolver(host: str, module_server: LocalServer) -> None:
    dialler = LoopbackDialler(module_server.port)
    guard = GuardedBackend(allow_private=False, inner=dialler)
    with pytest.raises(PermanentFetchError) as caught:
        await guard.connect_tcp(host, module_server.port)
    assert caught.value.kind is ErrorKind.FORBIDDEN_ADDRESS
    assert dialler.dialled == []
    assert module_server.requests == []


@pytest.mark.parametrize("address", list(FORBIDDEN))
async def test_f1_a_name_resolving_to_a_forbidden_address_is_refused(address: str) -> None:
    dialler = LoopbackDialler(1)
    guard = GuardedBackend(allow_private=False, resolver=ScriptedResolver({"evil.example": [address]}), inner=dialler)
    with pytest.raises(PermanentFetchError) as caught:
        await guard.connect_tcp("evil.example", 80)
    assert caught.value.kind is ErrorKind.FORBIDDEN_ADDRESS
    assert "evil.example resolves to" in caught.value.message
    assert dialler.dialled == []


async def test_every_resolved_address_is_checked_not_just_the_first() -> None:
    dialler = LoopbackDialler(1)
    resolver = ScriptedResolver({"mixed.example": [PUBLIC, "10.0.0.7"]})
    guard = GuardedBackend(allow_private=False, resolver=resolver, inner=dialler)
    with pytest.raises(PermanentFetchError):
        await guard.connect_tcp("mixed.example", 80)
    assert dialler.dialled == []


async def test_f2_dns_rebinding_public_at_check_time_private_at_connect_time() -> None:
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    with LocalServer() as server:
        dialler = LoopbackDialler(server.port)
        guard = GuardedBackend(allow_private=False, resolver=resolver, inner=dialler)
        assert [str(a) for a in await guard.vet("rebind.example", 80)] == [PUBLIC]  # check time
        with pytest.raises(PermanentFetchError) as caught:
            await guard.connect_tcp("rebind.example", 80)  # connect time: the answer changed
        assert caught.value.kind is ErrorKind.FORBIDDEN_ADDRESS
        assert dialler.dialled == []
        assert server.requests == []


async def test_f2_the_address_dialled_is_the_address_vetted() -> None:
    resolver = ScriptedResolver({"feeds.example": [[PUBLIC], ["127.0.0.1"]]})
    with LocalServer() as server:
        server.route("/", Response(200, b"ok"))
        dialler = LoopbackDialler(server.port)
        guard = GuardedBackend(allow_private=False, resolver=resolver, inner=dialler)
        async with httpcore.AsyncConnectionPool(network_backend=guard) as pool:
            response = await pool.request("GET", "http://feeds.example/")
        assert response.status == 200
        assert dialler.dialled == [PUBLIC]
        assert resolver.lookups == ["feeds.example"]  # one lookup per connection, no second chance


async def test_unknown_name_is_a_connect_error_not_a_refusal() -> None:
    guard = GuardedBackend(allow_private=False, resolver=ScriptedResolver({}), inner=LoopbackDialler(1))
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_tcp("nowhere.example", 80)


async def test_lab_opt_in_allows_loopback() -> None:
    with LocalServer() as server:
        server.route("/", Response(200, b"lab"))
        guard = GuardedBackend(allow_private=True)
        async with httpcore.AsyncConnectionPool(network_backend=guard) as pool:
            response = await pool.request("GET", f"http://2130706433:{server.port}/")
        assert response.content == b"lab"


async def test_next_vetted_address_is_tried_when_the_first_refuses() -> None:
    with LocalServer() as server:
        server.route("/", Response(200, b"second"))
        resolver = ScriptedResolver({"two.example": ["127.0.0.2", "127.0.0.1"]})
        guard = GuardedBackend(allow_private=True, resolver=resolver)
        async with httpcore.AsyncConnectionPool(network_backend=guard) as pool:
            # 127.0.0.2 has no listener on this port -> refused -> 127.0.0.1 answers
            response = await pool.request("GET", f"http://two.example:{server.port}/")
        assert response.content == b"second"


async def test_unix_sockets_are_refused() -> None:
    with pytest.raises(httpcore.ConnectError):
        await GuardedBackend(allow_private=True).connect_unix_socket("/run/docker.sock")


async def test_tls_checks_the_host_name_while_dialling_the_vetted_address(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, ["feeds.example"])
    names: list[str | None] = []
    resolver = ScriptedResolver({"feeds.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    with RawServer(tls_handler(certificate, b"secure", names)) as server:
        context = ssl.create_default_context(cafile=str(certificate.ca_file))
        guard = GuardedBackend(allow_private=True, resolver=resolver)
        async with httpcore.AsyncConnectionPool(network_backend=guard, ssl_context=context) as pool:
            response = await pool.request("GET", f"https://feeds.example:{server.port}/")
            assert response.content == b"secure"
            assert names == ["feeds.example"]  # SNI carried the name, not 127.0.0.1
            with pytest.raises(httpcore.ConnectError) as caught:
                await pool.request("GET", f"https://other.example:{server.port}/")
        cause = caught.value.__cause__ or caught.value.__context__
        assert isinstance(cause, ssl.SSLCertVerificationError)
