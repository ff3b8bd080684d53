"""X (Twitter) API v2 recent search, with a monthly read budget that is never exceeded.

    [[clients.sources]]
    kind = "x"
    query = '"chez gégé" OR @chezgege -is:retweet'
    bearer_env = "X_BEARER_TOKEN"
    monthly_read_budget = 1000          # posts read per calendar month (UTC) by this source
    handle = "chezgege"                 # optional: a post mentioning @chezgege is `direct`

X bills reads per post returned. Before each request the driver asks for at most the posts left
in the month's budget (`max_results` between 10 and 100), and stops when fewer than 10 remain,
so the budget is a hard ceiling. Budget use is persisted in the cursor JSON together with
`since_id` ({"month": "2026-11", "reads": 188, "since_id": "..."}) and shown by `veille sources`
through `PollOutcome.note`. `x-rate-limit-*` headers are honoured.

No `refresh()`: re-reading posts would spend the budget outside the cursor that accounts for it.

Own answers (the reply inbox): `handle` is the client's account. The search then also asks for its replies
(`(query) OR (from:handle is:reply)`, within the same budget), and a reply of it to a customer is kept as
`from_client`, in the conversation named by the thread (`conversation_id`) and the customer
(`in_reply_to_user_id`), which it closes; the customer's next post in that thread reopens it. Its tweets that
answer nobody are no hits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from veille.core.configreader import Reader
from veille.core.errors import FetchError, PermanentFetchError, Problems, RateLimited
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
    newest_id,
    parse_json,
    parse_time,
    rate_limited,
    rate_window,
    require_secret,
    text_of,
)
from veille.sources.base import DriverBase, PollContext

MIN_RESULTS, MAX_RESULTS = 10, 100  # the API refuses max_results outside [10, 100]
TWEET_FIELDS = "created_at,lang,public_metrics,author_id,entities,in_reply_to_user_id,conversation_id,referenced_tweets"
USER_FIELDS = "username,name,public_metrics"
BUDGET_CACHE = "x_budget"
DEFAULT_API = "https://api.twitter.com/2"


@dataclass(frozen=True, slots=True)
class XOptions:
    query: str
    bearer_env: str
    monthly_read_budget: int
    handle: str | None = None
    api_base: str = DEFAULT_API
    max_pages: int = 5

    @property
    def target(self) -> str:
        return f"x: {self.query}"

    @property
    def search_query(self) -> str:
        """What is asked of the API: the query, plus the client's own replies when its handle is known."""
        return f"({self.query}) OR (from:{self.handle} is:reply)" if self.handle else self.query

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.bearer_env,)


def month_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def seconds_to_next_month(now: datetime) -> float:
    now = now.astimezone(UTC)
    start = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return (start - now).total_seconds()


def budget_note(left: int, budget: int) -> str:
    return N_("X budget: {left}/{budget} reads left this month").format(left=left, budget=budget)


def tweet_item(tweet: Any, users: Mapping[str, Any], *, handle: str | None = None) -> Item | None:
    """One v2 tweet object (+ the `includes.users` index) -> Item; None without an id."""
    tweet_id = text_of(tweet, "id")
    if not tweet_id:
        return None
    user = users.get(text_of(tweet, "author_id") or "", {})
    username = text_of(user, "username")
    mentions = {(text_of(m, "username") or "").lower() for m in list_of(tweet, "entities", "mentions")}
    metrics = dig(tweet, "public_metrics") or {}
    reposts = int_of(metrics, "retweet_count")
    quotes = int_of(metrics, "quote_count")
    replied = next(
        (text_of(r, "id") for r in list_of(tweet, "referenced_tweets") if text_of(r, "type") == "replied_to"), None
    )
    item = Item(
        external_id=tweet_id,
        text=bounded(text_of(tweet, "note_tweet", "text") or text_of(tweet, "text")),
        url=f"https://x.com/{username or 'i/web'}/status/{tweet_id}",
        author=f"@{username}" if username else text_of(tweet, "author_id"),
        author_name=text_of(user, "name"),
        author_followers=int_of(user, "public_metrics", "followers_count"),
        published_at=parse_time(text_of(tweet, "created_at")),
        lang=text_of(tweet, "lang"),
        engagement=Engagement(
            likes=int_of(metrics, "like_count"),
            reposts=(reposts or 0) + (quotes or 0) if reposts is not None or quotes is not None else None,
            replies=int_of(metrics, "reply_count"),
            views=int_of(metrics, "impression_count"),
        ),
        direct=bool(handle and handle.lower() in mentions),
        parent_id=replied,
        thread_id=text_of(tweet, "conversation_id"),
    )
    by_client = bool(handle and username and username.lower() == handle.lower())
    author_id = text_of(tweet, "author_id")
    customer = author_id
    if by_client:  # the customer is whom it answers (not itself: a thread of its own)
        answered = text_of(tweet, "in_reply_to_user_id")
        customer = answered if answered != author_id else None
    return in_thread(item, by_client=by_client, root=item.thread_id, customer=customer)


