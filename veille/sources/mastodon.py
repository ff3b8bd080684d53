"""Mastodon: hashtag timelines on several instances, status search and the client's mentions.

Config (one source can watch several instances; the first one is the "home" instance where the
client's token lives, used for search and mentions):

    [[clients.sources]]
    kind = "mastodon"
    instances = ["https://piaille.fr", "https://mastodon.social"]
    hashtags = ["chezgege"]            # /api/v1/timelines/tag/:tag on every instance (public)
    search = ["chez gégé"]             # /api/v2/search on the home instance (token; opted-in posts only)
    mentions = true                    # /api/v1/notifications?types[]=mention (token)
    token_env = "MASTODON_TOKEN"       # needed for search and mentions
    account = "@chezgege@piaille.fr"   # optional: a post mentioning it is `direct`

Own answers (the reply inbox): with `mentions = true` the token's owner is the client's account
(`verify_credentials`, remembered in the cursor); its own statuses (`/api/v1/accounts/:id/statuses`) are read
too, and a reply of it to a customer is kept as `from_client`, which closes that customer's conversation.
Mastodon names no thread root, so a conversation is the customer's account (`account` also recognises the
client's statuses seen on other instances). The client's statuses that answer nobody are no hits.

The same status reaches several instances under different local ids; items are keyed by the
status `uri` (its ActivityPub id), so it is stored once. Paging goes forward with `min_id`
(following `Link: rel="prev"`); the first poll takes only the newest page (no history backfill).
The cursor keeps the newest id per (instance, stream). `X-RateLimit-*` (300 requests per 5
minutes by default) is honoured per instance. One instance failing (down, rate limited, refusing
public timelines) does not stop the others: their items are returned and the note says how many
streams failed. `refresh()` re-reads statuses by uri.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from veille.core.configreader import Reader
from veille.core.errors import FetchError, Problems, RateLimited
from veille.core.i18n import N_
from veille.core.models import Engagement, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    RateGate,
    StreamFailures,
    bounded,
    dump_cursor,
    html_to_text,
    in_thread,
    int_of,
    later,
    link_rel,
    list_of,
    load_cursor,
    newest_id,
    parse_json,
    parse_time,
    rate_limited,
    rate_window,
    require_secret,
    text_of,
    web_url,
)
from veille.sources.base import DriverBase, PollContext

PAGE_LIMIT = 40  # the API's maximum for timelines, search and notifications
REFRESH_LIMIT = 40
_STATUS_PATH = re.compile(r"^/users/[^/]+/statuses/(\d+)$")  # Mastodon's own status URIs


@dataclass(frozen=True, slots=True)
class MastodonOptions:
    instances: tuple[str, ...]
    hashtags: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    mentions: bool = False
    token_env: str | None = None
    account: str | None = None
    max_pages: int = 5

    @property
    def target(self) -> str:
        what = [f"#{t}" for t in self.hashtags] + [f"“{q}”" for q in self.search]
        if self.mentions:
            what.append("mentions")
        hosts = ",".join(urlsplit(i).hostname or i for i in self.instances)
        return f"{hosts}: {' '.join(what)}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.token_env,) if self.token_env else ()


def _handle(account: Any, instance_host: str) -> str | None:
    acct = text_of(account, "acct")
    if not acct:
        return None
    return f"@{acct}" if "@" in acct else f"@{acct}@{instance_host}"


def status_item(status: Any, *, instance_host: str, direct: bool = False, account: str | None = None) -> Item | None:
    """One Mastodon Status -> Item; None when it has no usable identity."""
    if isinstance(status, Mapping) and isinstance(status.get("reblog"), Mapping):
        status = status["reblog"]  # a boost: the boosted post is what was said
    uri = text_of(status, "uri")
    local_id = text_of(status, "id")
    if not uri or not local_id:
        return None
    mentions = {m.lower() for m in (_handle(x, instance_host) for x in list_of(status, "mentions")) if m}
    is_direct = direct or (account is not None and account.lower() in mentions)
    return Item(
        external_id=uri,
        text=html_to_text(text_of(status, "content")),
        title=bounded(text_of(status, "spoiler_text"), 500),
        url=web_url(text_of(status, "url")) or web_url(uri),
        author=_handle(status.get("account"), instance_host),
        author_name=text_of(status, "account", "display_name") or None,
        author_followers=int_of(status, "account", "followers_count"),
        published_at=parse_time(text_of(status, "created_at")),
        lang=text_of(status, "language"),
        engagement=Engagement(
            likes=int_of(status, "favourites_count"),
            reposts=int_of(status, "reblogs_count"),
            replies=int_of(status, "replies_count"),
        ),
        direct=is_direct,
        extra={"instance": instance_host, "id": local_id},
    )


@dataclass(frozen=True, slots=True)
class OwnAccount:
    """How the client's own account is recognised: its id on the home instance, its handles anywhere."""

    account_id: str | None
    handles: frozenset[str]


