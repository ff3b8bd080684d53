"""Reddit driver against a fake OAuth API over loopback: token reuse, listings, rate limiting, failures."""

from __future__ import annotations

import json

import pytest

from tests.support.fake_apis import T0, RedditFake, header, poll_context, reddit_post
from tests.support.server import LocalServer, Response
from veille.core.errors import AuthFailed, Problems, RateLimited, RetryableFetchError
from veille.core.polling import PollState
from veille.sources.reddit import RedditDriver, RedditOptions

ENV = {"REDDIT_ID": "cid", "REDDIT_SECRET": "csecret"}


@pytest.fixture
def fake(server: LocalServer) -> RedditFake:
    return RedditFake(server)


def options(fake: RedditFake, **raw: object) -> RedditOptions:
    problems = Problems()
    base: dict[str, object] = {
        "client_id_env": "REDDIT_ID",
        "client_secret_env": "REDDIT_SECRET",
        "subreddits": ["lyon"],
        "username": "chezgege",
        "api_base": fake.url().rstrip("/"),
        "token_url": fake.url("/api/v1/access_token"),
    }
    parsed = RedditDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(
    opts: RedditOptions, state: PollState | None = None, *, cache: dict | None = None, env: dict[str, str] | None = None
):
    async with poll_context(env=ENV if env is None else env, cache=cache) as ctx:
        return await RedditDriver().poll(ctx, opts, state or PollState())


def test_options_validate_subreddit_names() -> None:
    problems = Problems()
    assert (
        RedditDriver().parse_options(
            {"client_id_env": "A", "client_secret_env": "B", "subreddits": ["not a sub!"]}, "c.s", problems
        )
        is None
    )
    assert [p.path for p in problems.items] == ["c.s.subreddits[0]"]


async def test_token_reused_and_user_agent_sent(fake: RedditFake) -> None:
    fake.add("/r/lyon/new", reddit_post("a1", "Chez Gégé"))
    cache: dict = {}
    await poll(options(fake), cache=cache)
    await poll(options(fake), cache=cache)
    assert fake.tokens_issued == 1
    listing = fake.server.requests_to("/r/lyon/new")[0]
    assert header(listing, "User-Agent").startswith("server:veille:") and "/u/chezgege" in header(listing, "User-Agent")
    assert listing.query["raw_json"] == ["1"]


async def test_expired_token_is_replaced_once(fake: RedditFake) -> None:
    fake.add("/r/lyon/new", reddit_post("a1", "x"))
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.revoke_tokens()
    outcome = await poll(options(fake), cache=cache)
    assert len(outcome.items) == 1 and fake.tokens_issued == 2


async def test_bad_credentials_are_auth_failed(fake: RedditFake) -> None:
    with pytest.raises(AuthFailed):
        await poll(options(fake), env={"REDDIT_ID": "cid", "REDDIT_SECRET": "nope"})


async def test_missing_credentials_are_auth_failed(fake: RedditFake) -> None:
    with pytest.raises(AuthFailed) as caught:
        await poll(options(fake), env={"REDDIT_ID": "cid"})
    assert "REDDIT_SECRET" in str(caught.value)


async def test_search_and_paging_with_after(fake: RedditFake) -> None:
    fake.add("/search", *[reddit_post(f"s{i}", f"gégé {i}", created=T0.timestamp() + i) for i in range(5)])
    fake.add("/r/lyon/new", *[reddit_post(f"n{i:03}", f"post {i}", created=T0.timestamp() + i) for i in range(120)])
    first = await poll(options(fake, search=["gégé"]))
    assert len(first.items) == 105  # newest page of each stream
    cursor = json.loads(first.cursor)
    assert cursor["r/lyon/new"] == T0.timestamp() + 119
    later = [reddit_post(f"m{i:03}", f"new {i}", created=T0.timestamp() + 200 + i) for i in range(150)]
    fake.add("/r/lyon/new", *later)
    second = await poll(options(fake, search=["gégé"]), PollState(cursor=first.cursor))
    names = {i.external_id for i in second.items}
    assert {f"t3_m{i:03}" for i in range(150)} <= names
    assert not any(n.startswith("t3_n") and n != "t3_n119" for n in names)  # older posts not reported again
    assert fake.server.requests_to("/search")[0].query["sort"] == ["new"]


