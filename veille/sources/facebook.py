"""Facebook Page: visitor posts, posts that tag the page, comments and replies, Messenger conversations.

    [[clients.sources]]
    kind = "facebook"
    page_id = "104512345678901"
    token_env = "FB_PAGE_TOKEN_CHEZGEGE"   # a Page access token (pages_read_engagement,
                                           # pages_read_user_content, pages_messaging)
    recent_posts = 10                      # the page's latest posts whose comments are followed
    messages = true                        # Messenger conversations (private hits)
    tagged = true                          # posts by others that tag the page (kept on a keyword match)

What is on the page (visitor posts, comments, replies, messages) addresses the client and is stored
whatever the keywords; posts that tag the page are found elsewhere, so the client's keywords select
them. The page's own posts and its own answers are not hits. Each poll reads:

- `/{page}/feed` newest first, until the newest post already seen (first poll: the first page);
- the comments of the `recent_posts` latest posts, only for the posts whose comment count moved,
  newest first (`filter=stream`: replies included, with their `parent`), until the newest known one;
- `/{page}/tagged` and `/{page}/conversations` (messages inline, newest first) the same way;
- once a day, the page's follower count (the audience series).

The cursor JSON keeps the newest time seen per stream and, per followed post, its comment count and
newest comment time. The Graph API version, errors and usage headers are handled in `graph.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from veille.core.configreader import Reader
from veille.core.errors import Problems
from veille.core.models import Engagement, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    bounded,
    dig,
    int_of,
    load_cursor,
    parse_time,
    require_secret,
    text_of,
    web_url,
)
from veille.sources.base import DriverBase, PollContext
from veille.sources.graph import (
    DEFAULT_GRAPH,
    PAGE_SIZE,
    Graph,
    GraphPoll,
    Streams,
    iso,
    latest,
    newer,
    who_wrote,
)

COMMENT_PAGE = 50
POST_FIELDS = (
    "id,message,story,created_time,from{id,name},permalink_url,shares,"
    "comments.summary(true).limit(0),reactions.summary(true).limit(0)"
)
TAGGED_FIELDS = "id,message,created_time,tagged_time,from{id,name},permalink_url"
COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id},permalink_url,like_count,comment_count"
READ_PERMISSION = "pages_read_engagement"
USER_CONTENT_PERMISSION = "pages_read_user_content"
MESSAGING_PERMISSION = "pages_messaging"


@dataclass(frozen=True, slots=True)
class FacebookOptions:
    page_id: str
    token_env: str
    api_base: str = DEFAULT_GRAPH
    recent_posts: int = 10
    messages: bool = True
    tagged: bool = True
    max_pages: int = 3

    @property
    def target(self) -> str:
        return f"facebook: {self.page_id}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.token_env,)


# --- parsers (also used by the webhook events and the corpus tests) ---------------------------------


def post_item(post: Any, *, tagged: bool = False) -> Item | None:
    """A post on the page by someone else (or tagging it) -> Item; None without an id."""
    post_id = text_of(post, "id")
    if not post_id:
        return None
    author, name, who = who_wrote(post)
    return Item(
        external_id=post_id,
        text=bounded(text_of(post, "message") or text_of(post, "story")),
        url=web_url(text_of(post, "permalink_url")),
        author=author,
        author_name=name,
        published_at=parse_time(dig(post, "created_time")),  # ISO from the Graph API, epoch from webhooks
        engagement=Engagement(
            likes=int_of(post, "reactions", "summary", "total_count"),
            reposts=int_of(post, "shares", "count"),
            replies=int_of(post, "comments", "summary", "total_count"),
        ),
        direct=True,
        needs_keywords=tagged,
        thread_id=post_id,
        extra={"type": "tagged" if tagged else "visitor_post", **who},
    )


def comment_item(comment: Any, post_id: str | None) -> Item | None:
    """A comment or reply under a page post -> Item whose parent is the comment answered (or the post)."""
    comment_id = text_of(comment, "id")
    if not comment_id:
        return None
    author, name, who = who_wrote(comment)
    parent = text_of(comment, "parent", "id")
    thread = post_id or (comment_id.split("_", 1)[0] if "_" in comment_id else None)
    return Item(
        external_id=comment_id,
        text=bounded(text_of(comment, "message")),
        url=web_url(text_of(comment, "permalink_url")),
        author=author,
        author_name=name,
        published_at=parse_time(dig(comment, "created_time")),
        engagement=Engagement(likes=int_of(comment, "like_count"), replies=int_of(comment, "comment_count")),
        direct=True,
        thread_id=thread,
        parent_id=parent or thread,
        extra={"type": "reply" if parent else "comment", **who},
    )


# --- the driver ------------------------------------------------------------------------------------


class _Poll(GraphPoll):
    def __init__(self, ctx: PollContext, options: FacebookOptions, graph: Graph, cursor: dict[str, Any]) -> None:
        super().__init__(ctx, graph, cursor, options.max_pages)
        self.options = options

    async def feed(self) -> None:
        """Visitor posts, then the comments of the page's recent posts whose comment count moved."""
        page_id = self.options.page_id
        since = self.since("feed")
        newest = since
        recent: list[Any] = []
        page = await self.graph.page(
            f"{page_id}/feed",
            {"fields": POST_FIELDS, "limit": PAGE_SIZE},
            what=f"facebook {page_id} feed",
            permission=READ_PERMISSION,
        )
        rows = list(page.data)
        after = page.after
        pages = 1
        while since is not None and after and pages < self.options.max_pages and not self.graph.near_budget:
            oldest = parse_time(text_of(rows[-1], "created_time")) if rows else None
            if oldest is not None and oldest <= since:
                break
            more = await self.graph.page(
                f"{page_id}/feed",
                {"fields": POST_FIELDS, "limit": PAGE_SIZE},
                what=f"facebook {page_id} feed",
                permission=READ_PERMISSION,
                after=after,
            )
            rows.extend(more.data)
            after, pages = more.after, pages + 1
        for post in rows:
            when = parse_time(text_of(post, "created_time"))
            if text_of(post, "from", "id") != page_id and newer(when, since):
                self.add(post_item(post), page_id)
            newest = latest(newest, when)
            if len(recent) < self.options.recent_posts and text_of(post, "id"):
                recent.append(post)
        self.cursor["feed"] = iso(newest)
        await self.comments(recent)

    async def comments(self, recent: list[Any]) -> None:
        saved = self.cursor.get("posts")
        followed: dict[str, Any] = saved if isinstance(saved, dict) else {}
        kept: dict[str, Any] = {}
        for post in recent:
            post_id = text_of(post, "id") or ""
            entry = followed.get(post_id)
            seen: dict[str, Any] = entry if isinstance(entry, dict) else {}
            count = int_of(post, "comments", "summary", "total_count")
            kept[post_id] = seen
            if self.graph.near_budget or (count is not None and count == seen.get("n")) or count == 0:
                if count == 0:
                    kept[post_id] = {"n": 0, "t": seen.get("t")}
                continue
            since = parse_time(seen.get("t"))
            newest = since
            async for comment, when in self.pages(
                f"{post_id}/comments",
                {"fields": COMMENT_FIELDS, "filter": "stream", "order": "reverse_chronological", "limit": COMMENT_PAGE},
                since,
                "created_time",
                f"facebook comments of {post_id}",
                READ_PERMISSION,
            ):
                self.add(comment_item(comment, post_id), self.options.page_id)
                newest = latest(newest, when)
            kept[post_id] = {"n": count, "t": iso(newest)}
        self.cursor["posts"] = kept

    async def tagged(self) -> None:
        page_id = self.options.page_id
        since = newest = self.since("tagged")
        async for post, when in self.pages(
            f"{page_id}/tagged",
            {"fields": TAGGED_FIELDS, "limit": PAGE_SIZE},
            since,
            "tagged_time",
            f"facebook {page_id} tagged",
            USER_CONTENT_PERMISSION,
        ):
            self.add(post_item(post, tagged=True), page_id)
            newest = latest(newest, when)
        self.cursor["tagged"] = iso(newest)


