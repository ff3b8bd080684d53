"""Meta's Graph API, shared by the Facebook Page and Instagram drivers (and the webhook parser).

One place pins the API version and turns Graph answers into veille's errors:

- error codes by type (https://developers.facebook.com/docs/graph-api/guides/error-handling):
  4, 17, 32, 613 and the 80001-80014 business-use-case codes are rate limits; 190 (and 102, 463, 467)
  is an expired or revoked token, shown as credentials refused; 10 and 200-299 are a missing
  permission, shown with the permission's name; 100 with subcode 33 and 803 are an object that does
  not exist (or that this token cannot see); `is_transient` and codes 1, 2 are worth a retry.
- the usage headers (`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage`): percentages of the
  rolling one-hour budget. From USAGE_SLOW_DOWN % the driver stops paging for this poll and the next poll
  waits (at least `estimated_time_to_regain_access`); at 100 % Meta throttles, so nothing is asked again
  before the wait is over (the gate survives between polls in `ctx.cache`).
- cursor paging: `paging.cursors.after` is sent back as `after` on the same URL (never the `next` URL,
  which carries the access token and a host veille did not configure).

The token goes in the Authorization header, never in a URL, so no log line can show it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RateLimited, RetryableFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind, Item
from veille.core.polling import PollOutcome
from veille.sources._common import (
    BadResponse,
    bounded,
    cap_wait,
    dig,
    dump_cursor,
    int_of,
    list_of,
    parse_json,
    parse_time,
    text_of,
)
from veille.sources.base import PollContext

GRAPH_VERSION = "v26.0"  # the one place the Graph API version is pinned (Meta keeps a version about 2 years)
DEFAULT_GRAPH = "https://graph.facebook.com"
USAGE_SLOW_DOWN = 80.0  # percent of any usage budget: stop paging, space the next poll out
SLOW_DOWN_WAIT = 15 * 60.0  # seconds before the next poll when close to the budget
THROTTLED_WAIT = 60 * 60.0  # seconds when throttled without an estimate (Meta's windows are one hour)

RATE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
TOKEN_CODES = frozenset({190, 102, 463, 467})
PERMISSION_CODES = frozenset({10}) | frozenset(range(200, 300))
NOT_FOUND_CODES = frozenset({803})
TRANSIENT_CODES = frozenset({1, 2})
_PERMISSION = re.compile(r"\b((?:pages|instagram|business|read|manage|public)_[a-z_]+)\b")
GATE_KEY = "graph_gate"


class TokenRefused(AuthFailed):
    """The access token expired or was revoked: every request of the source will fail the same way."""


class PermissionMissing(AuthFailed):
    """The token lacks one permission: only the requests that need it fail."""

    def __init__(self, message: str, permission: str) -> None:
        super().__init__(message)
        self.permission = permission


@dataclass(frozen=True, slots=True)
class GraphError:
    """The `error` object of a Graph answer."""

    code: int | None
    subcode: int | None
    message: str
    transient: bool

    @classmethod
    def of(cls, body: bytes) -> GraphError | None:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        error = dig(data, "error")
        if not isinstance(error, Mapping):
            return None
        return cls(
            int_of(error, "code"),
            int_of(error, "error_subcode"),
            (text_of(error, "message") or "")[:300],
            dig(error, "is_transient") is True,
        )


def permission_named(message: str, fallback: str) -> str:
    """The permission a Graph error message names ("requires the 'pages_messaging' permission")."""
    found = _PERMISSION.search(message)
    return found.group(1) if found else fallback


def graph_error(what: str, status: int, body: bytes, permission: str, usage_wait: float | None) -> FetchError:
    """The FetchError for a Graph API error answer (any status but 200)."""
    error = GraphError.of(body)
    if error is None or error.code is None:
        if status == 429:
            return RateLimited(f"{what}: rate limited (HTTP 429)", retry_after=usage_wait or THROTTLED_WAIT)
        if status >= 500:
            return RetryableFetchError(ErrorKind.HTTP_5XX, f"{what}: HTTP {status}")
        if status in (401, 403):
            return TokenRefused(f"{what}: access refused (HTTP {status})")
        if status == 404:
            return PermanentFetchError(ErrorKind.NOT_FOUND, f"{what}: not found (HTTP 404)")
        return PermanentFetchError(ErrorKind.HTTP_4XX, f"{what}: HTTP {status}")
    code = error.code
    detail = f"code {code}" + (f"/{error.subcode}" if error.subcode else "")
    if code in RATE_CODES:
        return RateLimited(f"{what}: Graph API rate limit ({detail})", retry_after=usage_wait or THROTTLED_WAIT)
    if code in TOKEN_CODES:
        return TokenRefused(f"{what}: access token expired or revoked ({detail}); generate a new Page access token")
    if code in PERMISSION_CODES:
        name = permission_named(error.message, permission)
        return PermissionMissing(f"{what}: missing permission {name} ({detail})", name)
    if code in NOT_FOUND_CODES or (code == 100 and error.subcode == 33):
        return PermanentFetchError(
            ErrorKind.NOT_FOUND, f"{what}: does not exist or this token cannot see it ({detail}); check the id"
        )
    if error.transient or code in TRANSIENT_CODES or status >= 500:
        return RetryableFetchError(ErrorKind.HTTP_5XX, f"{what}: temporary Graph API error ({detail})")
    return PermanentFetchError(ErrorKind.HTTP_4XX, f"{what}: Graph API error ({detail}: {error.message[:160]})")


# --- usage headers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """The highest share used of any announced budget, and Meta's estimate of the wait (seconds)."""

    percent: float
    regain_in: float | None

    def wait(self) -> float | None:
        """Seconds the next poll should wait (Meta's estimate when it gives one), or None when there is room."""
        if self.percent < USAGE_SLOW_DOWN:
            return None
        return cap_wait(self.regain_in or (SLOW_DOWN_WAIT if self.percent < 100 else THROTTLED_WAIT))