async def test_item_fields(fake: RedditFake) -> None:
    fake.add("/r/lyon/new", reddit_post("z9", "Avis sur Chez Gégé", "merci u/chezgege !", score=12))
    [item] = (await poll(options(fake))).items
    assert item.external_id == "t3_z9" and item.title == "Avis sur Chez Gégé"
    assert item.url == "https://www.reddit.com/r/lyon/comments/z9/x/"
    assert item.author == "u/bob" and item.direct
    assert item.engagement is not None and (item.engagement.score, item.engagement.replies) == (12, 3)
    assert item.published_at == T0


@pytest.mark.parametrize("status", [403, 429])
@pytest.mark.parametrize(("retry_after", "expected"), [("17", 17.0), (None, 240.0)])
async def test_403_and_429_are_rate_limiting(
    fake: RedditFake, status: int, retry_after: str | None, expected: float
) -> None:
    fake.add("/r/lyon/new")
    headers = {"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Used": "600", "X-Ratelimit-Reset": "240"}
    if retry_after:
        headers["Retry-After"] = retry_after
    cache: dict = {}
    async with poll_context(env=ENV, cache=cache) as ctx:
        await RedditDriver()._token(ctx, options(fake))
    fake.fail_next(Response.json({"message": "Too Many Requests", "error": status}, status, headers=headers))
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake), cache=cache)
    assert caught.value.retry_after == pytest.approx(expected)


async def test_remaining_header_drives_the_next_poll(fake: RedditFake) -> None:
    fake.add("/r/lyon/new", reddit_post("a", "x"))
    fake.remaining = 30.0  # 29 of 600 left: nearly exhausted
    outcome = await poll(options(fake))
    assert outcome.earliest_next_poll == pytest.approx(240)


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (Response(500, "oops"), "http_5xx"),
        (Response(200, "<html>", {"Content-Type": "text/html"}), "bad_response"),
        (Response.json({"kind": "t3"}), "bad_response"),
    ],
)
async def test_failures(fake: RedditFake, response: Response, kind: str) -> None:
    fake.add("/r/lyon/new")
    cache: dict = {}
    async with poll_context(env=ENV, cache=cache) as ctx:
        await RedditDriver()._token(ctx, options(fake))
    fake.fail_next(response)
    with pytest.raises(RetryableFetchError) as caught:
        await poll(options(fake), cache=cache)
    assert caught.value.kind.value == kind


async def test_children_with_missing_fields(fake: RedditFake) -> None:
    fake.add(
        "/r/lyon/new",
        {"kind": "t3", "data": {"name": "t3_q", "created_utc": T0.timestamp()}},
        {"kind": "t3", "data": {"title": "no name", "created_utc": 1.0}},
    )
    [item] = (await poll(options(fake))).items
    assert item.external_id == "t3_q" and item.text == "" and item.author is None


async def test_refresh_by_fullname(fake: RedditFake) -> None:
    post = reddit_post("r1", "x", score=1)
    fake.add("/r/lyon/new", post)
    async with poll_context(env=ENV) as ctx:
        post["data"]["score"] = 900
        [item] = await RedditDriver().refresh(ctx, options(fake), ["t3_r1"])
    assert item.engagement is not None and item.engagement.score == 900


async def test_a_missing_subreddit_does_not_stop_the_others(fake: RedditFake) -> None:
    fake.add("/r/lyon/new", reddit_post("ok1", "x"))
    fake.server.route("/r/gone/new", Response.json({"message": "Not Found", "error": 404}, 404))
    outcome = await poll(options(fake, subreddits=["gone", "lyon"]))
    assert [i.external_id for i in outcome.items] == ["t3_ok1"]
    assert outcome.note == "1/2 Reddit streams failing (not_found)"
    assert "r/gone/new" not in json.loads(outcome.cursor)
