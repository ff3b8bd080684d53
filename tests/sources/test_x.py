"""X recent-search driver against a fake API over loopback: since_id paging, the monthly budget, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.support.fake_apis import T0, XFake, poll_context, tweet
from tests.support.server import LocalServer, Response
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollState
from veille.sources.x import XDriver, XOptions, seconds_to_next_month

ENV = {"X_BEARER": "bearer-ok"}


@pytest.fixture
def fake(server: LocalServer) -> XFake:
    return XFake(server)


def options(fake: XFake, **raw: object) -> XOptions:
    problems = Problems()
    base: dict[str, object] = {
        "query": "gégé",
        "bearer_env": "X_BEARER",
        "monthly_read_budget": 1000,
        "handle": "chezgege",
        "api_base": fake.url("/2"),
    }
    parsed = XDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(
    opts: XOptions,
    state: PollState | None = None,
    *,
    env: dict[str, str] | None = None,
    clock: FakeClock | None = None,
    cache: dict | None = None,
):
    async with poll_context(env=ENV if env is None else env, clock=clock, cache=cache) as ctx:
        return await XDriver().poll(ctx, opts, state or PollState())


def test_budget_is_required() -> None:
    problems = Problems()
    assert XDriver().parse_options({"query": "a", "bearer_env": "B"}, "c.s", problems) is None
    assert [p.path for p in problems.items] == ["c.s.monthly_read_budget"]


def test_seconds_to_next_month_across_december() -> None:
    assert seconds_to_next_month(datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == 3600


async def test_first_poll_then_since_id_and_next_token(fake: XFake) -> None:
    fake.tweets.extend(tweet(1000 + i, f"gégé {i}") for i in range(30))
    first = await poll(options(fake))
    assert len(first.items) == 30
    cursor = json.loads(first.cursor)
    assert cursor == {"month": "2026-11", "reads": 30, "since_id": "1029"}
    assert first.note == "X budget: 970/1000 reads left this month"
    fake.tweets.extend(tweet(2000 + i, f"gégé new {i}") for i in range(250))
    second = await poll(options(fake), PollState(cursor=first.cursor))
    assert {i.external_id for i in second.items} == {str(2000 + i) for i in range(250)}
    requests = fake.server.requests_to("/2/tweets/search/recent")
    assert [r.query.get("next_token") for r in requests[1:]] == [None, ["100"], ["200"]]
    assert all(r.query["since_id"] == ["1029"] for r in requests[1:])
    assert json.loads(second.cursor)["since_id"] == "2249"
    assert json.loads(second.cursor)["reads"] == 280


async def test_budget_is_never_exceeded(fake: XFake) -> None:
    fake.tweets.extend(tweet(1000 + i, "gégé") for i in range(500))
    state = PollState(cursor=json.dumps({"month": "2026-11", "reads": 880, "since_id": "1"}))
    outcome = await poll(options(fake), state)
    requests = fake.server.requests_to("/2/tweets/search/recent")
    assert [r.query["max_results"] for r in requests] == [["100"], ["20"]]
    assert fake.posts_served == 120 and json.loads(outcome.cursor)["reads"] == 1000
    assert outcome.note is not None and outcome.note.startswith("X budget: 0/1000")
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake), PollState(cursor=outcome.cursor))
    assert caught.value.kind is ErrorKind.QUOTA
    assert caught.value.retry_after == pytest.approx(seconds_to_next_month(T0))
    assert fake.posts_served == 120  # no request once the budget is spent


async def test_budget_resets_with_the_month(fake: XFake) -> None:
    fake.tweets.append(tweet(5, "gégé"))
    state = PollState(cursor=json.dumps({"month": "2026-10", "reads": 1000, "since_id": "1"}))
    outcome = await poll(options(fake), state)
    assert json.loads(outcome.cursor) == {"month": "2026-11", "reads": 1, "since_id": "5"}


async def test_reads_spent_by_an_unsaved_outcome_still_count(fake: XFake) -> None:
    fake.tweets.extend(tweet(i, "gégé") for i in range(1, 41))
    cache: dict = {}
    await poll(options(fake), cache=cache)  # its outcome is never stored (e.g. the commit failed)
    outcome = await poll(options(fake), PollState(), cache=cache)
    assert json.loads(outcome.cursor)["reads"] == 80


async def test_item_fields(fake: XFake) -> None:
    fake.tweets.append(tweet(42, "@chezgege bravo", mentions=("ChezGege",)))
    [item] = (await poll(options(fake))).items
    assert item.url == "https://x.com/carol/status/42"
    assert (item.author, item.author_name, item.author_followers) == ("@carol", "Carol", 1200)
    assert item.direct and item.lang == "fr" and item.published_at == T0
    assert item.engagement is not None and item.engagement.views == 100 and item.engagement.likes == 3


async def test_missing_bearer_and_revoked_bearer(fake: XFake) -> None:
    with pytest.raises(AuthFailed):
        await poll(options(fake), env={})
    with pytest.raises(AuthFailed):
        await poll(options(fake), env={"X_BEARER": "revoked"})


@pytest.mark.parametrize(("retry_after", "expected"), [("60", 60.0), (None, 900.0)])
async def test_429(fake: XFake, retry_after: str | None, expected: float) -> None:
    headers = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(int(T0.timestamp()) + 900),
    }
    if retry_after:
        headers["Retry-After"] = retry_after
    fake.fail_next(Response.json({"title": "Too Many Requests", "status": 429}, 429, headers=headers))
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake))
    assert caught.value.retry_after == pytest.approx(expected)


async def test_failure_on_a_later_page_keeps_reads_and_since_id(fake: XFake) -> None:
    fake.tweets.extend(tweet(1000 + i, "gégé") for i in range(150))
    state = PollState(cursor=json.dumps({"month": "2026-11", "reads": 0, "since_id": "999"}))
    original = fake._search
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        return original(request) if calls["n"] == 1 else Response(503, "over capacity")

    fake.route("/2/tweets/search/recent", flaky)
    outcome = await poll(options(fake), state)
    assert len(outcome.items) == 100
    assert json.loads(outcome.cursor) == {"month": "2026-11", "reads": 100, "since_id": "999"}


@pytest.mark.parametrize("response", [Response(502, "x"), Response(200, "nope"), Response.json([1, 2])])
async def test_server_and_format_failures(fake: XFake, response: Response) -> None:
    fake.fail_next(response)
    with pytest.raises(RetryableFetchError):
        await poll(options(fake))


async def test_empty_result_and_missing_fields(fake: XFake) -> None:
    outcome = await poll(options(fake))
    assert outcome.items == [] and json.loads(outcome.cursor)["reads"] == 0
    fake.tweets.append({"id": "77", "text": "gégé"})  # default fields only
    [item] = (await poll(options(fake))).items
    assert item.author is None and item.published_at is None and item.text == "gégé"


async def test_since_id_older_than_the_search_window_restarts_from_the_newest_page(fake: XFake) -> None:
    fake.tweets.extend(tweet(5000 + i, "gégé") for i in range(3))
    fake.fail_next(
        Response.json(
            {
                "errors": [
                    {
                        "parameters": {"since_id": ["12"]},
                        "message": "Invalid 'since_id': must be within the last 7 days",
                    }
                ],
                "title": "Invalid Request",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
            400,
        )
    )
    state = PollState(cursor=json.dumps({"month": "2026-11", "reads": 0, "since_id": "12"}))
    outcome = await poll(options(fake), state)
    assert len(outcome.items) == 3 and json.loads(outcome.cursor)["since_id"] == "5002"
    assert "since_id" not in fake.server.requests_to("/2/tweets/search/recent")[-1].query


async def test_other_invalid_requests_are_permanent(fake: XFake) -> None:
    fake.fail_next(Response.json({"errors": [{"parameters": {"query": ["(("]}, "message": "bad"}]}, 400))
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake))
    assert "query" in str(caught.value)


async def test_the_clients_own_replies_close_the_customers_conversation(fake: XFake) -> None:
    """`handle` is the client's account: its replies are searched too, and its reply to a customer is
    `from_client` in the conversation of the thread and that customer; its tweets answering nobody are no hits."""
    fake.tweets += [
        tweet(1001, "@chezgege vous êtes ouverts lundi ?", mentions=("chezgege",)),
        tweet(1002, "@carol oui, dès midi !", author_id="u9", mentions=("carol",), reply_to=(1001, "u1", 1001)),
        tweet(1003, "Nouveau menu !", author_id="u9"),
    ]
    first = await poll(options(fake))
    request = fake.server.requests_to("/2/tweets/search/recent")[0]
    assert request.query["query"] == ["(gégé) OR (from:chezgege is:reply)"]
    by_id = {i.external_id: i for i in first.items}
    assert set(by_id) == {"1001", "1002"}
    question, answer = by_id["1001"], by_id["1002"]
    assert answer.from_client and answer.direct and answer.parent_id == "1001" and not question.from_client
    assert question.conversation == answer.conversation == "1001 u1"

    fake.tweets.append(tweet(1004, "@chezgege et le mardi ?", mentions=("chezgege",), reply_to=(1002, "u9", 1001)))
    second = await poll(options(fake), PollState(cursor=first.cursor))
    [again] = second.items
    assert again.conversation == question.conversation and not again.from_client  # reopens it


def test_a_query_too_long_with_the_clients_replies_is_refused() -> None:
    problems = Problems()
    raw = {"query": "a" * 490, "bearer_env": "B", "monthly_read_budget": 10, "handle": "chezgege"}
    assert XDriver().parse_options(raw, "c.s", problems) is None
    assert [p.path for p in problems.items] == ["c.s.query"]
