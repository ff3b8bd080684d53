"""Hacker News (Algolia) driver against a fake search API over loopback."""

from __future__ import annotations

import json

import pytest

from tests.support.fake_apis import T0, HackerNewsFake, hn_hit, poll_context
from tests.support.server import LocalServer, Response
from veille.core.errors import PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.polling import PollState
from veille.sources.hackernews import HackerNewsDriver, HackerNewsOptions


@pytest.fixture
def fake(server: LocalServer) -> HackerNewsFake:
    return HackerNewsFake(server)


def options(fake: HackerNewsFake) -> HackerNewsOptions:
    problems = Problems()
    parsed = HackerNewsDriver().parse_options({"search": ["gege"], "api_base": fake.url("/api/v1")}, "c.s", problems)
    assert parsed is not None and not problems
    return parsed


async def poll(opts: HackerNewsOptions, state: PollState | None = None):
    async with poll_context() as ctx:
        return await HackerNewsDriver().poll(ctx, opts, state or PollState())


def test_options() -> None:
    problems = Problems()
    assert HackerNewsDriver().parse_options({"search": [""], "x": 1}, "c.s", problems) is None
    assert {p.path for p in problems.items} == {"c.s.search", "c.s.x"}


async def test_first_poll_then_numeric_filter_and_pages(fake: HackerNewsFake) -> None:
    fake.hits.extend(hn_hit(i, f"gege {i}") for i in range(1, 31))
    first = await poll(options(fake))
    assert len(first.items) == 30
    newest = json.loads(first.cursor)["gege"]
    assert newest == int(T0.timestamp()) + 30
    fake.hits.extend(hn_hit(i, f"gege {i}") for i in range(100, 350))
    second = await poll(options(fake), PollState(cursor=first.cursor))
    assert {int(i.external_id) for i in second.items} == set(range(100, 350))
    requests = fake.server.requests_to("/api/v1/search_by_date")
    assert requests[-1].query["numericFilters"] == [f"created_at_i>{newest}"]
    assert [r.query["page"] for r in requests[1:]] == [["0"], ["1"], ["2"]]
    third = await poll(options(fake), PollState(cursor=second.cursor))
    assert third.items == []


async def test_item_fields(fake: HackerNewsFake) -> None:
    fake.hits.append(hn_hit(7, "Chez <i>Gégé</i> &amp; co"))
    fake.hits.append(hn_hit(8, "Show HN: gege", story=True))
    items = {i.external_id: i for i in (await poll(options(fake))).items}
    comment, story = items["7"], items["8"]
    assert comment.text == "Chez Gégé & co" and comment.title == "A story"
    assert comment.url == "https://news.ycombinator.com/item?id=7" and comment.author == "erin"
    assert story.title == "Show HN: gege" and story.extra["link"] == "https://example.org/a"
    assert story.engagement is not None and (story.engagement.score, story.engagement.replies) == (7, 4)
    assert comment.published_at is not None and comment.published_at.tzinfo is not None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (Response(429, "slow down", {"Retry-After": "5"}), RateLimited),
        (Response(429, "slow down"), RateLimited),
        (Response(503, "x"), RetryableFetchError),
        (Response(400, "bad"), PermanentFetchError),
        (Response(200, "[", {"Content-Type": "application/json"}), RetryableFetchError),
        (Response.json({"nbHits": 0}), RetryableFetchError),
    ],
)
async def test_failures(fake: HackerNewsFake, response: Response, error: type[Exception]) -> None:
    fake.fail_next(response)
    with pytest.raises(error):
        await poll(options(fake))


async def test_hits_with_missing_fields(fake: HackerNewsFake) -> None:
    fake.fail_next(Response.json({"hits": [{"objectID": "1"}, {"title": "no id"}], "nbPages": 1}))
    [item] = (await poll(options(fake))).items
    assert item.external_id == "1" and item.published_at is None and item.author is None


async def test_refresh_reads_items(fake: HackerNewsFake, server: LocalServer) -> None:
    server.route(
        "/api/v1/items/8",
        Response.json(
            {
                "id": 8,
                "type": "story",
                "title": "gege",
                "points": 300,
                "author": "erin",
                "created_at_i": int(T0.timestamp()),
            }
        ),
    )
    async with poll_context() as ctx:
        items = await HackerNewsDriver().refresh(ctx, options(fake), ["8", "9", "abc"])
    assert [(i.external_id, i.engagement.score if i.engagement else None) for i in items] == [("8", 300)]
