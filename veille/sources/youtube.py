"""YouTube: comment threads on the client's channel (`commentThreads.list`), with a daily quota.

    [[clients.sources]]
    kind = "youtube"
    channel_id = "UCa-vrCLQHviTOVnEKDOdetQ"
    key_env = "YOUTUBE_API_KEY"
    daily_quota = 500                    # units per day for this source (a list call costs 1)

Once a day the channel's subscriber count (`channels.list`, 1 unit) goes to the audience series.

Every comment on the client's channel addresses the client: items are `direct`. Replies come with their
thread (`part=snippet,replies`: the few latest of each thread on the pages read). Own answers (the reply
inbox): `channel_id` is the client's own account; the channel's reply under a comment is kept as
`from_client` in that comment's conversation (the top-level comment id), which it closes, and the customer's
next reply in the thread reopens it. The channel's own top-level comments are no hits. The API key
goes in the query string (`key=`), so it must never reach a log or an error message: errors here
carry only the API's reason code, and the HTTP layer redacts URLs. Quota days end at midnight
Pacific time, as Google counts them; use is kept in the cursor JSON
({"day": "2026-11-23", "units": 12, "newest": "..."}) and shown in `veille sources`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from veille.core.configreader import Reader
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, Problems, RateLimited
from veille.core.i18n import N_
from veille.core.models import Engagement, ErrorKind, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    bounded,
    dig,
    dump_cursor,
    html_to_text,
    int_of,
    list_of,
    load_cursor,
    parse_json,
    parse_time,
    require_secret,
    text_of,
    web_url,
)
from veille.sources.base import DriverBase, PollContext

PACIFIC = ZoneInfo("America/Los_Angeles")
LIST_COST = 1
PAGE_LIMIT = 100
DEFAULT_API = "https://www.googleapis.com/youtube/v3"
_CHANNEL = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_QUOTA = {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"}
_RATE = {"rateLimitExceeded", "userRateLimitExceeded"}
_AUTH = {
    "keyInvalid",
    "keyExpired",
    "accessNotConfigured",
    "ipRefererBlocked",
    "forbidden",
    "API_KEY_INVALID",
    "PERMISSION_DENIED",
    "SERVICE_DISABLED",
}


@dataclass(frozen=True, slots=True)
class YoutubeOptions:
    channel_id: str
    key_env: str
    daily_quota: int = 500
    api_base: str = DEFAULT_API
    max_pages: int = 5

    @property
    def target(self) -> str:
        return f"youtube: {self.channel_id}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.key_env,)


def quota_day(now: datetime) -> str:
    return now.astimezone(PACIFIC).date().isoformat()


def seconds_to_quota_reset(now: datetime) -> float:
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    return max((midnight - local).total_seconds(), 60.0)


def quota_note(left: int, quota: int) -> str:
    return N_("YouTube quota: {left}/{quota} units left today").format(left=left, quota=quota)


def thread_item(thread: Any) -> Item | None:
    """One commentThread -> Item (its top-level comment); None without an id."""
    comment = dig(thread, "snippet", "topLevelComment")
    video = text_of(comment, "snippet", "videoId") or text_of(thread, "snippet", "videoId")
    return comment_item(
        comment, video, fallback_id=text_of(thread, "id"), replies=int_of(thread, "snippet", "totalReplyCount")
    )


def thread_items(thread: Any, channel_id: str) -> list[Item]:
    """A commentThread's top-level comment and the replies that came with it, as the reply inbox follows
    them: a comment is its own conversation, which a reply of the channel (`channel_id`) closes."""
    top = thread_item(thread)
    if top is None:
        return []
    video = top.extra.get("video_id")
    found = [] if top.author == channel_id else [replace(top, parent_id=video, thread_id=video)]
    for reply in list_of(thread, "replies", "comments"):
        item = comment_item(reply, video)
        if item is None:
            continue
        parent = text_of(reply, "snippet", "parentId") or top.external_id
        found.append(replace(item, parent_id=parent, thread_id=video, from_client=item.author == channel_id))
    return found


def comment_item(
    comment: Any, video: str | None, *, fallback_id: str | None = None, replies: int | None = None
) -> Item | None:
    """One comment (top-level or reply) -> Item; None without an id."""
    comment_id = text_of(comment, "id") or fallback_id
    if not comment_id:
        return None
    snippet = dig(comment, "snippet") or {}
    text = text_of(snippet, "textOriginal")
    if text is None:
        text = html_to_text(text_of(snippet, "textDisplay"))
    author_url = web_url(text_of(snippet, "authorChannelUrl"))
    return Item(
        external_id=comment_id,
        text=bounded(text),
        url=f"https://www.youtube.com/watch?v={video}&lc={comment_id}" if video else author_url,
        author=text_of(snippet, "authorChannelId", "value") or author_url,
        author_name=text_of(snippet, "authorDisplayName"),
        published_at=parse_time(text_of(snippet, "publishedAt")),
        engagement=Engagement(likes=int_of(snippet, "likeCount"), replies=replies),
        direct=True,
        extra={"video_id": video} if video else {},
    )


def _reason(body: bytes) -> str | None:
    """The machine reason of a Google API error (`error.errors[0].reason` or `error.status`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return text_of(data, "error", "errors", 0, "reason") or text_of(data, "error", "status")


class YoutubeDriver(DriverBase[YoutubeOptions]):
    kind: ClassVar[str] = "youtube"
    # Comments on the client's own channel: seen by the video's viewers, likes given, no followers.
    reach_prior: ClassVar[float] = 0.3
    sees_own_answers: ClassVar[bool] = True  # the channel's replies come with their threads

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> YoutubeOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        channel_id = reader.str("channel_id")
        key_env = reader.env_name("key_env")
        daily_quota = reader.int("daily_quota", 500, min=1, max=1_000_000)
        api_base = reader.url("api_base", DEFAULT_API)
        max_pages = reader.int("max_pages", 5, min=1, max=50)
        reader.finish()
        if channel_id and not _CHANNEL.match(channel_id):
            reader.add(
                "channel_id",
                N_("{channel_id!r} is not a channel id").format(channel_id=channel_id),
                N_("use the id starting with UC (24 characters) from the channel's page"),
            )
        if len(problems) > before or channel_id is None or key_env is None:
            return None
        return YoutubeOptions(channel_id, key_env, daily_quota, api_base.rstrip("/"), max_pages)

    def _raise_for(self, status: int, body: bytes, now: datetime) -> None:
        reason = _reason(body)
        if reason in _QUOTA:
            raise RateLimited(
                N_("youtube: daily API quota exhausted"), retry_after=seconds_to_quota_reset(now), kind=ErrorKind.QUOTA
            )
        if reason in _RATE or status == 429:
            raise RateLimited(N_("youtube: {reason}").format(reason=reason or N_("rate limited")), retry_after=60.0)
        if reason in _AUTH or (status == 403 and reason is None):
            raise AuthFailed(N_("youtube: API key refused ({reason})").format(reason=reason or status))
        raise PermanentFetchError(ErrorKind.HTTP_4XX, N_("youtube: {reason}").format(reason=reason or status))

    async def poll(self, ctx: PollContext, options: YoutubeOptions, state: PollState) -> PollOutcome:
        key = require_secret(ctx, options.key_env)
        now = ctx.clock.now()
        day = quota_day(now)
        cursor = load_cursor(state.cursor)
        units = int(cursor.get("units") or 0) if cursor.get("day") == day else 0
        since = parse_time(cursor.get("newest"))
        newest = since
        items: dict[str, Item] = {}
        page_token: str | None = None
        failure: FetchError | None = None
        for page in range(options.max_pages):
            if units + LIST_COST > options.daily_quota:
                if page == 0:
                    raise RateLimited(
                        N_("youtube: source quota spent ({units}/{daily_quota})").format(
                            units=units, daily_quota=options.daily_quota
                        ),
                        retry_after=seconds_to_quota_reset(now),
                        kind=ErrorKind.QUOTA,
                    )
                break
            params: dict[str, Any] = {
                "part": "snippet,replies",
                "allThreadsRelatedToChannelId": options.channel_id,
                "maxResults": PAGE_LIMIT,
                "order": "time",
                "textFormat": "plainText",
                "key": key,
            }
            if page_token:
                params["pageToken"] = page_token
            try:
                units += LIST_COST  # Google counts the call even when it fails
                response = await ctx.http.get(
                    f"{options.api_base}/commentThreads", params=params, accept_statuses=frozenset({400, 403, 429})
                )
                if response.status != 200:
                    self._raise_for(response.status, response.body, now)
                data = parse_json(response.body, "youtube commentThreads")
                if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
                    raise BadResponse("youtube commentThreads: no `items` list")
            except FetchError as exc:
                if page == 0:
                    raise
                failure = exc
                break
            reached_known = False
            for thread in data["items"]:
                for item in thread_items(thread, options.channel_id):
                    when = item.published_at
                    if since is not None and when is not None and when <= since:
                        reached_known = reached_known or item.parent_id == item.thread_id  # a known thread
                        continue
                    items.setdefault(item.external_id, item)
                    if when is not None and (newest is None or when > newest):
                        newest = when
            page_token = text_of(data, "nextPageToken")
            if since is None or reached_known or not page_token:
                break
        audience: dict[str, float] = {}
        audience_day = cursor.get("audience_day")
        if audience_day != day and failure is None and units + LIST_COST <= options.daily_quota:
            units += LIST_COST
            subscribers = await self._subscribers(ctx, options, key)
            if subscribers is not None:
                audience["followers"] = subscribers
            audience_day = day
        new_cursor: dict[str, Any] = {"day": day, "units": units}
        kept = since if failure else newest
        if kept is not None:
            new_cursor["newest"] = kept.isoformat()
        if audience_day:
            new_cursor["audience_day"] = audience_day
        return PollOutcome(
            items=list(items.values()),
            cursor=dump_cursor(new_cursor),
            note=quota_note(options.daily_quota - units, options.daily_quota),
            earliest_next_poll=failure.retry_after if failure else None,
            audience=audience,
        )

    async def _subscribers(self, ctx: PollContext, options: YoutubeOptions, key: str) -> float | None:
        """The channel's subscriber count (`channels.list`, 1 unit, once a day); None when hidden or on failure."""
        try:
            response = await ctx.http.get(
                f"{options.api_base}/channels",
                params={"part": "statistics", "id": options.channel_id, "key": key},
                accept_statuses=frozenset({400, 403, 404, 429}),
            )
            data = parse_json(response.body, "youtube channels") if response.status == 200 else None
        except FetchError as exc:
            ctx.log.info("youtube subscriber count not read: %s", exc.kind.value)
            return None
        statistics = dig(data, "items", 0, "statistics")
        if statistics is None or dig(statistics, "hiddenSubscriberCount") is True:
            return None
        count = int_of(statistics, "subscriberCount")  # a numeric string
        return float(count) if count is not None else None