def _percentages(entry: Any) -> tuple[float, float | None]:
    if not isinstance(entry, Mapping):
        return 0.0, None
    shares = [
        float(v)
        for k in ("call_count", "total_cputime", "total_time", "acc_id_util_pct")
        if isinstance(v := entry.get(k), int | float) and not isinstance(v, bool)
    ]
    minutes = entry.get("estimated_time_to_regain_access")
    regain = float(minutes) * 60 if isinstance(minutes, int | float) and not isinstance(minutes, bool) else None
    return max(shares, default=0.0), regain or None


def usage(headers: Mapping[str, str]) -> Usage | None:
    """Read the three usage headers; None when the answer carries none (or only unreadable ones)."""
    entries: list[Any] = []
    for name in ("x-app-usage", "x-page-usage", "x-ad-account-usage"):
        if (raw := headers.get(name)) is not None:
            try:
                entries.append(json.loads(raw))
            except ValueError:
                continue
    if (raw := headers.get("x-business-use-case-usage")) is not None:
        try:
            business = json.loads(raw)
        except ValueError:
            business = None
        if isinstance(business, Mapping):
            entries.extend(e for values in business.values() if isinstance(values, list) for e in values)
    if not entries:
        return None
    figures = [_percentages(e) for e in entries]
    regains = [r for _, r in figures if r]
    return Usage(max(p for p, _ in figures), max(regains) if regains else None)


# --- the client -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphPage:
    data: list[Any]
    after: str | None  # cursor of the next page; None at the end
    body: Mapping[str, Any]


class Graph:
    """GET requests to one Graph API host with one token, honouring the usage budget across polls."""

    def __init__(self, ctx: PollContext, api_base: str, token: str) -> None:
        self._ctx = ctx
        self._base = f"{api_base.rstrip('/')}/{GRAPH_VERSION}"
        self._token = token
        self._host = urlsplit(api_base).netloc
        gate = ctx.cache.get(GATE_KEY)
        if not isinstance(gate, dict):
            gate = ctx.cache[GATE_KEY] = {}
        self._gate: dict[str, float] = gate
        self.slow_down: float | None = None  # set once a usage header says to stop for this poll

    @property
    def near_budget(self) -> bool:
        return self.slow_down is not None

    def _check_gate(self) -> None:
        until = self._gate.get(self._host)
        if until is None:
            return
        left = until - self._ctx.clock.monotonic()
        if left > 0:
            raise RateLimited("Graph API usage budget nearly spent: waiting", retry_after=cap_wait(left))
        del self._gate[self._host]

    async def get(self, path: str, params: Mapping[str, Any], *, what: str, permission: str) -> Mapping[str, Any]:
        """One GET; `permission` is the one the endpoint needs, named when Meta's message does not."""
        self._check_gate()
        response = await self._ctx.http.get(
            f"{self._base}/{path.lstrip('/')}",
            params=dict(params),
            headers={"Authorization": f"Bearer {self._token}"},
            accept_statuses=frozenset(range(400, 600)),
        )
        announced = usage(response.headers)
        wait = announced.wait() if announced else None
        if wait is not None:
            self.slow_down = max(self.slow_down or 0.0, wait)
            self._gate[self._host] = self._ctx.clock.monotonic() + wait
            self._ctx.log.warning(
                "Graph API usage at %.0f%%: next request in %.0f s", announced.percent if announced else 0, wait
            )
        if response.status != 200:
            raise graph_error(what, response.status, response.body, permission, wait)
        data = parse_json(response.body, what)
        if not isinstance(data, Mapping):
            raise BadResponse(f"{what}: expected an object")
        if isinstance(data.get("error"), Mapping):  # some proxies answer 200 with an error body
            raise graph_error(what, 400, response.body, permission, wait)
        return data

    async def page(
        self, path: str, params: Mapping[str, Any], *, what: str, permission: str, after: str | None = None
    ) -> GraphPage:
        """One page of an edge; `after` continues from the previous page's cursor."""
        query = dict(params)
        if after:
            query["after"] = after
        body = await self.get(path, query, what=what, permission=permission)
        if "data" in body and not isinstance(body["data"], list):
            raise BadResponse(f"{what}: `data` is not a list")
        rows = list_of(body, "data")
        more = text_of(body, "paging", "cursors", "after") if text_of(body, "paging", "next") else None
        return GraphPage(rows, more if rows else None, body)


