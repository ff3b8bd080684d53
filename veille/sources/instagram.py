"""Instagram (a business or creator account linked to a Facebook Page), through the Graph API.

    [[clients.sources]]
    kind = "instagram"
    page_id = "104512345678901"           # the Facebook Page the account is linked to
    token_env = "FB_PAGE_TOKEN_CHEZGEGE"  # that Page's access token (instagram_basic,
                                          # instagram_manage_comments, instagram_manage_messages)
    # ig_user_id = "17841400000000000"    # found from the page when absent
    hashtags = ["chezgege"]               # hashtag search, kept on a keyword match
    hashtag_budget = 30                   # distinct hashtags per rolling 7 days (Instagram's limit)
    recent_media = 10                     # the account's latest media whose comments are followed
    messages = true                       # Instagram direct messages (private hits)
    tagged = true                         # media that tag the account (kept on a keyword match)

Comments and replies on the account's media and direct messages address the client and are stored
whatever the keywords; media that tag the account and hashtag results are found elsewhere, so the
client's keywords select them. Instagram allows 30 distinct hashtags per account per rolling 7 days
(`ig_hashtag_search` and the hashtag's media both count, for 7 days after a hashtag's first use):
the cursor keeps each hashtag's id and when its current 7-day window began, a hashtag outside its
window is only queried while the budget has room, so the limit is never exceeded, and `veille sources`
shows what is left. The account's follower count is read once a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from veille.core.configreader import Reader
from veille.core.errors import PermanentFetchError, Problems
from veille.core.i18n import N_
from veille.core.models import Engagement, ErrorKind, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import bounded, int_of, list_of, load_cursor, parse_time, require_secret, text_of, web_url
from veille.sources.base import DriverBase, PollContext
from veille.sources.graph import DEFAULT_GRAPH, PAGE_SIZE, Graph, GraphPoll, Streams, as_kept, iso, latest, newer

HASHTAG_LIMIT = 30  # distinct hashtags per account per rolling 7 days
HASHTAG_WINDOW = 7 * 86_400.0
REFUSAL_PAUSE = 86_400.0  # after Instagram refused a hashtag search for its limit, no new one for a day
MEDIA_FIELDS = "id,caption,timestamp,permalink,username,comments_count,like_count,media_type"
HASHTAG_MEDIA_FIELDS = "id,caption,timestamp,permalink,comments_count,like_count,media_type"
REPLY_FIELDS = "id,text,timestamp,username,from{id,username},like_count"
COMMENT_FIELDS = f"{REPLY_FIELDS},replies{{{REPLY_FIELDS}}}"
COMMENT_PAGE = 50
BASIC = "instagram_basic"
COMMENTS = "instagram_manage_comments"
MESSAGES = "instagram_manage_messages"


@dataclass(frozen=True, slots=True)
class InstagramOptions:
    page_id: str
    token_env: str
    ig_user_id: str | None = None
    hashtags: tuple[str, ...] = ()
    hashtag_budget: int = HASHTAG_LIMIT
    recent_media: int = 10
    messages: bool = True
    tagged: bool = True
    api_base: str = DEFAULT_GRAPH
    max_pages: int = 3

    @property
    def target(self) -> str:
        return f"instagram: {self.ig_user_id or 'page ' + self.page_id}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.token_env,)


# --- parsers (also used by the webhook events and the corpus tests) ---------------------------------


def media_item(media: Any, *, found: str) -> Item | None:
    """A media found elsewhere (tagging the account, or under a hashtag): kept only on a keyword match."""
    media_id = text_of(media, "id")
    if not media_id:
        return None
    username = text_of(media, "username")
    return Item(
        external_id=media_id,
        text=bounded(text_of(media, "caption")),
        url=web_url(text_of(media, "permalink")),
        author=f"@{username}" if username else None,
        author_name=username,
        published_at=parse_time(text_of(media, "timestamp")),
        engagement=Engagement(likes=int_of(media, "like_count"), replies=int_of(media, "comments_count")),
        direct=found == "tagged",
        needs_keywords=True,
        thread_id=media_id,
        extra={"type": found},
    )


def comment_item(comment: Any, media_id: str | None, parent_id: str | None = None) -> Item | None:
    """A comment (or a reply, with its parent comment's id) on one of the account's media."""
    comment_id = text_of(comment, "id")
    if not comment_id:
        return None
    username = text_of(comment, "username") or text_of(comment, "from", "username")
    parent = parent_id or text_of(comment, "parent_id")
    author_id = text_of(comment, "from", "id")
    media = media_id or text_of(comment, "media", "id")
    return Item(
        external_id=comment_id,
        text=bounded(text_of(comment, "text")),
        author=f"@{username}" if username else author_id,
        author_name=username,
        published_at=parse_time(text_of(comment, "timestamp")),
        engagement=Engagement(likes=int_of(comment, "like_count")),
        direct=True,
        thread_id=media,
        parent_id=parent or media,
        extra={"type": "reply" if parent else "comment", **({"author_id": author_id} if author_id else {})},
    )


def comment_items(comment: Any, media_id: str | None) -> list[Item]:
    """A comment and its inline replies."""
    top = comment_item(comment, media_id)
    if top is None:
        return []
    replies = [comment_item(r, media_id, top.external_id) for r in list_of(comment, "replies", "data")]
    return [top, *(r for r in replies if r is not None)]


async def fetch_mention(
    ctx: PollContext, options: InstagramOptions, account: str, media_id: str, comment_id: str
) -> Item | None:
    """What an Instagram `mentions` webhook names by id only: the comment (or the caption) that @-mentions
    the account, read through its `mentioned_comment` / `mentioned_media` fields. It is found outside the
    account's own media, so it is kept on a keyword match, like a media that tags the account."""
    graph = Graph(ctx, options.api_base, require_secret(ctx, options.token_env))
    if comment_id:
        fields = f"mentioned_comment.comment_id({comment_id}){{{REPLY_FIELDS},media{{id}}}}"
        body = await graph.get(account, {"fields": fields}, what=f"instagram mention {comment_id}", permission=BASIC)
        comment = body.get("mentioned_comment")
        item = comment_item(comment, text_of(comment, "media", "id") or media_id)
        return replace(item, needs_keywords=True, extra={**item.extra, "type": "mention"}) if item else None
    fields = f"mentioned_media.media_id({media_id}){{{MEDIA_FIELDS}}}"
    body = await graph.get(account, {"fields": fields}, what=f"instagram mention {media_id}", permission=BASIC)
    media = body.get("mentioned_media")
    return media_item({"id": media_id, **media}, found="tagged") if isinstance(media, Mapping) else None


# --- the hashtag budget ------------------------------------------------------------------------------


class HashtagBudget:
    """Distinct hashtags queried in the rolling 7-day window, from the cursor's {tag: {id, since}}."""

    def __init__(self, saved: Any, limit: int, now: float) -> None:
        self.limit, self.now = limit, now
        self.tags: dict[str, dict[str, Any]] = {
            tag: dict(entry)
            for tag, entry in (saved.items() if isinstance(saved, Mapping) else ())
            if isinstance(entry, Mapping)
        }

    def _open(self, tag: str) -> bool:
        since = self.tags.get(tag, {}).get("since")
        return isinstance(since, int | float) and self.now - since < HASHTAG_WINDOW

    @property
    def used(self) -> int:
        return sum(1 for tag in self.tags if self._open(tag))

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)

    def take(self, tag: str) -> bool:
        """Whether `tag` may be queried now; opens its 7-day window when it was closed."""
        if self._open(tag):
            return True
        if self.used >= self.limit:
            return False
        self.tags.setdefault(tag, {})["since"] = self.now
        return True

    def resets_in(self) -> float:
        """Seconds until the oldest open window closes (the next hashtag can then be queried)."""
        opened = [e["since"] for t, e in self.tags.items() if self._open(t)]
        return max(min(opened) + HASHTAG_WINDOW - self.now, 60.0) if opened else 60.0


