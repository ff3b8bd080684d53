"""Which addresses veille may talk to, checked when the config is read AND on the address dialled.

A feed URL is attacker-influenced (a client's web agency, a redirect, a DNS record), so a daemon
sitting next to a cloud metadata endpoint or an admin panel must not become a proxy to them (SSRF).

Two layers:

* `check_url_static` runs at config-check time: scheme must be http/https, and a literal host in
  any spelling a browser or libc accepts (`2130706433`, `0177.0.0.1`, `0x7f.1`, `[::ffff:127.0.0.1]`)
  is decoded and refused when it names a forbidden address.
* `GuardedBackend` wraps httpcore's network backend: it resolves the name itself, refuses the
  connection if ANY resolved address is forbidden, and dials the vetted IP. The check therefore runs
  on the address actually dialled, so DNS rebinding (public at check time, private at connect time)
  cannot slip through. TLS still verifies the host NAME: httpcore passes `server_hostname` to
  `start_tls` separately from the host given to `connect_tcp`.

`allow_private=True` (config `http.allow_private_addresses`) turns the address checks off for lab
use; schemes are always checked.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import unquote, urlsplit

import httpcore

from veille.core.errors import PermanentFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind
from veille.net.backend import AsyncioBackend

__all__ = [
    "ALLOWED_SCHEMES",
    "GuardedBackend",
    "IPAddress",
    "ResolutionError",
    "Resolver",
    "check_url_static",
    "forbidden_reason",
    "host_problem",
    "parse_host_address",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""`async (host, port) -> addresses`. Raise `OSError` (e.g. `socket.gaierror`) when the name is unknown."""

ALLOWED_SCHEMES = ("http", "https")

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_NAT64 = _V6("64:ff9b::/96")  # well-known NAT64 prefix: judge the IPv4 address it carries
_V4_RULES: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), N_("unspecified")),
    (_V4("127.0.0.0/8"), N_("loopback")),
    (_V4("169.254.169.254/32"), N_("link-local (cloud metadata)")),
    (_V4("169.254.0.0/16"), N_("link-local")),
    (_V4("10.0.0.0/8"), N_("private")),
    (_V4("172.16.0.0/12"), N_("private")),
    (_V4("192.168.0.0/16"), N_("private")),
    (_V4("100.64.0.0/10"), N_("shared (CGNAT)")),
    (_V4("0.0.0.0/8"), N_("this-network")),
    (_V4("224.0.0.0/4"), N_("multicast")),
    (_V4("240.0.0.0/4"), N_("reserved")),
)
_V6_RULES: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), N_("unspecified")),
    (_V6("::1/128"), N_("loopback")),
    (_V6("fe80::/10"), N_("link-local")),
    (_V6("fec0::/10"), N_("site-local")),
    (_V6("fc00::/7"), N_("unique-local (private)")),
    (_V6("ff00::/8"), N_("multicast")),
)
_NUMBER_PART = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})  # IDNA maps these to "."


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why veille must not connect to `ip` ("loopback", "private"...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return N_("{reason}, embedded in IPv6").format(reason=reason) if reason else None
        rules: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = _V6_RULES
    else:
        rules = _V4_RULES
    for network, reason in rules:
        if ip in network:
            return reason
    if ip.is_reserved:
        return N_("reserved")
    if not ip.is_global:
        return N_("not publicly routable")
    return None


def parse_host_address(host: str) -> IPAddress | None:
    """Decode a URL host the way browsers (WHATWG) and libc's inet_aton do.

    Returns the address for a literal host in any spelling (decimal integer, octal, hex, 1 to 4
    parts, bracketed IPv6 with or without zone), None for a domain name. Raises ValueError for a
    host that looks numeric but is not a valid address (browsers refuse those too).
    """
    text = unicodedata.normalize("NFKC", unquote(host)).translate(_DOTS).strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        return ipaddress.IPv6Address(text)  # raises ValueError when malformed
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "127.0.0.1." is 127.0.0.1
    if not _NUMBER_PART.match(parts[-1]):
        return None  # does not end in a number: a domain name
    if len(parts) > 4 or not all(_NUMBER_PART.match(part) for part in parts):
        raise ValueError(f"invalid numeric host {host!r}")
    numbers = [_parse_number(part) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"invalid numeric host {host!r}")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_number(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8)  # "08" raises ValueError, as in browsers
    return int(part)


@functools.lru_cache(maxsize=4096)
def host_problem(host: str, *, allow_private: bool) -> str | None:
    """Why a URL host is refused before any DNS lookup, or None. Domain names pass (DNS decides).

    Cached: it is pure, and the HTTP layer asks it again for every hop of every request."""
    if allow_private:
        return None
    try:
        address = parse_host_address(host)
    except ValueError:
        return N_("host {host!r} is not a valid address").format(host=host)
    if address is not None:
        reason = forbidden_reason(address)
        if reason:
            return N_("host {host} is a forbidden address ({reason}: {address})").format(
                host=host, reason=reason, address=address
            )
        return None
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return N_("host {host} is a loopback name").format(host=host)
    return None


def check_url_static(url: str, *, allow_private: bool) -> str | None:
    """Config-time check of a source URL: a short human message, or None when acceptable.

    The caller adds where the URL is and the fix (`http.allow_private_addresses` for lab use).
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return N_("is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return N_("scheme must be http or https, not {scheme!r}").format(scheme=scheme or "missing")
    if not host:
        return N_("has no host name")
    return host_problem(host, allow_private=allow_private)


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """libc's getaddrinfo, run in the loop's thread pool (it blocks)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


class ResolutionError(httpcore.ConnectError):
    """The host name could not be resolved (a network failure, distinct from a refusal)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that dials only addresses it has just vetted.

    `inner` does the real dialling (tests inject one that records what was dialled);
    `trusted_hosts` are dialled without checks: the configured proxy, chosen by the operator.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        self._allow_private = allow_private
        self._resolver: Resolver = resolver or system_resolver
        self._inner = inner or AsyncioBackend()
        self._trusted = frozenset(h.lower() for h in trusted_hosts)

    async def vet(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` and return its addresses; refuse if ANY of them is forbidden.

        Raises `PermanentFetchError(FORBIDDEN_ADDRESS)` or `ResolutionError` (unknown name).
        """
        try:
            literal = parse_host_address(host)
        except ValueError:
            raise PermanentFetchError(
                ErrorKind.FORBIDDEN_ADDRESS, N_("host {host!r} is not a valid address").format(host=host)
            ) from None
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                addresses = list(dict.fromkeys(await self._resolver(host, port)))
            except (OSError, UnicodeError) as exc:
                raise ResolutionError(N_("cannot resolve {host}").format(host=host)) from exc
            if not addresses:
                raise ResolutionError(N_("cannot resolve {host}: no address").format(host=host))
        if self._allow_private or host.lower() in self._trusted:
            return addresses
        for address in addresses:
            reason = forbidden_reason(address)
            if reason:
                where = host if literal is not None else f"{host} resolves to {address}, which"
                raise PermanentFetchError(
                    ErrorKind.FORBIDDEN_ADDRESS,
                    N_("{where} is a forbidden address ({reason}): refused").format(where=where, reason=reason),
                )
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: Exception | None = None
        for address in await self.vet(host, port):
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the next vetted address
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by veille")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
