"""Facebook Page driver against a fake Graph API over loopback: streams, incremental comments, paging,
usage headers, each error code, a revoked token, a missing permission, a page that does not exist."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.support.fake_apis import T0, poll_context
from tests.support.fake_graph import GraphFake, fb_comment, fb_message, fb_post, fb_time, graph_error, later
from tests.support.server import LocalServer, Response
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollOutcome, PollState
from veille.sources.facebook import FacebookDriver, FacebookOptions
from veille.sources.graph import GRAPH_VERSION, PERMISSION_RETRY

PAGE = "104512345678901"
TOKEN = "page-token"
ENV = {"FB_TOKEN": TOKEN}


@pytest.fixture
def fake(server: LocalServer) -> GraphFake:
    graph = GraphFake(server, token=TOKEN)
    graph.add_page(PAGE)
    return graph


def options(fake: GraphFake, **raw: Any) -> FacebookOptions:
    problems = Problems()
    base = {"page_id": PAGE, "token_env": "FB_TOKEN", "api_base": fake.url("").rstrip("/")}
    parsed = FacebookDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(
    opts: FacebookOptions, state: PollState | None = None, *, clock: FakeClock | None = None, cache: dict | None = None
) -> PollOutcome:
    async with poll_context(clock=clock, env=ENV, cache=cache) as ctx:
        return await FacebookDriver().poll(ctx, opts, state or PollState())


def page_post(post_id: str, text: str, minutes: int = 0) -> dict[str, Any]:
    return fb_post(post_id, text, author=(PAGE, "Chez Gégé"), when=later(minutes))


def test_options_are_validated() -> None:
    problems = Problems()
    assert (
        FacebookDriver().parse_options({"page_id": "chezgege", "token_env": "x", "colour": 1}, "c.s", problems) is None
    )
    assert sorted(p.path for p in problems.items) == ["c.s.colour", "c.s.page_id", "c.s.token_env"]


async def test_every_stream_of_the_page_in_one_poll(fake: GraphFake) -> None:
    fake.feed[PAGE] = [
        page_post(f"{PAGE}_1", "Notre menu de Noël est en ligne !", 1),
        fb_post(f"{PAGE}_2", "Bonjour, vous faites des plats à emporter ?", when=later(2)),
    ]
    fake.comments[f"{PAGE}_1"] = [
        fb_comment("1_c1", "Trop hâte", when=later(3)),
        fb_comment("1_c2", "Merci Julie !", author=(PAGE, "Chez Gégé"), when=later(4), parent="1_c1"),  # the page
        fb_comment("1_c3", "Moi aussi", when=later(5), parent="1_c1"),
    ]
    fake.tagged[PAGE] = [
        {**fb_post("900_1", "Soirée au resto avec @Chez Gégé", when=later(6)), "tagged_time": fb_time(later(6))}
    ]
    fake.conversation(PAGE, "t_10", fb_message("m_1", "Vous ouvrez le 24 ?", when=later(7)))
    fake.conversation(PAGE, "t_10", fb_message("m_2", "Oui, jusqu'à 22 h", author=(PAGE, "Chez Gégé"), when=later(8)))

    outcome = await poll(options(fake))
    items = {i.external_id: i for i in outcome.items}
    # The page's own posts are not hits; its answers come as the client's own (the reply inbox closes on them).
    assert set(items) == {f"{PAGE}_2", "1_c1", "1_c2", "1_c3", "900_1", "m_1", "m_2"}
    assert {key for key, item in items.items() if item.from_client} == {"1_c2", "m_2"}
    assert items["1_c2"].conversation == items["1_c1"].conversation == "1_c1"  # the answer is in c1's thread
    assert items["m_2"].conversation == items["m_1"].conversation == "t_10" and items["m_2"].channel == "message"
    assert items["1_c3"].conversation == "1_c1" and items[f"{PAGE}_2"].channel == "post"
    visitor, reply, tagged, message = items[f"{PAGE}_2"], items["1_c3"], items["900_1"], items["m_1"]
    assert visitor.direct and visitor.kept_unmatched and visitor.thread_id == f"{PAGE}_2" and not visitor.private
    assert items["1_c1"].thread_id == f"{PAGE}_1" and items["1_c1"].parent_id == f"{PAGE}_1"
    assert reply.parent_id == "1_c1" and reply.thread_id == f"{PAGE}_1" and reply.extra["type"] == "reply"
    assert reply.author == "Marc Dupont" and reply.extra["author_id"] == "777" and reply.published_at == later(5)
    assert tagged.direct and tagged.needs_keywords and not tagged.kept_unmatched
    assert message.private and message.thread_id == "t_10" and message.extra == {"type": "message", "author_id": "888"}
    assert outcome.audience == {"followers": 1200.0}
    assert outcome.note is None and outcome.earliest_next_poll is None
    cursor = json.loads(outcome.cursor or "")
    assert cursor["posts"][f"{PAGE}_1"]["n"] == 3 and cursor["audience_day"] == "2026-11-20"
    # The token travels in the Authorization header only, never in a URL.
    assert all("access_token" not in r.query for r in fake.server.requests)
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in fake.server.requests)
    assert all(r.path.startswith(f"/{GRAPH_VERSION}/") for r in fake.server.requests)


async def test_second_poll_reads_only_what_is_new(fake: GraphFake) -> None:
    fake.feed[PAGE] = [page_post(f"{PAGE}_1", "Menu", 1), page_post(f"{PAGE}_3", "Horaires", 2)]
    fake.comments[f"{PAGE}_1"] = [fb_comment("1_c1", "Super", when=later(3))]
    first = await poll(options(fake))
    assert [i.external_id for i in first.items] == ["1_c1"]
    calls = len(fake.calls)

    again = await poll(options(fake), PollState(cursor=first.cursor))
    assert again.items == [] and again.audience == {}  # the audience is read once a day
    assert not [c for c in fake.calls[calls:] if c.endswith("/comments")]  # counts unchanged: no comment read

    fake.comments[f"{PAGE}_1"].append(fb_comment("1_c9", "C'était froid", when=later(30)))
    third = await poll(options(fake), PollState(cursor=again.cursor))
    assert [i.external_id for i in third.items] == ["1_c9"]


async def test_comment_paging_first_poll_one_page_then_every_new_one(fake: GraphFake) -> None:
    fake.feed[PAGE] = [page_post(f"{PAGE}_1", "Menu")]
    fake.comments[f"{PAGE}_1"] = [fb_comment(f"1_a{i:03}", f"avis {i}", when=later(i)) for i in range(80)]
    first = await poll(options(fake))
    assert len(first.items) == 50  # first poll: the newest page only, no history dig
    fake.comments[f"{PAGE}_1"] += [fb_comment(f"1_b{i:03}", f"nouveau {i}", when=later(200 + i)) for i in range(70)]
    second = await poll(options(fake), PollState(cursor=first.cursor))
    assert {i.external_id for i in second.items} == {f"1_b{i:03}" for i in range(70)}  # two pages, stops at known
    requests = fake.server.requests_to(f"/{GRAPH_VERSION}/{PAGE}_1/comments")
    assert requests[-1].query["after"] and requests[-1].query["order"] == ["reverse_chronological"]


async def test_empty_page_and_missing_fields(fake: GraphFake) -> None:
    outcome = await poll(options(fake))
    assert outcome.items == []
    fake.feed[PAGE] = [{"id": f"{PAGE}_7"}, {"message": "no id"}, {"id": f"{PAGE}_8", "from": "not an object"}]
    outcome = await poll(options(fake))
    assert sorted(i.external_id for i in outcome.items) == [f"{PAGE}_7", f"{PAGE}_8"]
    assert all(i.text == "" and i.author is None for i in outcome.items)


async def test_revoked_token_is_credentials_refused_without_the_token(fake: GraphFake) -> None:
    fake.revoked = True
    with pytest.raises(AuthFailed) as caught:
        await poll(options(fake))
    assert "expired or revoked" in caught.value.message and "190/460" in caught.value.message
    assert TOKEN not in str(caught.value)
    assert len(fake.calls) == 1  # one request, no retry loop


async def test_wrong_token_and_missing_variable(fake: GraphFake) -> None:
    with pytest.raises(AuthFailed, match="FB_MISSING"):
        async with poll_context(env={}) as ctx:
            await FacebookDriver().poll(ctx, options(fake, token_env="FB_MISSING"), PollState())
    fake.token = "another"
    with pytest.raises(AuthFailed, match="code 190"):
        await poll(options(fake))


async def test_missing_permission_fails_only_its_stream_and_is_not_retried_in_a_loop(fake: GraphFake) -> None:
    fake.permissions.discard("pages_messaging")
    fake.feed[PAGE] = [fb_post(f"{PAGE}_2", "Bonjour", when=later(1))]
    clock = FakeClock(T0)
    first = await poll(options(fake), clock=clock)
    assert [i.external_id for i in first.items] == [f"{PAGE}_2"]
    assert first.note == "missing permission: pages_messaging (messages not read)"
    assert len(fake.edge_calls("conversations")) == 1
    clock.advance(600)
    second = await poll(options(fake), PollState(cursor=first.cursor), clock=clock)
    assert second.note == first.note and len(fake.edge_calls("conversations")) == 1  # not asked again
    clock.advance(PERMISSION_RETRY)
    fake.permissions.add("pages_messaging")
    third = await poll(options(fake), PollState(cursor=second.cursor), clock=clock)
    assert third.note is None and len(fake.edge_calls("conversations")) == 2


async def test_missing_permission_everywhere_fails_the_poll_with_its_name(fake: GraphFake) -> None:
    fake.permissions.clear()
    with pytest.raises(AuthFailed, match="missing permission pages_read_engagement"):
        await poll(options(fake, tagged=False, messages=False))


async def test_page_that_does_not_exist(fake: GraphFake) -> None:
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake, page_id="999999"))
    assert caught.value.kind is ErrorKind.NOT_FOUND and "100/33" in caught.value.message


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
async def test_rate_limit_codes(fake: GraphFake, code: int) -> None:
    fake.fail_next(graph_error(code, "(#4) Application request limit reached", status=403))
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake))
    assert caught.value.retry_after == 3600 and f"code {code}" in caught.value.message


async def test_usage_headers_slow_polling_before_the_limit(fake: GraphFake) -> None:
    fake.feed[PAGE] = [fb_post(f"{PAGE}_2", "Bonjour", when=later(1))]
    fake.usage = {"call_count": 85, "total_time": 20, "total_cputime": 10}
    clock, cache = FakeClock(T0), {}
    outcome = await poll(options(fake), clock=clock, cache=cache)
    assert len(outcome.items) == 1 and outcome.earliest_next_poll == 900
    assert outcome.note == "Graph API quota nearly spent: polling spaced out"
    assert fake.calls == [f"{PAGE}/feed"]  # stopped after the answer that said so
    calls = len(fake.calls)
    with pytest.raises(RateLimited):  # within the wait: nothing is asked
        await poll(options(fake), PollState(cursor=outcome.cursor), clock=clock, cache=cache)
    assert len(fake.calls) == calls
    clock.advance(901)
    fake.usage = {"call_count": 10}
    fake.business_usage = {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 42}]}
    throttled = await poll(options(fake), PollState(cursor=outcome.cursor), clock=clock, cache=cache)
    assert throttled.earliest_next_poll == 42 * 60  # Meta's own estimate


async def test_page_usage_header_is_read(fake: GraphFake) -> None:
    fake.page_usage = {"call_count": 95, "total_cputime": 10, "total_time": 10, "estimated_time_to_regain_access": 30}
    outcome = await poll(options(fake))
    assert outcome.earliest_next_poll == 30 * 60


@pytest.mark.parametrize(
    ("response", "error", "kind"),
    [
        (Response(200, b"<html>proxy</html>"), RetryableFetchError, ErrorKind.BAD_RESPONSE),
        (Response(200, b'{"data": {"not": "a list"}}'), RetryableFetchError, ErrorKind.BAD_RESPONSE),
        (Response(500, b"oops"), RetryableFetchError, ErrorKind.HTTP_5XX),
        (graph_error(2, "Service temporarily unavailable", status=500), RetryableFetchError, ErrorKind.HTTP_5XX),
        (graph_error(100, "(#100) Invalid parameter"), PermanentFetchError, ErrorKind.HTTP_4XX),
    ],
)
async def test_bad_answers(fake: GraphFake, response: Response, error: type[FetchError], kind: ErrorKind) -> None:
    fake.fail_next(response)
    with pytest.raises(error) as caught:
        await poll(options(fake, tagged=False, messages=False))
    assert caught.value.kind is kind


async def test_a_failure_after_the_feed_keeps_the_cursor_of_the_failed_stream(fake: GraphFake) -> None:
    fake.feed[PAGE] = [fb_post(f"{PAGE}_2", "Bonjour", when=later(1))]
    first = await poll(options(fake))
    fake.tagged[PAGE] = [{**fb_post("900_1", "avec @Chez Gégé", when=later(9)), "tagged_time": fb_time(later(9))}]
    fake.feed[PAGE].append(fb_post(f"{PAGE}_5", "Encore moi", when=later(10)))

    def fail_tagged(request: Any) -> Response:
        return graph_error(1, "An unknown error occurred", status=500)

    original = fake._page_edge

    def patched(request: Any, page_id: str, edge: str) -> Response:
        return fail_tagged(request) if edge == "tagged" else original(request, page_id, edge)

    fake._page_edge = patched  # type: ignore[method-assign]
    second = await poll(options(fake), PollState(cursor=first.cursor))
    assert [i.external_id for i in second.items] == [f"{PAGE}_5"]
    assert second.note == "1 streams failing (http_5xx)"
    fake._page_edge = original  # type: ignore[method-assign]
    third = await poll(options(fake), PollState(cursor=second.cursor))
    assert [i.external_id for i in third.items] == ["900_1"]  # the tagged stream resumed where it was


def test_time_helpers() -> None:
    assert later(5) - T0 == timedelta(minutes=5)