def budget_note(left: int, limit: int) -> str:
    return N_("Instagram hashtags: {left}/{limit} left over 7 days").format(left=left, limit=limit)


# --- the driver ------------------------------------------------------------------------------------


class _Poll(GraphPoll):
    def __init__(self, ctx: PollContext, options: InstagramOptions, graph: Graph, cursor: dict[str, Any]) -> None:
        super().__init__(ctx, graph, cursor, options.max_pages)
        self.options = options
        self.ig = ""
        self.budget = HashtagBudget(cursor.get("hashtags"), options.hashtag_budget, ctx.clock.now().timestamp())
        self.skipped: list[str] = []

    @property
    def refused(self) -> bool:
        """Instagram refused a hashtag search for its limit less than REFUSAL_PAUSE ago."""
        refused_at = self.cursor.get("hashtags_refused_at")
        return isinstance(refused_at, int | float) and self.budget.now - refused_at < REFUSAL_PAUSE

    async def account(self) -> str:
        """The Instagram user id: configured, remembered, or read from the page (linked accounts only)."""
        known = self.options.ig_user_id or text_of(self.cursor, "ig")
        if known:
            self.ig = known
            return known
        page_id = self.options.page_id
        body = await self.graph.get(
            page_id, {"fields": "instagram_business_account"}, what=f"instagram page {page_id}", permission=BASIC
        )
        found = text_of(body, "instagram_business_account", "id")
        if not found:
            raise PermanentFetchError(
                ErrorKind.HTTP_4XX,
                f"instagram: page {page_id} has no linked Instagram business or creator account; link it in "
                "Meta Business Suite > Settings > Instagram accounts (a personal account cannot be read)",
            )
        self.cursor["ig"] = self.ig = found
        return found

    def keep(self, item: Item | None) -> None:
        if item is None:
            return
        username = self.cursor.get("username")
        by_owner = item.extra.get("author_id") == self.ig or bool(username and item.author == f"@{username}")
        if kept := as_kept(item, by_owner):
            self.items.setdefault(item.external_id, kept)

    async def media_comments(self) -> None:
        """Comments and replies on the latest media whose comment count moved since the last poll."""
        page = await self.graph.page(
            f"{self.ig}/media",
            {"fields": MEDIA_FIELDS, "limit": self.options.recent_media},
            what=f"instagram {self.ig} media",
            permission=BASIC,
        )
        saved = self.cursor.get("media")
        followed: dict[str, Any] = saved if isinstance(saved, dict) else {}
        kept: dict[str, Any] = {}
        for media in page.data[: self.options.recent_media]:
            media_id = text_of(media, "id")
            if not media_id:
                continue
            if username := text_of(media, "username"):
                self.cursor["username"] = username
            entry = followed.get(media_id)
            seen: dict[str, Any] = entry if isinstance(entry, dict) else {}
            count = int_of(media, "comments_count")
            kept[media_id] = seen
            if self.graph.near_budget or count == 0 or (count is not None and count == seen.get("n")):
                continue
            since = parse_time(seen.get("t"))
            newest = since
            after: str | None = None
            for _ in range(self.max_pages):
                comments = await self.graph.page(
                    f"{media_id}/comments",
                    {"fields": COMMENT_FIELDS, "limit": COMMENT_PAGE},
                    what=f"instagram comments of {media_id}",
                    permission=COMMENTS,
                    after=after,
                )
                fresh = 0
                for comment in comments.data:
                    for item in comment_items(comment, media_id):
                        if newer(item.published_at, since):
                            fresh += 1
                            self.keep(item)
                            newest = latest(newest, item.published_at)
                after = comments.after
                if since is None or not fresh or not after or self.graph.near_budget:
                    break  # the order of this edge is not documented: stop at a page with nothing new
            kept[media_id] = {"n": count, "t": iso(newest)}
        self.cursor["media"] = kept

    async def tags(self) -> None:
        since = newest = self.since("tags")
        async for media, when in self.pages(
            f"{self.ig}/tags",
            {"fields": MEDIA_FIELDS, "limit": PAGE_SIZE},
            since,
            "timestamp",
            f"instagram {self.ig} tags",
            COMMENTS,
        ):
            self.keep(media_item(media, found="tagged"))
            newest = latest(newest, when)
        self.cursor["tags"] = iso(newest)

    async def hashtag(self, tag: str) -> None:
        entry = self.budget.tags.get(tag, {})
        if (self.refused and not entry.get("id")) or not self.budget.take(tag):
            self.skipped.append(tag)
            return
        entry = self.budget.tags[tag]
        if not entry.get("id"):
            try:
                body = await self.graph.get(
                    "ig_hashtag_search",
                    {"user_id": self.ig, "q": tag},
                    what=f"instagram hashtag #{tag}",
                    permission=BASIC,
                )
            except PermanentFetchError as exc:
                if "hashtag" not in exc.message.lower():
                    raise
                # Instagram counts the account's searches by every app: its budget is spent elsewhere.
                # No new hashtag is searched for a day (no retry loop); known ones go on.
                del self.budget.tags[tag]
                self.cursor["hashtags_refused_at"] = self.budget.now
                self.skipped.append(tag)
                return
            found = text_of(body, "data", 0, "id")
            if not found:
                entry["id"] = "none"  # Instagram knows no such hashtag: not asked again
                return
            entry["id"] = found
        if entry["id"] == "none":
            return
        since = parse_time(entry.get("t"))
        newest: datetime | None = since
        async for media, when in self.pages(
            f"{entry['id']}/recent_media",
            {"user_id": self.ig, "fields": HASHTAG_MEDIA_FIELDS, "limit": PAGE_SIZE},
            since,
            "timestamp",
            f"instagram hashtag #{tag}",
            BASIC,
        ):
            self.keep(media_item(media, found="hashtag"))
            newest = latest(newest, when)
        entry["t"] = iso(newest)

    async def hashtags(self) -> None:
        for tag in self.options.hashtags:
            if self.graph.near_budget:
                break
            await self.hashtag(tag)
        self.cursor["hashtags"] = self.budget.tags
        if self.skipped:
            self.ctx.log.warning(
                "instagram hashtag budget spent (%d/%d in 7 days): #%s not read until %.0f h from now",
                self.budget.used,
                self.budget.limit,
                ", #".join(self.skipped),
                self.budget.resets_in() / 3600,
            )


