"""Google reviews of the client's own location, through the Business Profile API (owner access).

    [[clients.sources]]
    kind = "google-reviews"
    account_id = "123456789012345678901"
    location_id = "9876543210987654321"
    client_id_env = "GOOGLE_CLIENT_ID"
    client_secret_env = "GOOGLE_CLIENT_SECRET"
    refresh_token_env = "GOOGLE_REFRESH_TOKEN_CHEZGEGE"   # scope business.manage

`GET accounts/{a}/locations/{l}/reviews?orderBy=updateTime desc` gives every review with its star
rating, text, reviewer, create and update times and the owner's reply, plus the location's average
rating and review count. Pages are read newest update first until the newest update already seen, so
an edited review comes back (its new text replaces the old and is scored again). Every review addresses
the client; a 1- or 2-star review counts as negative whatever its text says (`Item.stars`). The
average rating and count go to the audience series once a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from veille.core.configreader import Reader
from veille.core.errors import Problems
from veille.core.models import Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    bounded,
    dig,
    dump_cursor,
    list_of,
    load_cursor,
    parse_json,
    parse_time,
    require_secret,
    text_of,
)
from veille.sources.base import DriverBase, PollContext
from veille.sources.googleapi import DEFAULT_TOKEN_URL, access_token, google_error

DEFAULT_API = "https://mybusiness.googleapis.com/v4"
PAGE_SIZE = 50  # the API's maximum
STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
REPLY_CHARS = 500


@dataclass(frozen=True, slots=True)
class GoogleReviewsOptions:
    account_id: str
    location_id: str
    client_id_env: str
    client_secret_env: str
    refresh_token_env: str
    api_base: str = DEFAULT_API
    token_url: str = DEFAULT_TOKEN_URL
    max_pages: int = 5

    @property
    def target(self) -> str:
        return f"google-reviews: locations/{self.location_id}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.client_id_env, self.client_secret_env, self.refresh_token_env)


def review_item(review: Any) -> Item | None:
    """One Business Profile review -> Item (stars, text, reviewer, owner's reply in `extra`)."""
    name = text_of(review, "name")
    review_id = text_of(review, "reviewId") or (name.rsplit("/", 1)[-1] if name else None)
    if not review_id:
        return None
    stars = STARS.get(text_of(review, "starRating") or "")
    reply = text_of(review, "reviewReply", "comment")
    extra = {"type": "review"}
    if stars is not None:
        extra["rating"] = str(stars)
    if updated := text_of(review, "updateTime"):
        extra["updated_at"] = updated
    if reply:
        extra["owner_reply"] = bounded(reply, REPLY_CHARS)
    anonymous = dig(review, "reviewer", "isAnonymous") is True
    reviewer = None if anonymous else text_of(review, "reviewer", "displayName")
    return Item(
        external_id=review_id,
        text=bounded(text_of(review, "comment")),
        author=reviewer,
        author_name=reviewer,
        published_at=parse_time(text_of(review, "createTime") or text_of(review, "updateTime")),
        direct=True,
        thread_id=name or review_id,
        stars=stars,
        extra=extra,
    )


def owner_reply_item(review: Any) -> Item | None:
    """The owner's reply to a review, as the client's own answer in the review's thread (the reply inbox).

    Its id carries the reply's time, so an edited reply is a new answer."""
    reply = text_of(review, "reviewReply", "comment")
    base = review_item(review)
    if not reply or base is None:
        return None
    when = text_of(review, "reviewReply", "updateTime")
    return Item(
        external_id=f"{base.external_id}/reply/{when or ''}",
        text=bounded(reply, REPLY_CHARS),
        published_at=parse_time(when) if when else base.published_at,
        direct=True,
        thread_id=base.thread_id,
        parent_id=base.external_id,
        from_client=True,
        extra={"type": "owner_reply"},
    )


def rating_note(figures: Mapping[str, float]) -> str | None:
    """What `veille sources` shows: the listing's rating and review count."""
    if "rating" not in figures:
        return None
    count = f" ({int(figures['rating_count'])} avis)" if "rating_count" in figures else ""
    return f"note Google : {figures['rating']:.1f}/5{count}".replace(".", ",", 1)


class GoogleReviewsDriver(DriverBase[GoogleReviewsOptions]):
    kind: ClassVar[str] = "google-reviews"
    sees_own_answers: ClassVar[bool] = True
    reach_prior: ClassVar[float] = 0.5  # a review stays on the listing every future customer reads

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> GoogleReviewsOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        account_id = reader.str("account_id")
        location_id = reader.str("location_id")
        client_id_env = reader.env_name("client_id_env")
        client_secret_env = reader.env_name("client_secret_env")
        refresh_token_env = reader.env_name("refresh_token_env")
        api_base = reader.url("api_base", DEFAULT_API)
        token_url = reader.url("token_url", DEFAULT_TOKEN_URL)
        max_pages = reader.int("max_pages", 5, min=1, max=50)
        reader.finish()
        for key, value in (("account_id", account_id), ("location_id", location_id)):
            if value is not None and not value.isdigit():
                reader.add(key, f"{value!r} is not a numeric id", "use the number after accounts/ or locations/")
        if (
            len(problems) > before
            or account_id is None
            or location_id is None
            or client_id_env is None
            or client_secret_env is None
            or refresh_token_env is None
        ):
            return None
        return GoogleReviewsOptions(
            account_id,
            location_id,
            client_id_env,
            client_secret_env,
            refresh_token_env,
            api_base.rstrip("/"),
            token_url,
            max_pages,
        )

    async def _page(
        self, ctx: PollContext, options: GoogleReviewsOptions, secrets: tuple[str, str, str], page_token: str | None
    ) -> Mapping[str, Any]:
        url = f"{options.api_base}/accounts/{options.account_id}/locations/{options.location_id}/reviews"
        params: dict[str, str | int] = {"pageSize": PAGE_SIZE, "orderBy": "updateTime desc"}
        if page_token:
            params["pageToken"] = page_token
        what = f"google reviews of location {options.location_id}"
        for attempt in range(2):  # an access token revoked early is renewed once
            token = await access_token(ctx, options.token_url, *secrets, renew=attempt > 0)
            response = await ctx.http.get(
                url,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                accept_statuses=frozenset(range(400, 600)),
            )
            if response.status == 401 and attempt == 0:
                continue
            if response.status != 200:
                raise google_error(what, response.status, response.body, response.retry_after())
            data = parse_json(response.body, what)
            if not isinstance(data, Mapping) or ("reviews" in data and not isinstance(data["reviews"], list)):
                raise BadResponse(f"{what}: expected an object with a `reviews` list")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    async def poll(self, ctx: PollContext, options: GoogleReviewsOptions, state: PollState) -> PollOutcome:
        secrets = (
            require_secret(ctx, options.client_id_env),
            require_secret(ctx, options.client_secret_env),
            require_secret(ctx, options.refresh_token_env),
        )
        cursor = load_cursor(state.cursor)
        since = parse_time(cursor.get("updated"))
        newest = since
        items: dict[str, Item] = {}
        audience: dict[str, float] = {}
        page_token: str | None = None
        for page in range(options.max_pages):
            data = await self._page(ctx, options, secrets, page_token)
            if page == 0:
                for metric, key in (("rating", "averageRating"), ("rating_count", "totalReviewCount")):
                    value = dig(data, key)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        audience[metric] = float(value)
            reached = False
            for review in list_of(data, "reviews"):
                updated = parse_time(text_of(review, "updateTime"))
                if since is not None and updated is not None and updated <= since:
                    reached = True
                    continue
                for item in (review_item(review), owner_reply_item(review)):
                    if item is not None:
                        items.setdefault(item.external_id, item)
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            page_token = text_of(data, "nextPageToken")
            if since is None or reached or not page_token:
                break
        day = ctx.clock.now().date().isoformat()
        new_cursor = {"updated": newest.isoformat() if newest else None, "audience_day": day}
        return PollOutcome(
            items=list(items.values()),
            cursor=dump_cursor({k: v for k, v in new_cursor.items() if v is not None}),
            note=rating_note(audience),
            audience=audience if cursor.get("audience_day") != day else {},
        )
