"""Canonical forms used to link one post reached through two sources of the same client."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from veille.core.matching import collapse_spaces, fold

_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ref_src", "igshid", "si")


def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, no fragment, no tracking parameters, no trailing slash."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)]
    host = parts.hostname.lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, urlencode(sorted(query)), ""))


def text_fingerprint(text: str, fallback: str, *, folded: str | None = None) -> str:
    """Hash of the normalised text; short texts ("merci !") would collide, so they use `fallback`.

    `folded` is `fold(text)` when the caller has it already (the store folds a hit's fields once)."""
    folded = collapse_spaces(fold(text) if folded is None else folded).strip()  # " ".join(split()), faster
    basis = folded if len(folded) >= 40 else f"\x00{fallback}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()