# --- streams of one source ------------------------------------------------------------------------

STREAM_NAMES = {  # how `veille sources` names a stream a permission keeps closed (msgids, shown translated)
    "posts": N_("posts and comments"),
    "tagged": N_("posts that tag the page"),
    "messages": N_("messages"),
    "comments": N_("comments"),
    "tags": N_("media that tag the account"),
    "hashtags": N_("hashtags"),
}
PERMISSION_RETRY = 6 * 3600.0  # a stream refused for a missing permission is tried again this much later


class Streams:
    """Failure isolation between the streams of one Graph source (feed, tagged posts, messages...).

    A revoked token, a throttle or an object that does not exist fails the whole poll (every stream would
    fail alike). A missing permission or another error fails only its stream, whose cursor stays where it
    was; a stream refused for a permission is not asked again for PERMISSION_RETRY (its note stays in
    `veille sources`), so nothing is retried in a loop. The poll fails when every stream it ran failed.
    """

    def __init__(self, ctx: PollContext, graph: Graph, saved: Any) -> None:
        self._ctx = ctx
        self._graph = graph
        now = ctx.clock.now().timestamp()
        self.denied: dict[str, dict[str, Any]] = {
            name: dict(entry)
            for name, entry in (saved.items() if isinstance(saved, Mapping) else ())
            if isinstance(entry, Mapping) and isinstance(entry.get("until"), int | float) and entry["until"] > now
        }
        self.failures: list[FetchError] = []
        self.ran = 0

    async def run(self, name: str, work: Callable[[], Awaitable[None]], *, side: bool = False) -> None:
        """Run one stream; a `side` one (the daily audience figure) never decides whether the poll failed."""
        if name in self.denied or self._graph.near_budget:
            return
        self.ran += 0 if side else 1
        try:
            await work()
        except (TokenRefused, RateLimited):
            raise
        except FetchError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                raise
            if not side:
                self.failures.append(exc)
            if isinstance(exc, PermissionMissing):
                until = self._ctx.clock.now().timestamp() + PERMISSION_RETRY
                self.denied[name] = {"permission": exc.permission, "until": until}
            self._ctx.log.warning("%s: %s", name, exc.message)

    def check(self) -> None:
        """Raise the first failure when every stream that ran failed."""
        if self.failures and len(self.failures) >= self.ran:
            raise self.failures[0]

    def note(self) -> list[str]:
        """What `veille sources` shows: missing permissions, failed streams, a usage budget nearly spent."""
        denied = sorted(self.denied.items())
        parts = [
            N_("missing permission: {permission} ({stream} not read)").format(
                permission=e["permission"], stream=STREAM_NAMES.get(name, name)
            )
            for name, e in denied
        ]
        others = [f for f in self.failures if not isinstance(f, PermissionMissing)]
        if others:
            kinds = ", ".join(sorted({f.kind.value for f in others}))
            parts.append(N_("{count} streams failing ({kinds})").format(count=len(others), kinds=kinds))
        if self._graph.near_budget:
            parts.append(N_("Graph API quota nearly spent: polling spaced out"))
        return parts


# --- what Facebook and Instagram polls share -----------------------------------------------------

PAGE_SIZE = 25
CONVERSATION_FIELDS = "id,updated_time,link,messages.limit(20){id,message,created_time,from}"


def who_wrote(obj: Any) -> tuple[str | None, str | None, dict[str, str]]:
    """(author shown, display name, extra): Facebook has no handles, so the name is shown and the
    platform's id kept in `extra["author_id"]` (what a reply or a block needs)."""
    author_id, name = text_of(obj, "from", "id"), text_of(obj, "from", "name")
    return name or author_id, name, {"author_id": author_id} if author_id else {}


