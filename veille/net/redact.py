"""URLs made safe for logs and messages. Apart from the client so that code which only shows a URL (config
checks, `veille sources`) does not import httpx: the CLI starts faster."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_TELEGRAM_TOKEN = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


def redact_url(url: object) -> str:
    """A URL safe for logs and error messages: no user info, query or fragment, bot tokens masked."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    path = _TELEGRAM_TOKEN.sub("/bot***", parts.path)
    path = "/".join("***" if _looks_like_token(segment) else segment for segment in path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _looks_like_token(segment: str) -> bool:
    """Webhook URLs carry their secret in the path (Slack, Discord): mask long mixed segments."""
    return (
        len(segment) >= 24
        and any(c.isdigit() for c in segment)
        and any(c.isalpha() for c in segment)
        and not segment.endswith((".xml", ".rss", ".atom", ".json", ".html"))
    )
