"""Hacker News through Algolia's `search_by_date` (no auth).

    [[clients.sources]]
    kind = "hackernews"
    search = ["chez gégé"]
    tags = "(story,comment)"            # Algolia tag filter (default: stories and comments)

The cursor keeps, per query, the newest `created_at_i` seen; the next poll asks only for newer
hits with `numericFilters=created_at_i>N`, paging with `page` until a short page.
`refresh()` re-reads points and comment counts by item id (`/items/<id>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from veille.core.configreader import Reader
from veille.core.errors import FetchError, Problems
from veille.core.i18n import N_
from veille.core.models import Engagement, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    bounded,
    dump_cursor,
    html_to_text,
    int_of,
    load_cursor,
    parse_json,
    parse_time,
    text_of,
    web_url,
)
from veille.sources.base import DriverBase, PollContext

PAGE_LIMIT = 100
DEFAULT_API = "https://hn.algolia.com/api/v1"
DEFAULT_TAGS = "(story,comment)"
REFRESH_LIMIT = 50


@dataclass(frozen=True, slots=True)
class HackerNewsOptions:
    search: tuple[str, ...]
    tags: str = DEFAULT_TAGS
    api_base: str = DEFAULT_API
    max_pages: int = 3

    @property
    def target(self) -> str:
        return "hacker news: " + " ".join(f"“{q}”" for q in self.search)

    @property
    def secret_env(self) -> tuple[str, ...]:
        return ()


def hit_item(hit: Any) -> Item | None:
    """One Algolia hit (story or comment) or `/items/<id>` answer -> Item; None without an id."""
    object_id = text_of(hit, "objectID") or text_of(hit, "id")
    if not object_id:
        return None
    is_comment = text_of(hit, "comment_text") is not None or text_of(hit, "type") == "comment"
    text = text_of(hit, "comment_text") or text_of(hit, "story_text") or text_of(hit, "text")
    title = text_of(hit, "title") or text_of(hit, "story_title") or ""
    published = parse_time(hit.get("created_at_i")) if isinstance(hit, Mapping) else None
    return Item(
        external_id=object_id,
        text=html_to_text(text),
        title=bounded(title, 1000),
        url=f"https://news.ycombinator.com/item?id={object_id}",
        author=text_of(hit, "author"),
        author_name=text_of(hit, "author"),
        published_at=published or parse_time(text_of(hit, "created_at")),
        engagement=Engagement(score=int_of(hit, "points"), replies=None if is_comment else int_of(hit, "num_comments")),
        extra={
            k: v
            for k, v in (
                ("link", web_url(text_of(hit, "url") or text_of(hit, "story_url"))),
                ("story_id", text_of(hit, "story_id")),
            )
            if v
        },
    )


class HackerNewsDriver(DriverBase[HackerNewsOptions]):
    kind: ClassVar[str] = "hackernews"
    # Points and comments but no followers; a story or comment there is read by a large technical audience.
    reach_prior: ClassVar[float] = 0.5
    refreshes: ClassVar[bool] = True

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> HackerNewsOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        raw_search = reader.str_list("search")
        search = [q.strip() for q in raw_search] if raw_search is not None else None
        tags = reader.str("tags", DEFAULT_TAGS)
        api_base = reader.url("api_base", DEFAULT_API)
        max_pages = reader.int("max_pages", 3, min=1, max=20)
        reader.finish()
        if search is not None and (not search or any(not q for q in search)):
            reader.add("search", N_("needs at least one non-empty query"), N_('write e.g. search = ["chez gégé"]'))
        if len(problems) > before or search is None:
            return None
        return HackerNewsOptions(tuple(search), tags, api_base.rstrip("/"), max_pages)

    async def poll(self, ctx: PollContext, options: HackerNewsOptions, state: PollState) -> PollOutcome:
        cursor = load_cursor(state.cursor)
        items: dict[str, Item] = {}
        for query in options.search:
            since = cursor.get(query)
            since = int(since) if isinstance(since, int | float) else None
            newest = since
            for page in range(options.max_pages):
                params: dict[str, Any] = {"query": query, "tags": options.tags, "hitsPerPage": PAGE_LIMIT, "page": page}
                if since is not None:
                    params["numericFilters"] = f"created_at_i>{since}"
                response = await ctx.http.get(f"{options.api_base}/search_by_date", params=params)
                data = parse_json(response.body, "hackernews search")
                if not isinstance(data, Mapping) or not isinstance(data.get("hits"), list):
                    raise BadResponse("hackernews search: no `hits` list")
                for hit in data["hits"]:
                    item = hit_item(hit)
                    if item is not None:
                        items.setdefault(item.external_id, item)
                    created = int_of(hit, "created_at_i")
                    if created is not None and (newest is None or created > newest):
                        newest = created
                pages = int_of(data, "nbPages") or 0
                if since is None or len(data["hits"]) < PAGE_LIMIT or page + 1 >= pages:
                    break
            if newest is not None:
                cursor[query] = newest
        return PollOutcome(items=list(items.values()), cursor=dump_cursor(cursor))

    async def refresh(self, ctx: PollContext, options: HackerNewsOptions, external_ids: list[str]) -> list[Item]:
        """Current points of items by id (one request each, at most 50 per call)."""
        found: list[Item] = []
        for item_id in [i for i in external_ids if i.isdigit()][:REFRESH_LIMIT]:
            try:
                response = await ctx.http.get(f"{options.api_base}/items/{item_id}")
                item = hit_item(parse_json(response.body, "hackernews item"))
            except FetchError as exc:
                ctx.log.info("hackernews.refresh_failed", extra={"item": item_id, "kind": exc.kind.value})
                continue
            if item is not None:
                found.append(item)
        return found