class InstagramDriver(DriverBase[InstagramOptions]):
    kind: ClassVar[str] = "instagram"
    sees_own_answers: ClassVar[bool] = True
    reach_prior: ClassVar[float] = 0.3  # comments are read by the account's followers (no figure given)

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> InstagramOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        page_id = reader.str("page_id")
        token_env = reader.env_name("token_env")
        ig_user_id = reader.str("ig_user_id", None)
        hashtags = reader.str_list("hashtags", [])
        budget = reader.int("hashtag_budget", HASHTAG_LIMIT, min=0, max=HASHTAG_LIMIT)
        recent_media = reader.int("recent_media", 10, min=0, max=50)
        messages = reader.bool("messages", True)
        tagged = reader.bool("tagged", True)
        api_base = reader.url("api_base", DEFAULT_GRAPH)
        max_pages = reader.int("max_pages", 3, min=1, max=20)
        reader.finish()
        for key, value in (("page_id", page_id), ("ig_user_id", ig_user_id)):
            if value is not None and not value.isdigit():
                reader.add(key, f"{value!r} is not a numeric id", "copy the id from Meta Business Suite settings")
        tags = [t.strip().lstrip("#").lower() for t in hashtags or []]
        if any(not t or " " in t for t in tags):
            reader.add("hashtags", "holds an empty hashtag or one with a space", 'write e.g. hashtags = ["chezgege"]')
        if len(set(tags)) > (budget if budget is not None else HASHTAG_LIMIT):
            reader.add(
                "hashtags",
                f"{len(set(tags))} hashtags exceed the budget of {budget} per 7 days",
                "keep at most hashtag_budget hashtags (Instagram allows 30 per account)",
            )
        if len(problems) > before or page_id is None or token_env is None:
            return None
        return InstagramOptions(
            page_id,
            token_env,
            ig_user_id,
            tuple(dict.fromkeys(tags)),
            budget,
            recent_media,
            messages,
            tagged,
            api_base.rstrip("/"),
            max_pages,
        )

    async def poll(self, ctx: PollContext, options: InstagramOptions, state: PollState) -> PollOutcome:
        graph = Graph(ctx, options.api_base, require_secret(ctx, options.token_env))
        run = _Poll(ctx, options, graph, load_cursor(state.cursor))
        ig = await run.account()  # a page without a linked account fails the whole poll, clearly
        streams = Streams(ctx, graph, run.cursor.get("denied"))
        await streams.run("comments", run.media_comments)
        if options.tagged:
            await streams.run("tags", run.tags)
        if options.hashtags:
            await streams.run("hashtags", run.hashtags)
        if options.messages:
            await streams.run(
                "messages", lambda: run.conversations(options.page_id, ig, "messages", MESSAGES, platform="instagram")
            )
        await streams.run(
            "audience",
            lambda: run.audience_once_a_day(ig, "id,username,followers_count", f"instagram {ig}", BASIC),
            side=True,
        )
        outcome = run.outcome(streams)
        notes = [n for n in (outcome.note,) if n]
        if options.hashtags:
            notes.append(budget_note(0 if run.refused else run.budget.left, run.budget.limit))
            if run.skipped:
                skipped = ", #".join(run.skipped)
                notes.append(N_("hashtag budget spent: #{hashtags} not read").format(hashtags=skipped))
        outcome.note = "; ".join(notes) or None
        return outcome
