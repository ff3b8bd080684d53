"""Bluesky: `app.bsky.feed.searchPosts` through an app-password session.

Unauthenticated search has answered 403 since January 2025, so a session is required. The
session (access + refresh JWT) is cached in `ctx.cache` and refreshed with `refreshSession`
when the access token expires; `createSession` (limited to 30 per 5 minutes and 300 per day) is
called only when there is no session yet or the refresh token is refused.

    [[clients.sources]]
    kind = "bluesky"
    identifier = "chezgege.bsky.social"      # the account whose app password is used
    password_env = "BLUESKY_APP_PASSWORD"
    search = ["chez gégé", "#chezgege"]
    mentions = true                          # optional: the account's mentions, replies, quotes
    service = "https://bsky.social"          # the account's PDS (default)

A post that mentions the session's account (a mention facet with its DID) or replies to one of
its posts is `direct`; so is every notification read with `mentions = true`. The cursor JSON is
{"search": {query: newest sortAt}, "mentions": newest indexedAt}. `refresh()` re-reads posts by
AT URI with `app.bsky.feed.getPosts`.

Own answers (the reply inbox): the session's account is the client's (its DID). With `mentions = true` its
own posts and replies are read too (`app.bsky.feed.getAuthorFeed`, filter `posts_with_replies`; cursor key
"own"): a reply of it to a customer (`record.reply.parent` by that customer's DID) is kept as `from_client`,
in the conversation named by the thread's root (`record.reply.root`) and the customer, which it closes; the
customer's next post in that thread reopens it. The account's posts that answer nobody are no hits.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from veille.core.configreader import Reader
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, Problems
from veille.core.i18n import N_
from veille.core.models import Engagement, ErrorKind, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    RateGate,
    bounded,
    dig,
    dump_cursor,
    in_thread,
    int_of,
    later,
    list_of,
    load_cursor,
    parse_json,
    parse_time,
    rate_limited,
    rate_window,
    require_secret,
    text_of,
)
from veille.sources.base import DriverBase, PollContext

SESSION_KEY = "bluesky_session"
PAGE_LIMIT = 100
GET_POSTS_LIMIT = 25
NOTIFICATIONS_LIMIT = 50
DIRECT_REASONS = ("mention", "reply", "quote")
_EXPIRED = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing"}


@dataclass(frozen=True, slots=True)
class BlueskyOptions:
    identifier: str
    password_env: str
    search: tuple[str, ...]
    service: str = "https://bsky.social"
    mentions: bool = False
    lang: str | None = None
    max_pages: int = 5

    @property
    def target(self) -> str:
        return "bluesky: " + " ".join([f"“{q}”" for q in self.search] + (["mentions"] if self.mentions else []))

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.password_env,)


def rkey_of(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def post_url(actor: str, uri: str) -> str:
    """The bsky.app page of a post (actor is a handle or a DID)."""
    return f"https://bsky.app/profile/{actor}/post/{rkey_of(uri)}"


def record_mentions(record: Any) -> set[str]:
    """DIDs mentioned through rich-text facets."""
    found = set()
    for facet in list_of(record, "facets"):
        for feature in list_of(facet, "features"):
            if text_of(feature, "$type") == "app.bsky.richtext.facet#mention" and text_of(feature, "did"):
                found.add(text_of(feature, "did") or "")
    return found


def addresses(record: Any, did: str | None) -> bool:
    """True when the post mentions `did` or replies to one of its posts."""
    if not did:
        return False
    if did in record_mentions(record):
        return True
    parent = text_of(record, "reply", "parent", "uri") or ""
    return parent.startswith(f"at://{did}/")


def record_lang(record: Any) -> str | None:
    langs = list_of(record, "langs")
    return langs[0] if langs and isinstance(langs[0], str) else None


def did_of(uri: str | None) -> str | None:
    """The author of an AT URI (at://did:plc:xyz/app.bsky.feed.post/rkey)."""
    if not uri or not uri.startswith("at://"):
        return None
    return uri[5:].split("/", 1)[0] or None


def post_item(post: Any, *, own_did: str | None = None, direct: bool = False) -> Item | None:
    """One `app.bsky.feed.defs#postView` -> Item, as the reply inbox follows it (the client's own reply to a
    customer is `from_client`); None without an URI, or for the client's own post answering nobody."""
    uri = text_of(post, "uri")
    if not uri:
        return None
    record = dig(post, "record") or {}
    handle = text_of(post, "author", "handle")
    did = text_of(post, "author", "did")
    actor = handle if handle and handle != "handle.invalid" else did
    published = parse_time(text_of(record, "createdAt")) or parse_time(text_of(post, "indexedAt"))
    item = Item(
        external_id=uri,
        text=bounded(text_of(record, "text")),
        url=post_url(actor, uri) if actor else None,
        author=f"@{handle}" if handle else did,
        author_name=text_of(post, "author", "displayName") or None,
        author_followers=int_of(post, "author", "followersCount"),  # only in detailed profiles
        published_at=published,
        lang=record_lang(record),
        engagement=Engagement(
            likes=int_of(post, "likeCount"),
            reposts=(int_of(post, "repostCount") or 0) + (int_of(post, "quoteCount") or 0)
            if post.get("repostCount") is not None
            else None,
            replies=int_of(post, "replyCount"),
        ),
        direct=direct or addresses(record, own_did),
        extra={"did": did} if did else {},
        parent_id=text_of(record, "reply", "parent", "uri"),
        thread_id=text_of(record, "reply", "root", "uri") or uri,
    )
    by_client = own_did is not None and did == own_did
    answered = did_of(item.parent_id) if by_client else did
    customer = answered if answered and answered != own_did else None
    return in_thread(item, by_client=by_client, root=item.thread_id, customer=customer)


def _sort_time(post: Any) -> datetime | None:
    """searchPosts' `since` works on sortAt = min(createdAt, indexedAt)."""
    times = [
        t
        for t in (parse_time(text_of(post, "record", "createdAt")), parse_time(text_of(post, "indexedAt")))
        if t is not None
    ]
    return min(times) if times else None


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _jwt_exp(token: str) -> float | None:
    """The `exp` claim of a JWT (not verified: only to refresh before it is refused)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    exp = data.get("exp") if isinstance(data, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def _xrpc_error(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return text_of(data, "error")


def _cached_session(ctx: PollContext) -> dict[str, Any] | None:
    session = ctx.cache.get(SESSION_KEY)
    return session if isinstance(session, dict) else None


class BlueskyDriver(DriverBase[BlueskyOptions]):
    kind: ClassVar[str] = "bluesky"
    # Search results give likes and reposts but rarely the author's followers: a public post, a few readers.
    reach_prior: ClassVar[float] = 0.2
    refreshes: ClassVar[bool] = True
    sees_own_answers: ClassVar[bool] = True  # with mentions = true: the session account's replies
    leading_mentions_address: ClassVar[bool] = True

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> BlueskyOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        identifier = reader.str("identifier")
        password_env = reader.env_name("password_env")
        search = [q.strip() for q in reader.str_list("search", [])]
        service = reader.url("service", "https://bsky.social")
        lang = reader.str("lang", None)
        max_pages = reader.int("max_pages", 5, min=1, max=50)
        mentions = reader.bool("mentions", False)
        reader.finish()
        if any(not q for q in search):
            reader.add("search", N_("empty query"), N_("remove the empty entries"))
        if not search and not mentions:
            reader.add("search", N_("nothing to watch"), N_('write e.g. search = ["chez gégé"] or mentions = true'))
        if len(problems) > before or identifier is None or password_env is None:
            return None
        return BlueskyOptions(
            identifier.lstrip("@"), password_env, tuple(search), service.rstrip("/"), bool(mentions), lang, max_pages
        )

    # --- session -----------------------------------------------------------------------------

    async def _xrpc_post(
        self, ctx: PollContext, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None
    ) -> Any:
        response = await ctx.http.request(
            "POST", url, headers=headers, json=json_body, accept_statuses=frozenset({400, 401, 429})
        )
        if response.status == 429:
            raise rate_limited(
                N_("bluesky session"), response.retry_after(), rate_window(response.headers, ctx.clock.now())
            )
        if response.status in (400, 401):
            error = _xrpc_error(response.body)
            if error in _EXPIRED or response.status == 401:
                raise AuthFailed(N_("bluesky: session refused ({error})").format(error=error or response.status))
            raise PermanentFetchError(
                ErrorKind.HTTP_4XX, N_("bluesky: {error}").format(error=error or N_("bad request"))
            )
        return parse_json(response.body, "bluesky session")

    def _store_session(self, ctx: PollContext, data: Any) -> dict[str, Any]:
        access, refresh, did = text_of(data, "accessJwt"), text_of(data, "refreshJwt"), text_of(data, "did")
        if not access or not refresh:
            raise BadResponse("bluesky session: no accessJwt/refreshJwt")
        session = {"access": access, "refresh": refresh, "did": did, "exp": _jwt_exp(access)}
        ctx.cache[SESSION_KEY] = session
        return session

    async def session(self, ctx: PollContext, options: BlueskyOptions, *, expired: bool = False) -> dict[str, Any]:
        """The cached session; refreshed when (nearly) expired; created only as a last resort."""
        password = require_secret(ctx, options.password_env)
        session = _cached_session(ctx)
        if session and not expired:
            exp = session.get("exp")
            if exp is None or exp - ctx.clock.now().timestamp() > 60:
                return session
        if session:
            try:
                data = await self._xrpc_post(
                    ctx,
                    f"{options.service}/xrpc/com.atproto.server.refreshSession",
                    headers={"Authorization": f"Bearer {session['refresh']}"},
                )
                return self._store_session(ctx, data)
            except AuthFailed:
                ctx.cache.pop(SESSION_KEY, None)  # refresh token refused: create a new session
        data = await self._xrpc_post(
            ctx,
            f"{options.service}/xrpc/com.atproto.server.createSession",
            json_body={"identifier": options.identifier, "password": password},
        )
        ctx.log.info("bluesky.session_created")
        return self._store_session(ctx, data)

    async def _get(
        self, ctx: PollContext, options: BlueskyOptions, method: str, params: Any
    ) -> tuple[Any, float | None]:
        """GET an XRPC query with the session, refreshing once on an expired token.

        Returns the decoded answer and the wait to suggest when the rate window is nearly used.
        """
        gate = RateGate(ctx)
        host = urlsplit(options.service).netloc
        gate.check(host)
        for attempt in range(2):
            session = await self.session(ctx, options, expired=attempt > 0)
            response = await ctx.http.get(
                f"{options.service}/xrpc/{method}",
                params=params,
                headers={"Authorization": f"Bearer {session['access']}"},
                accept_statuses=frozenset({400, 401, 429}),
            )
            window = rate_window(response.headers, ctx.clock.now())
            if response.status == 429:
                gate.observe(host, window)
                raise rate_limited(N_("bluesky {method}").format(method=method), response.retry_after(), window)
            if response.status in (400, 401):
                error = _xrpc_error(response.body)
                if (error in _EXPIRED or response.status == 401) and attempt == 0:
                    continue
                if error in _EXPIRED or response.status == 401:
                    raise AuthFailed(
                        N_("bluesky: {method} refused the session ({error})").format(
                            method=method, error=error or response.status
                        )
                    )
                raise PermanentFetchError(
                    ErrorKind.HTTP_4XX,
                    N_("bluesky {method}: {error}").format(method=method, error=error or N_("bad request")),
                )
            suggested = gate.observe(host, window)
            return parse_json(response.body, f"bluesky {method}"), suggested
        raise AssertionError("unreachable")

    # --- poll --------------------------------------------------------------------------------

    async def poll(self, ctx: PollContext, options: BlueskyOptions, state: PollState) -> PollOutcome:
        stored = load_cursor(state.cursor)
        search = stored.get("search")
        cursor: dict[str, Any] = search if isinstance(search, dict) else {}
        items: dict[str, Item] = {}
        wait: float | None = None
        mentions = stored.get("mentions") if isinstance(stored.get("mentions"), str) else None
        own_since = stored.get("own") if isinstance(stored.get("own"), str) else None
        if options.mentions:
            mentions, wait = await self._mentions(ctx, options, mentions, items)
            own_since, own_wait = await self._own_answers(ctx, options, own_since, items)
            wait = later(wait, own_wait)
        for query in options.search:
            since = cursor.get(query)
            newest = parse_time(since) if isinstance(since, str) else None
            page_cursor: str | None = None
            for _page in range(options.max_pages):
                params: dict[str, Any] = {"q": query, "sort": "latest", "limit": PAGE_LIMIT}
                if since:
                    params["since"] = since
                if options.lang:
                    params["lang"] = options.lang
                if page_cursor:
                    params["cursor"] = page_cursor
                data, suggested = await self._get(ctx, options, "app.bsky.feed.searchPosts", params)
                wait = later(wait, suggested)
                if not isinstance(data, Mapping) or not isinstance(data.get("posts"), list):
                    raise BadResponse("bluesky searchPosts: no `posts` list")
                own = (_cached_session(ctx) or {}).get("did")
                for post in data["posts"]:
                    item = post_item(post, own_did=own)
                    if item is not None:
                        items.setdefault(item.external_id, item)
                    when = _sort_time(post)
                    if when is not None and (newest is None or when > newest):
                        newest = when
                page_cursor = text_of(data, "cursor")
                if not since or not page_cursor or len(data["posts"]) < PAGE_LIMIT:
                    break  # first poll: newest page only; later: until the page is short
            if newest is not None:
                cursor[query] = _iso(newest)
        new_cursor: dict[str, Any] = {"search": cursor}
        if mentions:
            new_cursor["mentions"] = mentions
        if own_since:
            new_cursor["own"] = own_since
        audience: dict[str, float] = {}
        day = ctx.clock.now().date().isoformat()
        new_cursor["audience_day"] = stored.get("audience_day")
        if stored.get("audience_day") != day:
            # The account's followers, once a day (`getProfile` of the session's own account).
            try:
                profile, _ = await self._get(ctx, options, "app.bsky.actor.getProfile", {"actor": options.identifier})
            except FetchError as exc:  # a figure missing for a day is no reason to fail the poll
                ctx.log.info("bluesky follower count not read: %s", exc.kind.value)
                profile = None
            followers = int_of(profile, "followersCount")
            if followers is not None:
                audience["followers"] = float(followers)
            new_cursor["audience_day"] = day  # once a day, even when it failed: no retry loop
        return PollOutcome(
            items=list(items.values()), cursor=dump_cursor(new_cursor), earliest_next_poll=wait, audience=audience
        )

    async def _own_answers(
        self, ctx: PollContext, options: BlueskyOptions, since_text: str | None, items: dict[str, Item]
    ) -> tuple[str | None, float | None]:
        """The account's own replies since the last poll (`getAuthorFeed`, newest first; the first poll reads
        one page): each answers a customer's conversation."""
        own = (_cached_session(ctx) or {}).get("did")
        if not isinstance(own, str):
            return since_text, None
        since = parse_time(since_text)
        newest = since
        wait: float | None = None
        page_cursor: str | None = None
        for _page in range(options.max_pages):
            params: dict[str, Any] = {"actor": own, "filter": "posts_with_replies", "limit": PAGE_LIMIT}
            if page_cursor:
                params["cursor"] = page_cursor
            data, suggested = await self._get(ctx, options, "app.bsky.feed.getAuthorFeed", params)
            wait = later(wait, suggested)
            feed = data.get("feed") if isinstance(data, Mapping) else None
            if not isinstance(feed, list):
                raise BadResponse("bluesky getAuthorFeed: no `feed` list")
            reached_known = False
            for entry in feed:
                post = dig(entry, "post")
                when = parse_time(text_of(post, "indexedAt"))
                if since is not None and when is not None and when <= since:
                    reached_known = True
                    continue
                if text_of(post, "author", "did") != own or dig(entry, "reason") is not None:
                    continue  # a repost shown in the feed is nobody's answer
                item = post_item(post, own_did=own)
                if item is not None:
                    items.setdefault(item.external_id, item)
                if when is not None and (newest is None or when > newest):
                    newest = when
            page_cursor = text_of(data, "cursor")
            if since is None or reached_known or not page_cursor:
                break
        return (_iso(newest) if newest else since_text), wait

    async def _mentions(
        self, ctx: PollContext, options: BlueskyOptions, since_text: str | None, items: dict[str, Item]
    ) -> tuple[str | None, float | None]:
        """Mentions, replies and quotes of the account (`listNotifications`), newest first, as `direct`."""
        since = parse_time(since_text)
        newest = since
        wait: float | None = None
        page_cursor: str | None = None
        for _page in range(options.max_pages):
            params: list[tuple[str, Any]] = [("limit", NOTIFICATIONS_LIMIT)]
            params += [("reasons", r) for r in DIRECT_REASONS]
            if page_cursor:
                params.append(("cursor", page_cursor))
            data, suggested = await self._get(ctx, options, "app.bsky.notification.listNotifications", params)
            wait = later(wait, suggested)
            notes = data.get("notifications") if isinstance(data, Mapping) else None
            if not isinstance(notes, list):
                raise BadResponse("bluesky listNotifications: no `notifications` list")
            own = (_cached_session(ctx) or {}).get("did")
            reached_known = False
            for note in notes:
                if text_of(note, "reason") not in DIRECT_REASONS:
                    continue  # servers without the `reasons` filter send likes and follows too
                when = parse_time(text_of(note, "indexedAt"))
                if since is not None and when is not None and when <= since:
                    reached_known = True
                    continue
                item = post_item(note, own_did=own, direct=True)
                if item is not None:
                    items[item.external_id] = item
                if when is not None and (newest is None or when > newest):
                    newest = when
            page_cursor = text_of(data, "cursor")
            if since is None or reached_known or not page_cursor:
                break
        return (_iso(newest) if newest else since_text), wait

    async def refresh(self, ctx: PollContext, options: BlueskyOptions, external_ids: list[str]) -> list[Item]:
        """Current engagement of posts by AT URI (`getPosts`, 25 per call)."""
        found: list[Item] = []
        uris = [u for u in external_ids if u.startswith("at://")]
        for start in range(0, len(uris), GET_POSTS_LIMIT):
            data, _ = await self._get(
                ctx, options, "app.bsky.feed.getPosts", [("uris", u) for u in uris[start : start + GET_POSTS_LIMIT]]
            )
            own = (_cached_session(ctx) or {}).get("did")
            for post in list_of(data, "posts"):
                item = post_item(post, own_did=own)
                if item is not None:
                    found.append(item)
        return found
