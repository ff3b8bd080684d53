"""Places API (New) driver against a fake over loopback: the five reviews, the rating and count, the key
kept out of URLs, a bad key, a place that does not exist, missing fields; legacy answers parsed too."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fake_apis import poll_context
from tests.support.fake_google import PlacesFake, place_review
from tests.support.server import LocalServer
from veille.core.errors import AuthFailed, PermanentFetchError, Problems
from veille.core.models import ErrorKind
from veille.core.polling import PollOutcome, PollState
from veille.sources.google_places import GooglePlacesDriver, GooglePlacesOptions, legacy_review_item

PLACE = "ChIJ442GNENu5kcRGYUrvgqHw88"
ENV = {"PLACES_KEY": "AIzaPLACES"}


@pytest.fixture
def fake(server: LocalServer) -> PlacesFake:
    return PlacesFake(server)


def options(fake: PlacesFake, **raw: Any) -> GooglePlacesOptions:
    problems = Problems()
    base = {"place_id": PLACE, "key_env": "PLACES_KEY", "api_base": fake.url("/v1"), "language": "fr"}
    parsed = GooglePlacesDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(opts: GooglePlacesOptions, state: PollState | None = None) -> PollOutcome:
    async with poll_context(env=ENV) as ctx:
        return await GooglePlacesDriver().poll(ctx, opts, state or PollState())


async def test_reviews_rating_and_count(fake: PlacesFake) -> None:
    fake.places[PLACE] = {
        "id": PLACE,
        "rating": 4.3,
        "userRatingCount": 128,
        "reviews": [place_review(PLACE, 1, 1, "Service correct mais plat froid"), place_review(PLACE, 2, 5, "Top")],
    }
    outcome = await poll(options(fake))
    assert [(i.external_id, i.stars) for i in outcome.items] == [
        (f"places/{PLACE}/reviews/R1", 1),
        (f"places/{PLACE}/reviews/R2", 5),
    ]
    assert all(i.direct and i.thread_id == PLACE and i.lang == "fr" for i in outcome.items)
    assert (
        outcome.audience == {"rating": 4.3, "rating_count": 128.0} and outcome.note == "note Google : 4,3/5 (128 avis)"
    )
    again = await poll(options(fake), PollState(cursor=outcome.cursor))
    assert again.audience == {} and again.note == outcome.note  # the figure once a day, the note always
    request = fake.server.requests[0]
    assert "AIzaPLACES" not in request.path + str(request.query) and request.query["languageCode"] == ["fr"]
    assert request.headers["X-Goog-FieldMask"].split(",") == [
        "id",
        "displayName",
        "rating",
        "userRatingCount",
        "reviews",
        "googleMapsUri",
    ]


async def test_place_without_reviews_or_rating(fake: PlacesFake) -> None:
    fake.places[PLACE] = {"id": PLACE}
    outcome = await poll(options(fake))
    assert outcome.items == [] and outcome.audience == {} and outcome.note is None


async def test_bad_key_and_unknown_place(fake: PlacesFake) -> None:
    with pytest.raises(AuthFailed, match="API_KEY_INVALID"):
        async with poll_context(env={"PLACES_KEY": "wrong"}) as ctx:
            await GooglePlacesDriver().poll(ctx, options(fake), PollState())
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake, place_id="ChIJnope"))
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_legacy_reviews_have_a_stable_id() -> None:
    item = legacy_review_item(
        {
            "author_name": "Léa",
            "author_url": "https://www.google.com/maps/contrib/9",
            "rating": 2,
            "text": "Bof",
            "time": 1700000000,
        }
    )
    assert (
        item is not None and item.external_id == "https://www.google.com/maps/contrib/9#1700000000" and item.stars == 2
    )
    assert legacy_review_item({"text": "no author, no time"}) is None


@pytest.mark.parametrize("body", [b"<html>quota page</html>", b"[1, 2]"])
async def test_malformed_answers_are_retryable(fake: PlacesFake, body: bytes) -> None:
    from tests.support.server import Response
    from veille.core.errors import RetryableFetchError

    fake.fail_next(Response(200, body))
    with pytest.raises(RetryableFetchError) as caught:
        await poll(options(fake))
    assert caught.value.kind is ErrorKind.BAD_RESPONSE