def thread_view(status: Any, item: Item, *, instance_host: str, own: OwnAccount, home: bool) -> Item | None:
    """The status as the reply inbox follows it: the client's reply to a customer is `from_client`, in that
    customer's conversation; a customer's post addressing the client is in their own (None: the client's
    own post answering nobody, no hit)."""
    if isinstance(status, Mapping) and isinstance(status.get("reblog"), Mapping):
        return item  # a boost is nobody's answer
    author_id = text_of(status, "account", "id")
    by_client = (item.author or "").lower() in own.handles or (
        home and own.account_id is not None and author_id == own.account_id
    )
    item = replace(item, parent_id=text_of(status, "in_reply_to_id"))
    if not by_client:
        return in_thread(item, by_client=False, root=None, customer=(item.author or "").lower() or None)
    answered = text_of(status, "in_reply_to_account_id")
    customer = None
    if answered and answered != author_id:
        mention = next((m for m in list_of(status, "mentions") if text_of(m, "id") == answered), None)
        handle = _handle(mention, instance_host) if mention is not None else None
        customer = handle.lower() if handle and handle.lower() not in own.handles else None
    return in_thread(item, by_client=True, root=None, customer=customer)


class MastodonDriver(DriverBase[MastodonOptions]):
    kind: ClassVar[str] = "mastodon"
    reach_prior: ClassVar[float] = 0.0  # every status gives its author's followers
    refreshes: ClassVar[bool] = True
    sees_own_answers: ClassVar[bool] = True  # with mentions = true: the token owner's replies
    leading_mentions_address: ClassVar[bool] = True

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> MastodonOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        instances_raw = reader.str_list("instances")
        hashtags = [t.lstrip("#").strip() for t in reader.str_list("hashtags", [])]
        search = [q.strip() for q in reader.str_list("search", [])]
        mentions = reader.bool("mentions", False)
        token_env = reader.env_name("token_env", None)
        account = reader.str("account", None)
        max_pages = reader.int("max_pages", 5, min=1, max=50)
        reader.finish()
        instances: list[str] = []
        for index, value in enumerate(instances_raw or []):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.add(
                    f"{reader.sub('instances')}[{index}]",
                    N_("{value!r} is not an instance URL").format(value=value),
                    N_('write e.g. "https://mastodon.social"'),
                )
                continue
            instances.append(f"{parts.scheme}://{parts.netloc}")
        if instances_raw is not None and not instances:
            reader.add(
                "instances", N_("needs at least one instance"), N_('write e.g. instances = ["https://mastodon.social"]')
            )
        if any(not t for t in hashtags) or any(not q for q in search):
            reader.add("hashtags", N_("empty hashtag or search query"), N_("remove the empty entries"))
        if not hashtags and not search and not mentions:
            reader.add("hashtags", N_("nothing to watch"), N_("set hashtags, search or mentions = true"))
        if (search or mentions) and not token_env:
            reader.add(
                "token_env",
                N_("search and mentions need a user token"),
                N_('add token_env = "MASTODON_TOKEN" (a read-scoped token of the home instance)'),
            )
        if account is not None and not account.startswith("@"):
            account = f"@{account}"
        if len(problems) > before:
            return None
        return MastodonOptions(
            tuple(instances), tuple(hashtags), tuple(search), bool(mentions), token_env, account, max_pages
        )

    async def poll(self, ctx: PollContext, options: MastodonOptions, state: PollState) -> PollOutcome:
        cursor = load_cursor(state.cursor)
        token = require_secret(ctx, options.token_env) if options.token_env else None
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        gate = RateGate(ctx)
        by_uri: dict[str, Item] = {}
        wait: float | None = None
        failures = StreamFailures("Mastodon")
        streams: list[tuple[str, str, dict[str, Any], bool]] = []
        home = options.instances[0]  # the token belongs to it: never sent to another instance
        for instance in options.instances:
            for tag in options.hashtags:
                streams.append((instance, f"/api/v1/timelines/tag/{quote(tag, safe='')}", {}, False))
        for query in options.search:
            streams.append((home, "/api/v2/search", {"q": query, "type": "statuses", "resolve": "false"}, False))
        if options.mentions:
            streams.append((home, "/api/v1/notifications", {"types[]": "mention"}, True))
        own = OwnAccount(None, frozenset({options.account.lower()} if options.account else ()))
        memo: dict[str, Any] = {}  # verify_credentials, once per poll
        if options.mentions and token:
            own = await self._own_account(ctx, home, auth, cursor, own, memo)
            if own.account_id is not None:
                streams.append(
                    (home, f"/api/v1/accounts/{own.account_id}/statuses", {"exclude_reblogs": "true"}, False)
                )
        done_hosts: set[str] = set()
        for instance, path, params, is_mentions in streams:
            host = urlsplit(instance).netloc
            if host in done_hosts:
                continue
            key = f"{host}{path}" + (f"?q={params['q']}" if "q" in params else "")
            try:
                gate.check(host)
                newest, stream_wait = await self._stream(
                    ctx,
                    gate,
                    options,
                    instance,
                    path,
                    params,
                    auth if instance == home else {},
                    cursor.get(key),
                    is_mentions,
                    by_uri,
                    own,
                )
            except FetchError as exc:
                # One instance down, rate limited or refusing public timelines must not stop the
                # others; that stream's cursor stays where it was, so nothing is skipped.
                failures.record(ctx, key, exc)
                if isinstance(exc, RateLimited):
                    done_hosts.add(host)
                    wait = later(wait, exc.retry_after)
                continue
            failures.succeeded += 1
            if newest:
                cursor[key] = newest
            wait = later(wait, stream_wait)
        note = failures.check(len(streams))
        audience: dict[str, float] = {}
        day = ctx.clock.now().date().isoformat()
        if options.mentions and token and cursor.get("audience_day") != day:
            followers = await self._followers(ctx, home, auth, memo)
            if followers is not None:
                audience["followers"] = followers
            cursor["audience_day"] = day  # once a day, even when it failed: no retry loop
        return PollOutcome(
            items=list(by_uri.values()),
            cursor=dump_cursor(cursor),
            earliest_next_poll=wait,
            note=note,
            audience=audience,
        )

    async def _own_account(
        self,
        ctx: PollContext,
        home: str,
        auth: dict[str, str],
        cursor: dict[str, Any],
        own: OwnAccount,
        memo: dict[str, Any],
    ) -> OwnAccount:
        """The token owner (the client's account), read once with `verify_credentials` and kept in the cursor;
        without it this poll simply does not see the client's answers."""
        known = cursor.get("own")
        if not (isinstance(known, Mapping) and isinstance(known.get("id"), str) and isinstance(known.get("acct"), str)):
            account = await self._credentials(ctx, home, auth, memo)
            account_id, handle = text_of(account, "id"), _handle(account, urlsplit(home).hostname or "")
            if not account_id or not handle:
                return own
            known = cursor["own"] = {"id": account_id, "acct": handle}
        return OwnAccount(str(known["id"]), own.handles | {str(known["acct"]).lower()})

    async def _credentials(self, ctx: PollContext, home: str, auth: dict[str, str], memo: dict[str, Any]) -> Any:
        """The token owner's account (`verify_credentials`), asked at most once per poll; None on failure."""
        if "account" not in memo:
            try:
                response = await ctx.http.get(
                    f"{home}/api/v1/accounts/verify_credentials",
                    headers=auth,
                    accept_statuses=frozenset({401, 403, 404, 429}),
                )
                ok = response.status == 200
                memo["account"] = parse_json(response.body, "mastodon verify_credentials") if ok else None
            except FetchError as exc:
                ctx.log.info("mastodon own account not read: %s", exc.kind.value)
                memo["account"] = None
        return memo["account"]

    async def _followers(self, ctx: PollContext, home: str, auth: dict[str, str], memo: dict[str, Any]) -> float | None:
        """The token owner's (the client's account) followers, from `verify_credentials`; None on failure."""
        account = await self._credentials(ctx, home, auth, memo)
        followers = int_of(account, "followers_count")
        return float(followers) if followers is not None else None

    async def _stream(
        self,
        ctx: PollContext,
        gate: RateGate,
        options: MastodonOptions,
        instance: str,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        since: str | None,
        is_mentions: bool,
        by_uri: dict[str, Item],
        own: OwnAccount,
    ) -> tuple[str | None, float | None]:
        """Read one stream forward from `since`; return its newest id and a suggested wait."""
        host = urlsplit(instance).netloc
        host_name = urlsplit(instance).hostname or host
        url: str | None = f"{instance}{path}"
        query: dict[str, Any] | None = {**params, "limit": PAGE_LIMIT, **({"min_id": since} if since else {})}
        newest = since
        wait: float | None = None
        for _page in range(options.max_pages):
            if url is None:
                break
            response = await ctx.http.get(url, headers=headers, params=query, accept_statuses=frozenset({429}))
            window = rate_window(response.headers, ctx.clock.now())
            if response.status == 429:
                gate.observe(host, window)
                raise rate_limited(N_("mastodon {host}").format(host=host), response.retry_after(), window)
            wait = later(wait, gate.observe(host, window))
            data = parse_json(response.body, f"mastodon {host}{path}")
            statuses, ids = self._page(data, is_mentions, path)
            for status in statuses:
                item = status_item(status, instance_host=host_name, direct=is_mentions, account=options.account)
                if item is not None:
                    item = thread_view(
                        status, item, instance_host=host_name, own=own, home=instance == options.instances[0]
                    )
                if item is not None:
                    known = by_uri.get(item.external_id)
                    if known is None or (item.direct and not known.direct):
                        by_uri[item.external_id] = item
            page_newest = newest_id(ids)
            if since is None or page_newest is None or len(ids) < PAGE_LIMIT:
                newest = newest_id([page_newest], newest)
                break  # first poll takes one page; a short page is the last one
            newest = newest_id([page_newest], newest)
            prev = link_rel(response.headers.get("link"), "prev")
            url, query = (
                (prev, None) if prev else (f"{instance}{path}", {**params, "limit": PAGE_LIMIT, "min_id": page_newest})
            )
            if window is not None and window.exhausted:
                break
        return newest, wait

    async def refresh(self, ctx: PollContext, options: MastodonOptions, external_ids: list[str]) -> list[Item]:
        """Current counts of statuses by `uri` (at most 40 per call).

        A status hosted by one of the configured instances is read there (`/api/v1/statuses/:id`,
        public); any other is resolved through the home instance's search (needs the token).
        """
        token = ctx.env(options.token_env) if options.token_env else None
        home = options.instances[0]
        by_host = {urlsplit(i).netloc: i for i in options.instances}
        found: list[Item] = []
        for uri in external_ids[:REFRESH_LIMIT]:
            parts = urlsplit(uri)
            local = _STATUS_PATH.match(parts.path)
            try:
                if local and parts.netloc in by_host:
                    instance = by_host[parts.netloc]
                    response = await ctx.http.get(f"{instance}/api/v1/statuses/{local.group(1)}")
                    status = parse_json(response.body, "mastodon status")
                elif token:
                    instance = home
                    response = await ctx.http.get(
                        f"{home}/api/v2/search",
                        headers={"Authorization": f"Bearer {token}"},
                        params={"q": uri, "type": "statuses", "resolve": "true", "limit": 1},
                    )
                    statuses = list_of(parse_json(response.body, "mastodon search"), "statuses")
                    status = statuses[0] if statuses else None
                else:
                    continue
            except FetchError as exc:
                ctx.log.info("mastodon.refresh_failed", extra={"error_kind": exc.kind.value})
                continue
            item = status_item(status, instance_host=urlsplit(instance).hostname or "")
            if item is not None and item.external_id == uri:
                found.append(item)
        return found

    @staticmethod
    def _page(data: Any, is_mentions: bool, path: str) -> tuple[list[Any], list[str | None]]:
        """The statuses of a page and the paging ids (notification ids for mentions)."""
        if path == "/api/v2/search":
            if not isinstance(data, Mapping):
                raise BadResponse("mastodon search: expected an object with `statuses`")
            statuses = list_of(data, "statuses")
            return statuses, [text_of(s, "id") for s in statuses]
        if not isinstance(data, list):
            raise BadResponse(f"mastodon {path}: expected a list")
        if is_mentions:
            notes = [n for n in data if isinstance(n, Mapping)]
            return (
                [n.get("status") for n in notes if text_of(n, "type") in (None, "mention")],
                [text_of(n, "id") for n in notes],
            )
        return data, [text_of(s, "id") for s in data]
