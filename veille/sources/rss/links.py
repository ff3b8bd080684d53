"""Entry links: only http(s) survives, and Google's redirectors are unwrapped to the article.

Google Alerts feeds link every entry through `https://www.google.com/url?...&url=REAL&...`, and
Google News RSS through `https://news.google.com/rss/articles/<id>`. Keyword hits are more useful
(and deduplicate across sources) with the publisher's URL. A Google News id is base64url of a
small protobuf message; ids of the older format ("CBMi...") carry the article URL in a
length-delimited field, newer ones ("AU_yqL..." inside) only an opaque token that would need a
request to Google to resolve: those are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qs, urlsplit

MAX_URL = 4096  # longer "links" are junk or abuse; the hit keeps no URL rather than a megabyte

_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")
_GOOGLE_REDIRECT_PATHS = {"/url", "/link"}
_GOOGLE_HOST = re.compile(r"(?:www\.)?google\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})")
_ARTICLE_PATH_PARTS = {"articles", "read"}


# The usual link, http(s)://host[:port] then a path, query, fragment or nothing: it passes every check of
# safe_url, so one regex decides it without urlsplit (a fifth of a parse worker's time on short feeds,
# where every entry has a link and a guid). Anything else (user info, IPv6, odd hosts) takes the full path.
_PLAIN_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]|\Z)", re.IGNORECASE)


def safe_url(value: object) -> str | None:
    """The URL if it is http(s) with a host and no whitespace or control characters, else None (B9)."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL or _BAD_URL_CHAR.search(url):
        return None
    if _PLAIN_HTTP_URL.match(url):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def _is_google_host(host: str) -> bool:
    """google.com, www.google.fr, www.google.co.uk, google.com.br; not evilgoogle.com or google.com.evil.org."""
    return _GOOGLE_HOST.fullmatch(host) is not None


def unwrap_google(url: str) -> str:
    """The article behind a Google Alerts or Google News link; any other URL is returned unchanged."""
    if "google" not in url.lower():  # every host unwrapped here names Google: most links skip urlsplit
        return url
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return url
    if _is_google_host(host) and parts.path in _GOOGLE_REDIRECT_PATHS:
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            for candidate in query.get(key, []):
                target = safe_url(candidate)
                if target:
                    return target
        return url
    if host == "news.google.com":
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[-2] in _ARTICLE_PATH_PARTS:
            return decode_google_news_id(segments[-1]) or url
    return url


def decode_google_news_id(article_id: str) -> str | None:
    """The article URL inside an old-format Google News id, or None when it carries none."""
    if not article_id or len(article_id) > MAX_URL * 2:
        return None
    try:
        payload = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    for field in _length_delimited_fields(payload):
        try:
            text = field.decode("utf-8")
        except UnicodeDecodeError:
            continue
        target = safe_url(text)
        if target:
            return target
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a protobuf varint at `pos`; raises IndexError/ValueError on truncated or absurd input."""
    value = 0
    for shift in range(0, 64, 7):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint too long")


def _length_delimited_fields(data: bytes) -> list[bytes]:
    """Top-level length-delimited values of a protobuf message; stops at the first malformed field."""
    fields: list[bytes] = []
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            wire = key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = _varint(data, pos)
                if pos + length > len(data):
                    break
                fields.append(data[pos : pos + length])
                pos += length
            else:
                break
    except (IndexError, ValueError):
        pass
    return fields


def entry_url(raw: object) -> str | None:
    """What an entry's link becomes on a hit: unwrapped from Google, http(s) only."""
    url = safe_url(raw)
    if url is None:
        return None
    return safe_url(unwrap_google(url))
