"""Helpers every API driver shares: JSON field extraction, rate-limit headers, cursors, secrets.

Drivers parse foreign JSON that may lack any field or hold the wrong type; these helpers turn
such answers into `None` (or a typed `BadResponse`) instead of a KeyError deep in a driver, and
read the three rate-limit header families (Mastodon/Reddit `X-RateLimit-*`, X `x-rate-limit-*`,
Bluesky `RateLimit-*`) into one `RateWindow` so that the back-off decision is written once.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from veille.core.errors import AuthFailed, FetchError, RateLimited, RetryableFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind, Item

if TYPE_CHECKING:
    from veille.sources.base import PollContext

MAX_TEXT = 64 * 1024  # RELIABILITY E11: texts are bounded before scoring and storage
MAX_RETRY_AFTER = 86_400.0  # RELIABILITY D1: absurd waits are capped
NEARLY_EXHAUSTED = 0.1  # below this share of the window left, the next poll waits for the reset


class BadResponse(RetryableFetchError):
    """The API answered 200 with malformed JSON or without the fields the driver needs.

    Retryable: a proxy error page or a half-deployed API usually fixes itself.
    """

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.BAD_RESPONSE, message)


# --- JSON -------------------------------------------------------------------------------------


def parse_json(body: bytes, what: str) -> Any:
    """Decode a JSON body; a malformed one raises BadResponse naming `what` (never the body)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadResponse(f"{what}: malformed JSON ({type(exc).__name__})") from None


def dig(obj: Any, *path: str | int) -> Any:
    """`obj[p0][p1]...` or None when any step is missing or of the wrong shape."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
        elif not isinstance(obj, Mapping):
            return None
        obj = obj[step] if isinstance(step, int) else obj.get(step)
        if obj is None:
            return None
    return obj


def text_of(obj: Any, *path: str | int) -> str | None:
    value = dig(obj, *path)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def int_of(obj: Any, *path: str | int) -> int | None:
    """An integer count; accepts numeric strings (Reddit sends floats, some APIs strings)."""
    value = dig(obj, *path)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def list_of(obj: Any, *path: str | int) -> list[Any]:
    value = dig(obj, *path)
    return value if isinstance(value, list) else []


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (with Z or offset) or epoch seconds -> aware UTC; None when unparsable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- text --------------------------------------------------------------------------------------

_BREAKS = re.compile(r"<\s*(?:br\s*/?|/p|/li|/h[1-6]|/blockquote)\s*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def bounded(text: str | None, limit: int = MAX_TEXT) -> str:
    """Strip control characters and cut at `limit` characters."""
    if not text:
        return ""
    return _CONTROL.sub("", text[:limit])


def html_to_text(fragment: str | None) -> str:
    """Plain text of an HTML fragment (Mastodon content, HN comments): tags out, entities decoded.

    Linear-time regexes only (no parser recursion, RELIABILITY E7); paragraph ends become newlines.
    """
    if not fragment:
        return ""
    text = _BREAKS.sub("\n", fragment[: MAX_TEXT * 4])
    text = html.unescape(_TAGS.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return bounded("\n".join(line for line in lines if line))


def web_url(value: Any) -> str | None:
    """Only http(s) URLs with a host are kept (RELIABILITY B9)."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value.strip()


# --- cursors -----------------------------------------------------------------------------------


