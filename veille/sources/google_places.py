"""Google reviews through the Places API (New), when only an API key is available (no owner access).

    [[clients.sources]]
    kind = "google-places"
    place_id = "ChIJ442GNENu5kcRGYUrvgqHw88"
    key_env = "GOOGLE_PLACES_KEY"
    # language = "fr"

`GET places/{id}` with the key in `X-Goog-Api-Key` (never in a URL) and a field mask gives the rating,
the rating count and at most five reviews (Google picks them). A review not seen before is a new hit
(the store keeps each once); the rating and count go to the audience series, so a falling rating opens
an incident (`[alerting.audience_drop] rating`). A 1- or 2-star review counts as negative whatever its
text says. Each poll costs one request (billed as Place Details), so poll it hourly or less.

`legacy_review_item` reads the reviews of the legacy Place Details answer (recorded corpora).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from veille.core.configreader import Reader
from veille.core.errors import Problems
from veille.core.models import Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import (
    BadResponse,
    bounded,
    dig,
    dump_cursor,
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
from veille.sources.google_reviews import rating_note
from veille.sources.googleapi import google_error

DEFAULT_API = "https://places.googleapis.com/v1"
FIELD_MASK = "id,displayName,rating,userRatingCount,reviews,googleMapsUri"


@dataclass(frozen=True, slots=True)
class GooglePlacesOptions:
    place_id: str
    key_env: str
    language: str | None = None
    api_base: str = DEFAULT_API

    @property
    def target(self) -> str:
        return f"google-places: {self.place_id}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return (self.key_env,)


def _stars(value: Any) -> int | None:
    stars = int_of(value)
    return stars if stars is not None and 1 <= stars <= 5 else None


def place_review_item(review: Any, place_id: str | None = None) -> Item | None:
    """One review of a Places API (New) answer -> Item."""
    name = text_of(review, "name")
    if not name:
        return None
    stars = _stars(dig(review, "rating"))
    author = text_of(review, "authorAttribution", "displayName")
    return Item(
        external_id=name,
        text=bounded(text_of(review, "originalText", "text") or text_of(review, "text", "text")),
        url=web_url(text_of(review, "googleMapsUri")) or web_url(text_of(review, "authorAttribution", "uri")),
        author=author,
        author_name=author,
        published_at=parse_time(text_of(review, "publishTime")),
        lang=text_of(review, "originalText", "languageCode") or text_of(review, "text", "languageCode"),
        direct=True,
        thread_id=place_id or name.split("/reviews/")[0],
        stars=stars,
        extra={"type": "review", **({"rating": str(stars)} if stars else {})},
    )


def legacy_review_item(review: Any, place_id: str | None = None) -> Item | None:
    """One review of a legacy Place Details answer (`result.reviews[]`, no review id: author + time)."""
    when = int_of(review, "time")
    author = text_of(review, "author_name")
    if when is None or not (author or text_of(review, "author_url")):
        return None
    stars = _stars(dig(review, "rating"))
    return Item(
        external_id=f"{text_of(review, 'author_url') or author}#{when}",
        text=bounded(text_of(review, "text")),
        url=web_url(text_of(review, "author_url")),
        author=author,
        author_name=author,
        published_at=parse_time(when),
        lang=text_of(review, "language"),
        direct=True,
        thread_id=place_id,
        stars=stars,
        extra={"type": "review", **({"rating": str(stars)} if stars else {})},
    )


def place_figures(place: Any) -> dict[str, float]:
    """Rating and rating count of a place (New or legacy field names)."""
    figures: dict[str, float] = {}
    rating = dig(place, "rating")
    if isinstance(rating, int | float) and not isinstance(rating, bool):
        figures["rating"] = float(rating)
    count = int_of(place, "userRatingCount")
    count = int_of(place, "user_ratings_total") if count is None else count
    if count is not None:
        figures["rating_count"] = float(count)
    return figures


class GooglePlacesDriver(DriverBase[GooglePlacesOptions]):
    kind: ClassVar[str] = "google-places"
    reach_prior: ClassVar[float] = 0.5  # a review stays on the listing every future customer reads

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> GooglePlacesOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        place_id = reader.str("place_id")
        key_env = reader.env_name("key_env")
        language = reader.str("language", None)
        api_base = reader.url("api_base", DEFAULT_API)
        reader.finish()
        if place_id is not None and (not place_id or "/" in place_id or " " in place_id):
            reader.add("place_id", f"{place_id!r} is not a place id", "copy it from Google's Place ID Finder")
        if len(problems) > before or place_id is None or key_env is None:
            return None
        return GooglePlacesOptions(place_id, key_env, language, api_base.rstrip("/"))

    async def poll(self, ctx: PollContext, options: GooglePlacesOptions, state: PollState) -> PollOutcome:
        key = require_secret(ctx, options.key_env)
        what = f"google place {options.place_id}"
        params = {"languageCode": options.language} if options.language else None
        response = await ctx.http.get(
            f"{options.api_base}/places/{quote(options.place_id, safe='')}",
            params=params,
            headers={"X-Goog-Api-Key": key, "X-Goog-FieldMask": FIELD_MASK},
            accept_statuses=frozenset(range(400, 600)),
        )
        if response.status != 200:
            raise google_error(what, response.status, response.body, response.retry_after())
        place = parse_json(response.body, what)
        if not isinstance(place, Mapping):
            raise BadResponse(f"{what}: expected an object")
        items = [i for r in list_of(place, "reviews") if (i := place_review_item(r, options.place_id)) is not None]
        figures = place_figures(place)
        cursor = load_cursor(state.cursor)
        day = ctx.clock.now().date().isoformat()
        return PollOutcome(
            items=items,
            cursor=dump_cursor({"audience_day": day}),
            note=rating_note(figures),
            audience=figures if cursor.get("audience_day") != day else {},
        )
