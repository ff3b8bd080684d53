"""The HTTP layer's limits, as a plain value: the config builds it, the client reads it."""

from __future__ import annotations

from dataclasses import dataclass

from veille.core.version import __version__


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The shared HTTP layer's limits (see `veille.net.http`)."""

    allow_private_addresses: bool = False
    timeout: float = 30.0  # total deadline per fetch, seconds (not only a read timeout)
    connect_timeout: float = 10.0
    max_body_bytes: int = 15 * 1024 * 1024  # counted after decompression
    max_redirects: int = 5
    per_host_limit: int = 4
    max_retry_after: float = 86_400.0  # absurd Retry-After values are capped to this
    user_agent: str = f"veille/{__version__} (+https://github.com/veille-project/veille)"
    proxy: str | None = None