def load_cursor(text: str | None) -> dict[str, Any]:
    """The driver's JSON cursor; a corrupt or foreign one restarts from scratch rather than crash."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_cursor(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- secrets -----------------------------------------------------------------------------------


def require_secret(ctx: PollContext, name: str) -> str:
    """Read a secret by environment variable name; missing -> AuthFailed naming the variable."""
    value = ctx.env(name)
    if not value:
        raise AuthFailed(N_("environment variable {name} is not set").format(name=name))
    return value


# --- rate limits -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateWindow:
    """One rate-limit window as the peer announced it. `reset_in` is seconds from now."""

    limit: int | None
    remaining: int | None
    reset_in: float | None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    @property
    def nearly_exhausted(self) -> bool:
        if self.remaining is None:
            return False
        if self.limit:
            return self.remaining <= max(1, int(self.limit * NEARLY_EXHAUSTED))
        return self.remaining <= 1

    def wait(self) -> float | None:
        """Seconds to wait before the next request when (nearly) exhausted, else None."""
        if not (self.exhausted or self.nearly_exhausted) or self.reset_in is None:
            return None
        return cap_wait(self.reset_in)


def cap_wait(seconds: float) -> float:
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


def _header_number(headers: Mapping[str, str], names: Iterable[str]) -> float | None:
    for name in names:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(raw.split(",")[0].strip())
        except ValueError:
            continue
    return None


def rate_window(headers: Mapping[str, str], now: datetime) -> RateWindow | None:
    """Read any of the rate-limit header families; None when the answer carries none.

    Reset is an ISO date (Mastodon), epoch seconds (X, Bluesky) or seconds from now (Reddit);
    a number larger than ten years of seconds is taken as an epoch.
    """
    limit = _header_number(headers, ("x-ratelimit-limit", "x-rate-limit-limit", "ratelimit-limit"))
    remaining = _header_number(headers, ("x-ratelimit-remaining", "x-rate-limit-remaining", "ratelimit-remaining"))
    used = _header_number(headers, ("x-ratelimit-used",))
    if limit is None and remaining is not None and used is not None:
        limit = remaining + used
    reset_raw = next(
        (
            headers.get(n)
            for n in ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")
            if headers.get(n) is not None
        ),
        None,
    )
    reset_in: float | None = None
    if reset_raw is not None:
        try:
            number = float(reset_raw)
        except ValueError:
            when = parse_time(reset_raw)
            reset_in = (when - now).total_seconds() if when else None
        else:
            reset_in = number - now.timestamp() if number > 315_360_000 else number
    if limit is None and remaining is None:
        return None
    return RateWindow(
        int(limit) if limit is not None else None,
        int(remaining) if remaining is not None else None,
        max(reset_in, 0.0) if reset_in is not None else None,
    )


def rate_limited(what: str, retry_after: float | None, window: RateWindow | None) -> RateLimited:
    """The error for a 429 (or Reddit's 403): Retry-After first, else the window's reset."""
    wait = retry_after
    if wait is None and window is not None and window.reset_in is not None:
        wait = window.reset_in
    return RateLimited(
        N_("{what}: rate limited").format(what=what), retry_after=cap_wait(wait) if wait is not None else None
    )


class RateGate:
    """Remembers, per host, until when the window is exhausted (kept in `ctx.cache`).

    A poll that starts before that time raises RateLimited at once instead of spending a request
    that the peer will refuse (and possibly count against us).
    """

    KEY = "rate_gate"

    def __init__(self, ctx: PollContext) -> None:
        self._ctx = ctx
        until = ctx.cache.get(self.KEY)
        if not isinstance(until, dict):
            until = ctx.cache[self.KEY] = {}
        self._until: dict[str, float] = until

    def check(self, host: str) -> None:
        until = self._until.get(host)
        if until is None:
            return
        left = until - self._ctx.clock.monotonic()
        if left > 0:
            raise RateLimited(N_("{host}: rate-limit window exhausted").format(host=host), retry_after=cap_wait(left))
        del self._until[host]

    def observe(self, host: str, window: RateWindow | None) -> float | None:
        """Record a response's window; return the wait to suggest when it is nearly used up."""
        if window is None:
            return None
        wait = window.wait()
        if window.exhausted and wait is not None:
            self._until[host] = self._ctx.clock.monotonic() + wait
        return wait


def later(a: float | None, b: float | None) -> float | None:
    """The larger of two optional waits."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


# --- paging ------------------------------------------------------------------------------------

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]+)"?')


def link_rel(header: str | None, rel: str) -> str | None:
    """The URL of `rel` in an RFC 8288 Link header (Mastodon paging), else None."""
    for link in _LINK.finditer(header or ""):
        if rel in link.group(2).split():
            return link.group(1)
    return None


def id_key(value: str) -> tuple[int, str]:
    """Order numeric-string ids (Mastodon, X snowflakes) without int overflow worries."""
    return (len(value), value)


def newest_id(ids: Iterable[str | None], start: str | None = None) -> str | None:
    best = start
    for value in ids:
        if value and (best is None or id_key(value) > id_key(best)):
            best = value
    return best


class StreamFailures:
    """Failure isolation between the streams of one source (hashtags, instances, subreddits...).

    A stream that fails leaves its cursor where it was (so nothing is skipped) and the others go
    on; the poll fails only when every stream failed, and otherwise its note says how many did.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.failures: list[FetchError] = []
        self.succeeded = 0

    def record(self, ctx: PollContext, stream: str, error: FetchError) -> None:
        self.failures.append(error)
        ctx.log.warning("source.stream_failed", extra={"stream": stream, "error_kind": error.kind.value})

    def check(self, total: int) -> str | None:
        """Raise the first failure if nothing worked; else return the note (None when all worked)."""
        if self.failures and not self.succeeded:
            raise self.failures[0]
        if not self.failures:
            return None
        kinds = ", ".join(sorted({f.kind.value for f in self.failures}))
        return N_("{failed}/{total} {label} streams failing ({kinds})").format(
            failed=len(self.failures), total=total, label=self.label, kinds=kinds
        )


def in_thread(item: Item, *, by_client: bool, root: str | None, customer: str | None) -> Item | None:
    """A post of a flat reply tree (Mastodon, Bluesky, X) as the reply inbox follows it.

    The conversation is the thread's `root` and the `customer` the client talks with (the author of a
    customer's post; the account the client's reply answers). The client's own reply to a customer is kept
    as `from_client` (it closes that conversation); the client's own posts that answer nobody are no hits
    (None). Without a root (Mastodon gives none) the customer alone names the conversation."""
    if by_client:
        if customer is None:
            return None
        key = f"{root} {customer}" if root else customer
        return replace(item, from_client=True, direct=True, conversation_key=key)
    if not item.direct or customer is None:
        return item
    return replace(item, conversation_key=f"{root} {customer}" if root else customer)
