"""Bluesky searchPosts driver against a fake PDS over loopback: session reuse and refresh, paging, failures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.fake_apis import T0, BlueskyFake, bsky_post, poll_context
from tests.support.server import LocalServer, Response
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.polling import PollState
from veille.sources.bluesky import BlueskyDriver, BlueskyOptions

ENV = {"BSKY_PASSWORD": "app-pass-1234"}


@pytest.fixture
def fake(server: LocalServer) -> BlueskyFake:
    return BlueskyFake(server)


def options(fake: BlueskyFake, **raw: object) -> BlueskyOptions:
    problems = Problems()
    base: dict[str, object] = {
        "identifier": "acme.bsky.social",
        "password_env": "BSKY_PASSWORD",
        "search": ["gégé"],
        "service": fake.url().rstrip("/"),
    }
    parsed = BlueskyDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(
    opts: BlueskyOptions,
    state: PollState | None = None,
    *,
    cache: dict | None = None,
    env: dict[str, str] | None = None,
    clock: FakeClock | None = None,
):
    async with poll_context(clock=clock, env=ENV if env is None else env, cache=cache) as ctx:
        return await BlueskyDriver().poll(ctx, opts, state or PollState())


def test_options_require_credentials_and_queries() -> None:
    problems = Problems()
    assert BlueskyDriver().parse_options({"search": []}, "c.s", problems) is None
    assert {p.path for p in problems.items} >= {"c.s.identifier", "c.s.password_env", "c.s.search"}


async def test_session_is_created_once_and_reused(fake: BlueskyFake) -> None:
    fake.posts.append(bsky_post("a1", "Chez Gégé c'est bon"))
    cache: dict = {}
    state = PollState()
    for _ in range(3):
        outcome = await poll(options(fake), state, cache=cache)
        state = PollState(cursor=outcome.cursor)
    assert fake.creates == 1 and fake.refreshes == 0


async def test_expired_access_token_is_refreshed_not_recreated(fake: BlueskyFake) -> None:
    fake.posts.append(bsky_post("a1", "gégé"))
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.expire_access_tokens()
    outcome = await poll(options(fake), cache=cache)
    assert len(outcome.items) == 1
    assert (fake.creates, fake.refreshes) == (1, 1)


async def test_token_near_expiry_is_refreshed_before_use(fake: BlueskyFake) -> None:
    cache: dict = {}
    clock = FakeClock(T0)
    first = await poll(options(fake), cache=cache, clock=clock)
    clock.advance(2 * 3600 - 30)  # 30 s left on the access token
    await poll(options(fake), PollState(cursor=first.cursor), cache=cache, clock=clock)
    assert (fake.creates, fake.refreshes) == (1, 1)


async def test_refused_refresh_token_creates_a_new_session(fake: BlueskyFake) -> None:
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    await poll(options(fake), cache=cache)
    assert (fake.creates, fake.refreshes) == (2, 1)


async def test_wrong_app_password_is_auth_failed(fake: BlueskyFake) -> None:
    with pytest.raises(AuthFailed):
        await poll(options(fake), env={"BSKY_PASSWORD": "wrong"})


async def test_missing_password_is_auth_failed_without_request(fake: BlueskyFake) -> None:
    with pytest.raises(AuthFailed) as caught:
        await poll(options(fake), env={})
    assert "BSKY_PASSWORD" in str(caught.value)
    assert fake.server.requests == []


async def test_create_session_rate_limited(fake: BlueskyFake) -> None:
    fake.fail_next(
        Response.json(
            {"error": "RateLimitExceeded"},
            429,
            headers={
                "RateLimit-Limit": "30",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int((T0 + timedelta(seconds=200)).timestamp())),
            },
        )
    )
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake), clock=FakeClock(T0))
    assert caught.value.retry_after == pytest.approx(200, abs=1)


async def test_first_poll_newest_page_then_since_and_cursor_paging(fake: BlueskyFake) -> None:
    fake.posts.extend(bsky_post(f"p{i:03}", f"gégé {i}", when=T0 + timedelta(seconds=i)) for i in range(150))
    cache: dict = {}
    first = await poll(options(fake), cache=cache)
    assert len(first.items) == 100
    since = json.loads(first.cursor)["search"]["gégé"]
    assert since.startswith("2026-11-20T12:02:29")
    fake.posts.extend(bsky_post(f"q{i:03}", f"gégé new {i}", when=T0 + timedelta(seconds=200 + i)) for i in range(130))
    second = await poll(options(fake), PollState(cursor=first.cursor), cache=cache)
    new = {i.external_id for i in second.items if "/q" in i.external_id}
    assert len(new) == 130  # two pages followed through `cursor`
    searches = fake.server.requests_to("/xrpc/app.bsky.feed.searchPosts")
    assert searches[-1].query.get("cursor") == ["100"] and searches[-1].query.get("since") == [since]
    assert searches[-1].query.get("sort") == ["latest"]


async def test_item_fields_and_direct(fake: BlueskyFake) -> None:
    fake.posts.append(bsky_post("m1", "salut gégé", mention_did="did:plc:acme"))
    fake.posts.append(bsky_post("r1", "gégé bof", reply_to="at://did:plc:acme/app.bsky.feed.post/xyz"))
    fake.posts.append(bsky_post("k1", "gégé tout court"))
    items = {i.external_id.rsplit("/", 1)[-1]: i for i in (await poll(options(fake))).items}
    assert items["m1"].direct and items["r1"].direct and not items["k1"].direct
    item = items["k1"]
    assert item.url == "https://bsky.app/profile/alice.bsky.social/post/k1"
    assert item.author == "@alice.bsky.social" and item.author_name == "Alice" and item.lang == "fr"
    assert item.engagement is not None
    assert (item.engagement.likes, item.engagement.reposts, item.engagement.replies) == (3, 3, 1)


async def test_refresh_rereads_engagement(fake: BlueskyFake) -> None:
    post = bsky_post("e1", "gégé")
    fake.posts.append(post)
    async with poll_context(env=ENV) as ctx:
        post["likeCount"] = 250
        [item] = await BlueskyDriver().refresh(ctx, options(fake), [post["uri"], "not-an-uri"])
    assert item.engagement is not None and item.engagement.likes == 250


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (Response(503, "down"), RetryableFetchError),
        (Response(200, "{not json", {"Content-Type": "application/json"}), RetryableFetchError),
        (Response.json({"cursor": "x"}), RetryableFetchError),  # no posts list
        (Response.json({"error": "InvalidRequest", "message": "bad query"}, 400), PermanentFetchError),
        (Response.json({"error": "RateLimitExceeded"}, 429, headers={"Retry-After": "30"}), RateLimited),
    ],
)
async def test_search_failures(fake: BlueskyFake, response: Response, error: type[Exception]) -> None:
    cache: dict = {}
    await poll(options(fake), cache=cache)  # session ready
    fake.fail_next(response)
    with pytest.raises(error):
        await poll(options(fake), cache=cache)


async def test_posts_with_missing_fields(fake: BlueskyFake) -> None:
    fake.posts.append(
        {"uri": "at://did:plc:z/app.bsky.feed.post/1", "indexedAt": "2026-11-20T12:00:00Z", "record": {"text": "gégé"}}
    )
    [item] = (await poll(options(fake))).items
    assert item.author is None and item.text == "gégé" and item.published_at is not None


async def test_mentions_replies_and_quotes_are_direct_and_read_forward(fake: BlueskyFake) -> None:
    fake.notify(bsky_post("n1", "salut @acme", when=T0), "mention")
    fake.notify(bsky_post("n2", "d'accord", when=T0 + timedelta(seconds=1)), "reply")
    fake.notify(bsky_post("n3", "a liké", when=T0 + timedelta(seconds=2)), "like")
    opts = options(fake, search=[], mentions=True)
    cache: dict = {}
    first = await poll(opts, cache=cache)
    assert sorted(i.external_id.rsplit("/", 1)[-1] for i in first.items) == ["n1", "n2"]
    assert all(i.direct for i in first.items)
    request = fake.server.requests_to("/xrpc/app.bsky.notification.listNotifications")[0]
    assert request.query["reasons"] == ["mention", "reply", "quote"]
    fake.notify(bsky_post("n4", "cité", when=T0 + timedelta(seconds=9)), "quote")
    second = await poll(opts, PollState(cursor=first.cursor), cache=cache)
    assert [i.external_id.rsplit("/", 1)[-1] for i in second.items] == ["n4"]


async def test_notifications_without_a_list_are_bad_response(fake: BlueskyFake) -> None:
    cache: dict = {}
    await poll(options(fake), cache=cache)
    fake.fail_next(Response.json({"cursor": "1"}))
    with pytest.raises(RetryableFetchError):
        await poll(options(fake, search=[], mentions=True), cache=cache)


async def test_the_accounts_followers_once_a_day(fake: BlueskyFake) -> None:
    clock = FakeClock(T0)
    first = await poll(options(fake), clock=clock)
    assert first.audience == {"followers": 342.0}
    again = await poll(options(fake), PollState(cursor=first.cursor), clock=clock)
    assert again.audience == {} and len(fake.server.requests_to("/xrpc/app.bsky.actor.getProfile")) == 1
    clock.advance(86_400)
    fake.followers = 350
    assert (await poll(options(fake), PollState(cursor=again.cursor), clock=clock)).audience == {"followers": 350.0}


async def test_the_accounts_own_replies_close_the_customers_conversation(fake: BlueskyFake) -> None:
    """The session's account (its DID) is the client: its reply to a customer is `from_client`, in the
    conversation of the thread's root and that customer; its posts answering nobody are no hits."""
    question = bsky_post("q1", "@acme vous livrez ?", mention_did=fake.did, when=T0)
    fake.notify(question, "mention")
    answer = bsky_post(
        "a1",
        "Oui, dès lundi !",
        did=fake.did,
        handle=fake.identifier,
        reply_to=question["uri"],
        when=T0 + timedelta(minutes=5),
    )
    fake.own_feed += [answer, bsky_post("p1", "Menu du jour", did=fake.did, handle=fake.identifier, when=T0)]
    opts = options(fake, search=[], mentions=True)
    cache: dict = {}
    first = await poll(opts, cache=cache)
    by_key = {i.external_id.rsplit("/", 1)[-1]: i for i in first.items}
    assert set(by_key) == {"q1", "a1"}  # the account's own post answering nobody is no hit
    assert by_key["a1"].from_client and by_key["a1"].direct and not by_key["q1"].from_client
    assert by_key["q1"].conversation == by_key["a1"].conversation == f"{question['uri']} did:plc:alice"
    assert json.loads(first.cursor)["own"].startswith("2026-11-20T12:05")

    # The customer answers back in the same thread: the same conversation (reopened); another customer's
    # question under it is a conversation of its own.
    again_at = T0 + timedelta(minutes=9)
    fake.notify(
        bsky_post("q2", "Super, et le dimanche ?", reply_to=answer["uri"], root=question["uri"], when=again_at), "reply"
    )
    fake.notify(
        bsky_post("q3", "Et à Lyon ?", did="did:plc:bob", handle="bob.test", reply_to=question["uri"], when=again_at),
        "reply",
    )
    second = await poll(opts, PollState(cursor=first.cursor), cache=cache)
    keys = {i.external_id.rsplit("/", 1)[-1]: i.conversation for i in second.items}
    assert keys == {"q2": by_key["q1"].conversation, "q3": f"{question['uri']} did:plc:bob"}
    own_reads = fake.server.requests_to("/xrpc/app.bsky.feed.getAuthorFeed")
    assert [r.query["actor"] for r in own_reads] == [[fake.did], [fake.did]]
