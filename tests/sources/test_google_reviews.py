"""Business Profile reviews against a fake Google (token endpoint + reviews) over loopback: stars, replies,
edits, paging, the rating in the audience, a revoked refresh token, an expired access token, errors."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.support.fake_apis import T0, poll_context
from tests.support.fake_google import BusinessProfileFake, google_error, review
from tests.support.server import LocalServer, Response
from veille.core.errors import AuthFailed, PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollOutcome, PollState
from veille.sources.google_reviews import GoogleReviewsDriver, GoogleReviewsOptions

ENV = {"G_ID": "cid.apps.googleusercontent.com", "G_SECRET": "csecret", "G_REFRESH": "1//refresh"}


@pytest.fixture
def fake(server: LocalServer) -> BusinessProfileFake:
    return BusinessProfileFake(server)


def options(fake: BusinessProfileFake, **raw: Any) -> GoogleReviewsOptions:
    problems = Problems()
    base = {
        "account_id": "1",
        "location_id": "2",
        "client_id_env": "G_ID",
        "client_secret_env": "G_SECRET",
        "refresh_token_env": "G_REFRESH",
        "api_base": fake.url("/v4"),
        "token_url": fake.url("/token"),
    }
    parsed = GoogleReviewsDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(opts: GoogleReviewsOptions, state: PollState | None = None, cache: dict | None = None) -> PollOutcome:
    async with poll_context(env=ENV, cache=cache) as ctx:
        return await GoogleReviewsDriver().poll(ctx, opts, state or PollState())


def test_ids_are_validated() -> None:
    problems = Problems()
    raw = {"account_id": "accounts/1", "location_id": "2", "client_id_env": "A", "client_secret_env": "B"}
    assert GoogleReviewsDriver().parse_options(raw, "c.s", problems) is None
    assert sorted(p.path for p in problems.items) == ["c.s.account_id", "c.s.refresh_token_env"]


async def test_reviews_with_stars_replies_and_the_rating(fake: BusinessProfileFake) -> None:
    fake.reviews = [
        review("r1", 5, "Excellent accueil", when=T0, reply="Merci Sophie !"),
        review("r2", 1, "Très bon accueil mais intoxication le soir même", who="Marc", when=T0 + timedelta(hours=1)),
        {
            "reviewId": "r3",
            "starRating": "TWO",
            "updateTime": "2026-11-20T14:00:00Z",
            "reviewer": {"isAnonymous": True},
        },
    ]
    outcome = await poll(options(fake))
    items = {i.external_id: i for i in outcome.items}
    reply_id = "r1/reply/2026-11-20T12:00:00.000000Z"  # the owner's reply: the client's answer in r1's thread
    assert set(items) == {"r1", reply_id, "r2", "r3"}
    reply = items[reply_id]
    assert reply.from_client and reply.text == "Merci Sophie !" and reply.channel == "review" and reply.stars is None
    assert reply.conversation == items["r1"].conversation == items["r1"].thread_id and not items["r1"].from_client
    assert items["r1"].stars == 5 and items["r1"].extra["owner_reply"] == "Merci Sophie !" and items["r1"].direct
    assert items["r2"].stars == 1 and items["r2"].author == "Marc" and items["r2"].thread_id.endswith("/reviews/r2")
    assert items["r3"].text == "" and items["r3"].author is None and items["r3"].stars == 2  # star-only, anonymous
    assert outcome.audience == {"rating": 4.4, "rating_count": 3.0}
    assert outcome.note == "note Google : 4,4/5 (3 avis)"
    request = fake.server.requests_to("/v4/accounts/1/locations/2/reviews")[0]
    assert request.query["orderBy"] == ["updateTime desc"] and request.headers["Authorization"] == "Bearer ya29.token0"


async def test_second_poll_reads_until_known_and_sees_edits(fake: BusinessProfileFake) -> None:
    fake.reviews = [review(f"r{i:03}", 4, f"avis {i}", when=T0 + timedelta(minutes=i)) for i in range(70)]
    cache: dict = {}
    first = await poll(options(fake), cache=cache)
    assert len(first.items) == 50  # first poll: the newest page only
    fake.reviews[0] = review("r000", 2, "Finalement déçu", when=T0 + timedelta(days=1))  # edited: new update time
    fake.reviews += [review(f"n{i:03}", 5, f"nouveau {i}", when=T0 + timedelta(days=2, minutes=i)) for i in range(60)]
    second = await poll(options(fake), PollState(cursor=first.cursor), cache=cache)
    assert {i.external_id for i in second.items} == {"r000"} | {f"n{i:03}" for i in range(60)}
    assert second.audience == {}  # once a day
    assert len(fake.issued) == 1  # the access token is reused while valid
    third = await poll(options(fake), PollState(cursor=second.cursor), cache=cache)
    assert third.items == [] and json.loads(third.cursor or "")["updated"].startswith("2026-11-22")


async def test_expired_access_token_is_renewed_once(fake: BusinessProfileFake) -> None:
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.expire_access_tokens()
    await poll(options(fake), cache=cache)
    assert fake.issued == ["ya29.token0", "ya29.token1"]


async def test_revoked_refresh_token_is_credentials_refused(fake: BusinessProfileFake) -> None:
    fake.revoked = True
    with pytest.raises(AuthFailed, match="refresh token expired or revoked") as caught:
        await poll(options(fake))
    assert "1//refresh" not in str(caught.value) and len(fake.server.requests) == 1


@pytest.mark.parametrize(
    ("response", "error", "kind"),
    [
        (google_error(403, "PERMISSION_DENIED", "no", "SERVICE_DISABLED"), AuthFailed, ErrorKind.AUTH),
        (google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), RateLimited, ErrorKind.RATE_LIMITED),
        (google_error(503, "UNAVAILABLE", "try later"), RetryableFetchError, ErrorKind.HTTP_5XX),
        (Response(200, b"{not json"), RetryableFetchError, ErrorKind.BAD_RESPONSE),
    ],
)
async def test_errors(fake: BusinessProfileFake, response: Response, error: type, kind: ErrorKind) -> None:
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.fail_next(response)
    with pytest.raises(error) as caught:
        await poll(options(fake), cache=cache)
    assert caught.value.kind is kind


async def test_location_that_does_not_exist(fake: BusinessProfileFake) -> None:
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake, location_id="999"))
    assert caught.value.kind is ErrorKind.NOT_FOUND and "location 999" in caught.value.message
