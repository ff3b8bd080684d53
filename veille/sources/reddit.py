"""Reddit: site search and subreddit new posts through OAuth (client credentials).

    [[clients.sources]]
    kind = "reddit"
    search = ["chez gégé"]                  # GET /search?sort=new
    subreddits = ["lyon"]                   # GET /r/<sub>/new (add comments = true for /r/<sub>/comments)
    client_id_env = "REDDIT_CLIENT_ID"
    client_secret_env = "REDDIT_CLIENT_SECRET"
    username = "chezgege"                   # optional: names the app in the User-Agent; u/<name> is `direct`

Reddit asks for a descriptive User-Agent (`<platform>:<app id>:<version> (by /u/<name>)`) and
throttles generic ones. The token (valid 24 h) is cached in `ctx.cache` and fetched again on a 401.
`X-Ratelimit-Remaining`/`-Reset`/`-Used` are honoured; 403 and 429 are both treated as rate
limiting (Reddit answers 403 to clients it throttles). `refresh()` re-reads posts by fullname
with `/api/info`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from veille.core.configreader import Reader
from veille.core.errors import AuthFailed, FetchError, Problems, RateLimited
from veille.core.i18n import N_
from veille.core.models import Engagement, Item
from veille.core.polling import PollOutcome, PollState
from veille.core.version import __version__
from veille.sources._common import (
    BadResponse,
    RateGate,
    StreamFailures,
    bounded,
    dump_cursor,
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
    web_url,
)
from veille.sources.base import DriverBase, PollContext

TOKEN_KEY = "reddit_token"  # noqa: S105 (a cache key, not a secret)
PAGE_LIMIT = 100
DEFAULT_API = "https://oauth.reddit.com"
DEFAULT_TOKEN_URL = "https://www.reddit.com/api/v1/access_token"  # noqa: S105 (a URL)
_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")


@dataclass(frozen=True, slots=True)
class RedditOptions:
    client_id_env: str
    client_secret_env: str
    search: tuple[str, ...] = ()
    subreddits: tuple[str, ...] = ()
    comments: bool = False
    username: str | None = None
    api_base: str = DEFAULT_API
    token_url: str = DEFAULT_TOKEN_URL
    max_pages: int = 3

    @property
    def target(self) -> str:
        parts = [f"“{q}”" for q in self.search] + [f"r/{s}" for s in self.subreddits]
        return "reddit: " + " ".join(parts)

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.client_id_env, self.client_secret_env)

    @property
    def user_agent(self) -> str:
        by = f" (by /u/{self.username})" if self.username else ""
        return f"server:veille:{__version__}{by}"


def thing_item(thing: Any, *, username: str | None = None) -> Item | None:
    """A listing child (t3 submission or t1 comment) -> Item; None without a fullname."""
    data = thing.get("data") if isinstance(thing, Mapping) else None
    name = text_of(data, "name")
    if not name:
        return None
    is_comment = name.startswith("t1_")
    text = text_of(data, "body") if is_comment else text_of(data, "selftext")
    title = text_of(data, "link_title") if is_comment else text_of(data, "title")
    permalink = text_of(data, "permalink")
    author = text_of(data, "author")
    mention = f"u/{username}".lower() if username else None
    body = bounded(text)
    return Item(
        external_id=name,
        text=body,
        title=bounded(title, 1000),
        url=web_url(f"https://www.reddit.com{permalink}") if permalink else web_url(text_of(data, "url")),
        author=f"u/{author}" if author else None,
        author_name=author,
        published_at=parse_time(data.get("created_utc")) if isinstance(data, Mapping) else None,
        lang=None,
        engagement=Engagement(score=int_of(data, "score"), replies=int_of(data, "num_comments")),
        direct=bool(mention and mention in f"{title or ''} {body}".lower()),
        extra={k: v for k in ("subreddit",) if (v := text_of(data, k))},
    )


class RedditDriver(DriverBase[RedditOptions]):
    kind: ClassVar[str] = "reddit"
    # Votes and comments but no followers; a thread in a city or topic subreddit is read well beyond its
    # voters and ranks in search engines: a few hundred readers.
    reach_prior: ClassVar[float] = 0.5
    refreshes: ClassVar[bool] = True

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> RedditOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        client_id_env = reader.env_name("client_id_env")
        client_secret_env = reader.env_name("client_secret_env")
        search = [q.strip() for q in reader.str_list("search", [])]
        subreddits = [s.strip().removeprefix("r/") for s in reader.str_list("subreddits", [])]
        comments = reader.bool("comments", False)
        username = reader.str("username", None)
        api_base = reader.url("api_base", DEFAULT_API)
        token_url = reader.url("token_url", DEFAULT_TOKEN_URL)
        max_pages = reader.int("max_pages", 3, min=1, max=20)
        reader.finish()
        for index, sub in enumerate(subreddits):
            if not _SUBREDDIT.match(sub):
                problems.add(
                    f"{reader.sub('subreddits')}[{index}]",
                    N_("{sub!r} is not a subreddit name").format(sub=sub),
                    N_('write e.g. "lyon" (without r/)'),
                )
        if not search and not subreddits:
            reader.add("search", N_("nothing to watch"), N_("set search or subreddits"))
        if any(not q for q in search):
            reader.add("search", N_("empty query"), N_("remove the empty entries"))
        if len(problems) > before or client_id_env is None or client_secret_env is None:
            return None
        return RedditOptions(
            client_id_env,
            client_secret_env,
            tuple(search),
            tuple(subreddits),
            bool(comments),
            username.removeprefix("u/") if username else None,
            api_base.rstrip("/"),
            token_url,
            max_pages,
        )

    async def _token(self, ctx: PollContext, options: RedditOptions) -> str:
        cached = ctx.cache.get(TOKEN_KEY)
        if isinstance(cached, tuple) and cached[1] - ctx.clock.monotonic() > 60:
            return str(cached[0])
        client_id = require_secret(ctx, options.client_id_env)
        secret = require_secret(ctx, options.client_secret_env)
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = await ctx.http.request(
            "POST",
            options.token_url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "User-Agent": options.user_agent},
            accept_statuses=frozenset({429}),
        )
        if response.status == 429:
            raise rate_limited(N_("reddit token"), response.retry_after(), None)
        data = parse_json(response.body, "reddit token")
        token = text_of(data, "access_token")
        if not token:
            # Reddit answers 200 {"error": "invalid_grant"} for some refused credentials.
            raise AuthFailed(
                N_("reddit: token refused ({error})").format(error=text_of(data, "error") or N_("no access_token"))
            )
        ctx.cache[TOKEN_KEY] = (token, ctx.clock.monotonic() + float(int_of(data, "expires_in") or 3600))
        return token

    async def _get(
        self, ctx: PollContext, options: RedditOptions, path: str, params: dict[str, Any]
    ) -> tuple[Any, float | None]:
        gate = RateGate(ctx)
        host = urlsplit(options.api_base).netloc
        gate.check(host)
        for attempt in range(2):
            token = await self._token(ctx, options)
            response = await ctx.http.get(
                f"{options.api_base}{path}",
                params={**params, "raw_json": 1},
                headers={"Authorization": f"Bearer {token}", "User-Agent": options.user_agent},
                accept_statuses=frozenset({401, 403, 429}),
            )
            window = rate_window(response.headers, ctx.clock.now())
            if response.status == 401:
                ctx.cache.pop(TOKEN_KEY, None)  # expired or revoked: one fresh token, then give up
                if attempt == 0:
                    continue
                raise AuthFailed(N_("reddit: the API refused a fresh token"))
            if response.status in (403, 429):
                gate.observe(host, window)
                raise rate_limited(N_("reddit {status}").format(status=response.status), response.retry_after(), window)
            return parse_json(response.body, f"reddit {path}"), gate.observe(host, window)
        raise AssertionError("unreachable")

    def _streams(self, options: RedditOptions) -> list[tuple[str, str, dict[str, Any]]]:
        streams = [(f"search:{q}", "/search", {"q": q, "sort": "new", "type": "link"}) for q in options.search]
        for sub in options.subreddits:
            streams.append((f"r/{sub}/new", f"/r/{quote(sub)}/new", {}))
            if options.comments:
                streams.append((f"r/{sub}/comments", f"/r/{quote(sub)}/comments", {}))
        return streams

    async def poll(self, ctx: PollContext, options: RedditOptions, state: PollState) -> PollOutcome:
        cursor = load_cursor(state.cursor)
        items: dict[str, Item] = {}
        wait: float | None = None
        streams = self._streams(options)
        failures = StreamFailures("Reddit")
        for key, path, params in streams:
            try:
                newest, suggested = await self._stream(ctx, options, path, params, cursor.get(key), items)
            except (AuthFailed, RateLimited):
                raise  # one token, one rate window: every stream would fail the same way
            except FetchError as exc:
                failures.record(ctx, key, exc)  # e.g. a banned or misspelt subreddit (404)
                continue
            failures.succeeded += 1
            wait = later(wait, suggested)
            if newest is not None:
                cursor[key] = newest
        note = failures.check(len(streams))
        return PollOutcome(items=list(items.values()), cursor=dump_cursor(cursor), earliest_next_poll=wait, note=note)

    async def _stream(
        self,
        ctx: PollContext,
        options: RedditOptions,
        path: str,
        params: dict[str, Any],
        since: Any,
        items: dict[str, Item],
    ) -> tuple[float | None, float | None]:
        """Read one listing down to the newest post already seen; return the newest time and a wait."""
        wait: float | None = None
        since = float(since) if isinstance(since, int | float) else None
        newest = since
        after: str | None = None
        for _page in range(options.max_pages):
            query = {**params, "limit": PAGE_LIMIT, **({"after": after} if after else {})}
            data, suggested = await self._get(ctx, options, path, query)
            wait = later(wait, suggested)
            if text_of(data, "kind") != "Listing":
                raise BadResponse(f"reddit {path}: not a Listing")
            children = list_of(data, "data", "children")
            reached_known = False
            for child in children:
                item = thing_item(child, username=options.username)
                if item is None:
                    continue
                created = item.published_at.timestamp() if item.published_at else None
                if since is not None and created is not None and created < since:
                    reached_known = True
                    continue
                items.setdefault(item.external_id, item)
                if created is not None and (newest is None or created > newest):
                    newest = created
            after = text_of(data, "data", "after")
            if since is None or reached_known or not after or len(children) < PAGE_LIMIT:
                break
        return newest, wait

    async def refresh(self, ctx: PollContext, options: RedditOptions, external_ids: list[str]) -> list[Item]:
        """Current score and comment count of posts by fullname (`/api/info`, 100 per call)."""
        names = [n for n in external_ids if n.startswith(("t1_", "t3_"))]
        found: list[Item] = []
        for start in range(0, len(names), 100):
            data, _ = await self._get(ctx, options, "/api/info", {"id": ",".join(names[start : start + 100])})
            for child in list_of(data, "data", "children"):
                item = thing_item(child, username=options.username)
                if item is not None:
                    found.append(item)
        return found