def message_item(message: Any, conversation_id: str | None) -> Item | None:
    """A Messenger (or Instagram direct) message -> a private Item of type `message`."""
    message_id = text_of(message, "id")
    if not message_id:
        return None
    author, name, who = who_wrote(message)
    username = text_of(message, "from", "username")  # Instagram direct messages
    return Item(
        external_id=message_id,
        text=bounded(text_of(message, "message")),
        author=f"@{username}" if username else author,
        author_name=name or username,
        published_at=parse_time(text_of(message, "created_time")),
        direct=True,
        private=True,
        thread_id=conversation_id,
        extra={"type": "message", **who},
    )


def as_kept(item: Item, by_owner: bool) -> Item | None:
    """The item as kept: the account's own answers (a message, a comment or reply) marked `from_client` for the
    reply inbox; None for the account's own posts, which are not hits."""
    if not by_owner:
        return item
    return replace(item, from_client=True) if item.private or item.parent_id else None


def newer(when: datetime | None, since: datetime | None) -> bool:
    return since is None or when is None or when > since


def latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def followers_of(account: Any) -> float | None:
    """A page's or Instagram account's followers (`followers_count`, else a page's older `fan_count`)."""
    value = int_of(account, "followers_count")
    value = int_of(account, "fan_count") if value is None else value
    return float(value) if value is not None else None


class GraphPoll:
    """The state of one poll of a Graph source: the cursor being advanced, the items and audience found."""

    def __init__(self, ctx: PollContext, graph: Graph, cursor: dict[str, Any], max_pages: int) -> None:
        self.ctx, self.graph, self.cursor, self.max_pages = ctx, graph, cursor, max_pages
        self.items: dict[str, Item] = {}
        self.audience: dict[str, float] = {}

    def since(self, key: str) -> datetime | None:
        return parse_time(self.cursor.get(key))

    def add(self, item: Item | None, own_id: str) -> None:
        """Keep an item; the account's own answers (comments, replies, messages) as `from_client`, for the
        reply inbox; its own posts are not hits."""
        if item is not None and (kept := as_kept(item, item.extra.get("author_id") == own_id)):
            self.items.setdefault(item.external_id, kept)

    async def pages(
        self, path: str, params: dict[str, Any], since: datetime | None, time_key: str, what: str, perm: str
    ) -> AsyncIterator[tuple[Any, datetime | None]]:
        """Rows newest first, page after page, until one at or before `since` (first poll: one page)."""
        after: str | None = None
        for _ in range(self.max_pages):
            page = await self.graph.page(path, params, what=what, permission=perm, after=after)
            reached = False
            for row in page.data:
                when = parse_time(text_of(row, time_key) or text_of(row, "created_time"))
                if not newer(when, since):
                    reached = True
                    continue
                yield row, when
            after = page.after
            if since is None or reached or not after or self.graph.near_budget:
                return

    async def conversations(
        self, page_id: str, owner_id: str, key: str, permission: str, platform: str | None = None
    ) -> None:
        """A page's conversations updated since the last poll, and their messages newer than it (the owner's
        own skipped). Messages come inline, newest first, at most 20 per conversation and poll."""
        since = newest = self.since(key)
        params: dict[str, Any] = {"fields": CONVERSATION_FIELDS, "limit": PAGE_SIZE}
        if platform:
            params["platform"] = platform
        async for conversation, when in self.pages(
            f"{page_id}/conversations",
            params,
            since,
            "updated_time",
            f"{platform or 'messenger'} conversations of {page_id}",
            permission,
        ):
            conversation_id = text_of(conversation, "id")
            for message in list_of(conversation, "messages", "data"):
                if newer(parse_time(text_of(message, "created_time")), since):
                    self.add(message_item(message, conversation_id), owner_id)
            newest = latest(newest, when)
        self.cursor[key] = iso(newest)

    async def audience_once_a_day(self, path: str, fields: str, what: str, perm: str) -> None:
        """The account's follower count, once per UTC day (`followers_count`, else the page's `fan_count`)."""
        day = self.ctx.clock.now().date().isoformat()
        if self.cursor.get("audience_day") == day:
            return
        body = await self.graph.get(path, {"fields": fields}, what=what, permission=perm)
        if username := text_of(body, "username"):
            self.cursor["username"] = username  # Instagram: to recognise the account's own comments
        value = followers_of(body)
        if value is not None:
            self.audience["followers"] = value
        self.cursor["audience_day"] = day

    def outcome(self, streams: Streams) -> PollOutcome:
        streams.check()
        self.cursor["denied"] = streams.denied
        note = streams.note()
        return PollOutcome(
            items=list(self.items.values()),
            cursor=dump_cursor({k: v for k, v in self.cursor.items() if v not in (None, {})}),
            note="; ".join(note) or None,
            earliest_next_poll=self.graph.slow_down,
            audience=self.audience,
        )