def refused_parameters(body: bytes) -> list[str]:
    """Names of the parameters a 400 answer refuses (`errors[].parameters`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    return sorted({name for error in list_of(data, "errors") for name in (dig(error, "parameters") or {})})


def users_index(page: Any) -> dict[str, Any]:
    return {uid: u for u in list_of(page, "includes", "users") if (uid := text_of(u, "id"))}


class XDriver(DriverBase[XOptions]):
    kind: ClassVar[str] = "x"
    reach_prior: ClassVar[float] = 0.0  # every post gives its author's followers
    sees_own_answers: ClassVar[bool] = True  # with handle: the client's replies are searched too
    leading_mentions_address: ClassVar[bool] = True

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> XOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        query = reader.str("query")
        bearer_env = reader.env_name("bearer_env")
        budget = reader.int("monthly_read_budget", min=0)
        handle = reader.str("handle", None)
        api_base = reader.url("api_base", DEFAULT_API)
        max_pages = reader.int("max_pages", 5, min=1, max=50)
        reader.finish()
        if query is not None and not query.strip():
            reader.add("query", N_("is empty"), N_("write an X search query"))
        handle = handle.lstrip("@") if handle else None
        asked = f"({query}) OR (from:{handle} is:reply)" if query and handle else query
        if asked and len(asked) > 512:
            reader.add("query", N_("is longer than 512 characters (the recent-search limit)"), N_("shorten it"))
        if len(problems) > before or query is None or bearer_env is None or budget is None:
            return None
        return XOptions(query.strip(), bearer_env, budget, handle, api_base.rstrip("/"), max_pages)

    async def poll(self, ctx: PollContext, options: XOptions, state: PollState) -> PollOutcome:
        token = require_secret(ctx, options.bearer_env)
        now = ctx.clock.now()
        cursor = load_cursor(state.cursor)
        month = month_of(now)
        reads = int(cursor.get("reads") or 0) if cursor.get("month") == month else 0
        cached = ctx.cache.get(BUDGET_CACHE)
        if isinstance(cached, tuple) and cached[0] == month:
            reads = max(reads, cached[1])  # an outcome that was never stored still spent reads
        since_id = cursor.get("since_id") if isinstance(cursor.get("since_id"), str) else None
        gate = RateGate(ctx)
        host = urlsplit(options.api_base).netloc
        items: dict[str, Item] = {}
        newest: str | None = since_id
        wait: float | None = None
        next_token: str | None = None
        failure: FetchError | None = None
        for page in range(options.max_pages):
            left = options.monthly_read_budget - reads
            if left < MIN_RESULTS:
                if page == 0:
                    raise RateLimited(
                        N_("X monthly read budget spent ({reads}/{monthly_read_budget})").format(
                            reads=reads, monthly_read_budget=options.monthly_read_budget
                        ),
                        retry_after=seconds_to_next_month(now),
                        kind=ErrorKind.QUOTA,
                    )
                break
            params: dict[str, Any] = {
                "query": options.search_query,
                "max_results": min(MAX_RESULTS, left),
                "tweet.fields": TWEET_FIELDS,
                "expansions": "author_id",
                "user.fields": USER_FIELDS,
            }
            if since_id:
                params["since_id"] = since_id
            if next_token:
                params["next_token"] = next_token
            try:
                gate.check(host)
                response = await ctx.http.get(
                    f"{options.api_base}/tweets/search/recent",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    accept_statuses=frozenset({400, 429}),
                )
                window = rate_window(response.headers, ctx.clock.now())
                if response.status == 400:
                    refused = refused_parameters(response.body)
                    if page == 0 and since_id and "since_id" in refused:
                        # since_id older than the 7-day search window (rooteco/tweetscape#421):
                        # start again from the newest page rather than fail forever.
                        since_id = newest = None
                        continue
                    raise PermanentFetchError(
                        ErrorKind.HTTP_4XX,
                        N_("x search: invalid request ({errors})").format(errors=", ".join(refused) or N_("no detail")),
                    )
                if response.status == 429:
                    gate.observe(host, window)
                    raise rate_limited(N_("x search"), response.retry_after(), window)
                wait = later(wait, gate.observe(host, window))
                data = parse_json(response.body, "x search")
                if not isinstance(data, Mapping):
                    raise BadResponse("x search: expected an object")
            except FetchError as exc:
                if page == 0:
                    raise
                failure = exc  # keep what was read (and its cost); re-read the gap next time
                break
            tweets = list_of(data, "data")
            reads += max(len(tweets), int_of(data, "meta", "result_count") or 0)
            users = users_index(data)
            for tweet in tweets:
                item = tweet_item(tweet, users, handle=options.handle)
                if item is not None:
                    items.setdefault(item.external_id, item)
            newest = newest_id([text_of(data, "meta", "newest_id"), *(text_of(t, "id") for t in tweets)], newest)
            next_token = text_of(data, "meta", "next_token")
            if not since_id or not next_token:
                break  # first poll: newest page only
        ctx.cache[BUDGET_CACHE] = (month, reads)
        if failure is not None:
            wait = later(wait, failure.retry_after)
        # After a failure mid-paging the older part of the gap is unread: keep since_id to re-read it.
        # Past max_pages or the budget, the oldest posts of the gap are skipped on purpose.
        new_cursor = {"month": month, "reads": reads, "since_id": (since_id or newest) if failure else newest}
        return PollOutcome(
            items=list(items.values()),
            cursor=dump_cursor(new_cursor),
            note=budget_note(options.monthly_read_budget - reads, options.monthly_read_budget),
            earliest_next_poll=wait,
        )