class FacebookDriver(DriverBase[FacebookOptions]):
    kind: ClassVar[str] = "facebook"
    sees_own_answers: ClassVar[bool] = True
    reach_prior: ClassVar[float] = 0.3  # what is on the page is read by the page's visitors (Graph gives no figure)

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> FacebookOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        page_id = reader.str("page_id")
        token_env = reader.env_name("token_env")
        api_base = reader.url("api_base", DEFAULT_GRAPH)
        recent_posts = reader.int("recent_posts", 10, min=0, max=50)
        messages = reader.bool("messages", True)
        tagged = reader.bool("tagged", True)
        max_pages = reader.int("max_pages", 3, min=1, max=20)
        reader.finish()
        if page_id is not None and not page_id.isdigit():
            reader.add(
                "page_id",
                f"{page_id!r} is not a numeric page id",
                "use the id shown in the page's About > Page transparency, or in Meta Business Suite settings",
            )
        if len(problems) > before or page_id is None or token_env is None:
            return None
        return FacebookOptions(page_id, token_env, api_base.rstrip("/"), recent_posts, messages, tagged, max_pages)

    async def poll(self, ctx: PollContext, options: FacebookOptions, state: PollState) -> PollOutcome:
        graph = Graph(ctx, options.api_base, require_secret(ctx, options.token_env))
        run = _Poll(ctx, options, graph, load_cursor(state.cursor))
        streams = Streams(ctx, graph, run.cursor.get("denied"))
        await streams.run("posts", run.feed)
        if options.tagged:
            await streams.run("tagged", run.tagged)
        if options.messages:
            await streams.run(
                "messages",
                lambda: run.conversations(options.page_id, options.page_id, "messages", MESSAGING_PERMISSION),
            )
        await streams.run(
            "audience",
            lambda: run.audience_once_a_day(
                options.page_id,
                "id,name,followers_count,fan_count",
                f"facebook page {options.page_id}",
                READ_PERMISSION,
            ),
            side=True,
        )
        return run.outcome(streams)
