"""Mastodon driver against a fake instance over loopback HTTP: paging, dedup, rate limits, auth, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.fake_apis import MastodonFake, header, mastodon_status, poll_context
from tests.support.server import LocalServer, Response
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, Problems, RateLimited, RetryableFetchError
from veille.core.polling import PollState
from veille.sources.mastodon import MastodonDriver, MastodonOptions
from veille.sources.registry import get_driver

ENV = {"MASTODON_TOKEN": "good-token"}


@pytest.fixture
def fake(server: LocalServer) -> MastodonFake:
    return MastodonFake(server)


def options(fake: MastodonFake, **raw: object) -> MastodonOptions:
    problems = Problems()
    base: dict[str, object] = {"instances": [fake.url()], "hashtags": ["chezgege"]}
    parsed = MastodonDriver().parse_options({**base, **raw}, "clients[0].sources[0]", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(
    opts: MastodonOptions,
    state: PollState | None = None,
    env: dict[str, str] | None = None,
    clock: FakeClock | None = None,
    cache: dict | None = None,
):
    async with poll_context(clock=clock, env=ENV if env is None else env, cache=cache) as ctx:
        return await MastodonDriver().poll(ctx, opts, state or PollState())


def test_registered() -> None:
    assert isinstance(get_driver("mastodon"), MastodonDriver)


def test_options_report_every_problem() -> None:
    problems = Problems()
    result = MastodonDriver().parse_options({"instances": ["ftp://x"], "search": ["a"], "typo": 1}, "c.s", problems)
    assert result is None
    paths = {p.path for p in problems.items}
    assert {"c.s.instances[0]", "c.s.token_env", "c.s.typo"} <= paths


async def test_first_poll_takes_newest_page_then_pages_forward(fake: MastodonFake) -> None:
    fake.add_tag("chezgege", *[mastodon_status(i, f"post {i} #chezgege") for i in range(1, 51)])
    first = await poll(options(fake))
    assert len(first.items) == 40  # newest page only, no history backfill
    assert json.loads(first.cursor)[f"{fake.server.host}:{fake.server.port}/api/v1/timelines/tag/chezgege"] == "50"
    fake.add_tag("chezgege", *[mastodon_status(i, f"new {i}") for i in range(51, 141)])
    second = await poll(options(fake), PollState(cursor=first.cursor))
    ids = sorted(int(i.extra["id"]) for i in second.items)
    assert ids == list(range(51, 141))  # 90 new posts over 3 pages, none skipped
    requests = fake.server.requests_to("/api/v1/timelines/tag/chezgege")
    assert [r.query.get("min_id") for r in requests[1:]] == [["50"], ["90"], ["130"]]
    third = await poll(options(fake), PollState(cursor=second.cursor))
    assert third.items == []  # empty page


async def test_item_fields(fake: MastodonFake) -> None:
    fake.add_tag(
        "chezgege", mastodon_status(7, "Super <b>pizza</b> &amp; accueil", likes=9, mentions=("chezgege@piaille.fr",))
    )
    outcome = await poll(options(fake, account="chezgege@piaille.fr"))
    [item] = outcome.items
    assert item.external_id == "https://social.example/users/alice/statuses/7"
    assert item.text == "Super pizza & accueil"
    assert item.author == "@alice@127.0.0.1"
    assert item.author_name == "Alice" and item.author_followers == 42
    assert item.engagement is not None and (item.engagement.likes, item.engagement.reposts) == (9, 2)
    assert item.published_at is not None and item.published_at.tzinfo is not None
    assert item.direct  # mentions the client's account
    assert item.lang == "fr"


async def test_several_instances_deduplicated_by_uri(server: LocalServer) -> None:
    with LocalServer() as other:
        a, b = MastodonFake(server), MastodonFake(other)
        shared = mastodon_status(5, "same post #chezgege")
        a.add_tag("chezgege", shared)
        copy = dict(shared, id="99001")  # another instance knows it under its own id
        b.add_tag("chezgege", copy, mastodon_status(6, "only on b"))
        opts = options(a, instances=[a.url(), b.url()])
        outcome = await poll(opts)
        uris = sorted(i.external_id for i in outcome.items)
        assert uris == sorted({shared["uri"], mastodon_status(6, "")["uri"]})


async def test_search_and_mentions_use_the_token_on_the_home_instance_only(server: LocalServer) -> None:
    with LocalServer() as other:
        home, remote = MastodonFake(server), MastodonFake(other)
        home.add_tag("chezgege")
        remote.add_tag("chezgege", mastodon_status(3, "remote"))
        home.search_results.append(mastodon_status(4, "chez gégé est top"))
        home.mention(20, mastodon_status(8, "@chezgege bonjour"))
        opts = options(
            home, instances=[home.url(), remote.url()], search=["chez gégé"], mentions=True, token_env="MASTODON_TOKEN"
        )
        outcome = await poll(opts)
        by_id = {i.extra["id"]: i for i in outcome.items}
        assert set(by_id) == {"3", "4", "8"}
        assert by_id["8"].direct and not by_id["4"].direct
        assert all(not header(r, "Authorization") for r in remote.server.requests)
        assert all(
            header(r, "Authorization") == "Bearer good-token"
            for r in home.server.requests
            if r.path != "/api/v1/timelines/tag/chezgege"
        )
        note = home.server.requests_to("/api/v1/notifications")[0]
        assert note.query["types[]"] == ["mention"]
        cursor = json.loads(outcome.cursor)
        assert any(k.endswith("/api/v1/notifications") and v == "20" for k, v in cursor.items())


async def test_missing_token_is_auth_failed(fake: MastodonFake) -> None:
    opts = options(fake, mentions=True, token_env="MASTODON_TOKEN")
    with pytest.raises(AuthFailed) as caught:
        await poll(opts, env={})
    assert "MASTODON_TOKEN" in str(caught.value)


async def test_revoked_token_is_auth_failed(fake: MastodonFake) -> None:
    opts = options(fake, hashtags=[], mentions=True, token_env="MASTODON_TOKEN")
    with pytest.raises(AuthFailed):
        await poll(opts, env={"MASTODON_TOKEN": "revoked"})


async def test_403_is_auth_failed(fake: MastodonFake) -> None:
    fake.add_tag("chezgege")
    fake.fail_next(Response.json({"error": "This action is not allowed"}, 403))
    with pytest.raises(AuthFailed):
        await poll(options(fake))


@pytest.mark.parametrize(("headers", "expected"), [({"Retry-After": "120"}, 120.0), ({}, 300.0)])
async def test_429_with_and_without_retry_after(fake: MastodonFake, headers: dict, expected: float) -> None:
    fake.add_tag("chezgege")
    fake.fail_next(
        Response.json(
            {"error": "Too many requests"},
            429,
            headers={
                **headers,
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "2026-11-20T12:05:00.000Z",
            },
        )
    )
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake))
    assert caught.value.retry_after == pytest.approx(expected, abs=1)


async def test_exhausted_window_stops_requests_until_reset(fake: MastodonFake) -> None:
    fake.add_tag("chezgege", mastodon_status(1, "a"))
    fake.remaining = 1  # the next answer says 0 left
    clock = FakeClock(fake.reset.replace(minute=1))
    cache: dict = {}
    outcome = await poll(options(fake), clock=clock, cache=cache)
    assert len(outcome.items) == 1
    assert outcome.earliest_next_poll == pytest.approx(240, abs=1)
    before = len(fake.server.requests)
    with pytest.raises(RateLimited):
        await poll(options(fake), clock=clock, cache=cache)
    assert len(fake.server.requests) == before  # no request spent on a refused window
    clock.advance(241)
    await poll(options(fake), clock=clock, cache=cache)
    assert len(fake.server.requests) == before + 1


async def test_nearly_exhausted_window_suggests_waiting(fake: MastodonFake) -> None:
    fake.add_tag("chezgege", mastodon_status(1, "a"))
    fake.remaining = 20  # 19 of 300 left after this answer: under 10 %
    outcome = await poll(options(fake), clock=FakeClock(fake.reset.replace(minute=2)))
    assert outcome.earliest_next_poll == pytest.approx(180, abs=1)


async def test_5xx_is_retryable(fake: MastodonFake) -> None:
    fake.add_tag("chezgege")
    fake.fail_next(Response(502, "bad gateway"))
    with pytest.raises(RetryableFetchError):
        await poll(options(fake))


@pytest.mark.parametrize("body", ["<html>maintenance</html>", '{"not": "a list"}'])
async def test_malformed_answers_are_bad_response(fake: MastodonFake, body: str) -> None:
    fake.add_tag("chezgege")
    fake.fail_next(Response(200, body, {"Content-Type": "application/json"}))
    with pytest.raises(RetryableFetchError) as caught:
        await poll(options(fake))
    assert caught.value.kind.value == "bad_response"


async def test_missing_fields_are_tolerated(fake: MastodonFake) -> None:
    bare = {"id": "3", "uri": "https://x.example/s/3"}
    fake.add_tag("chezgege", bare, {"id": "4"}, "junk")  # no uri / not an object: skipped
    outcome = await poll(options(fake))
    [item] = outcome.items
    assert item.external_id == "https://x.example/s/3" and item.text == "" and item.author is None


async def test_boost_yields_the_boosted_status(fake: MastodonFake) -> None:
    inner = mastodon_status(2, "original")
    fake.add_tag("chezgege", dict(mastodon_status(3, ""), reblog=inner))
    [item] = (await poll(options(fake))).items
    assert item.external_id == inner["uri"]


def iter_requests(fake: MastodonFake) -> Iterator[str]:
    return (r.path for r in fake.server.requests)


async def test_one_failing_instance_does_not_stop_the_others(server: LocalServer) -> None:
    with LocalServer() as other:
        good, bad = MastodonFake(server), MastodonFake(other)
        good.add_tag("chezgege", mastodon_status(1, "ok"))
        bad.add_tag("chezgege")
        bad.fail_next(Response(503, "maintenance"))
        outcome = await poll(options(good, instances=[good.url(), bad.url()]))
        assert [i.extra["id"] for i in outcome.items] == ["1"]
        assert outcome.note == "1/2 Mastodon streams failing (http_5xx)"
        cursor = json.loads(outcome.cursor)
        assert not any(k.startswith(f"127.0.0.1:{other.port}") for k in cursor)  # re-read next time


async def test_refresh_reads_local_statuses_and_resolves_remote_ones(fake: MastodonFake) -> None:
    host = f"127.0.0.1:{fake.server.port}"
    local = dict(mastodon_status(7, "local", likes=50), uri=f"http://{host}/users/alice/statuses/7")
    fake.server.route("/api/v1/statuses/7", Response.json(local))
    remote = mastodon_status(8, "remote", likes=99)
    fake.search_results.append(remote)
    opts = options(fake, token_env="MASTODON_TOKEN")
    async with poll_context(env=ENV) as ctx:
        items = await MastodonDriver().refresh(ctx, opts, [local["uri"], remote["uri"]])
    assert {(i.external_id, i.engagement.likes if i.engagement else None) for i in items} == {
        (local["uri"], 50),
        (remote["uri"], 99),
    }
    search = fake.server.requests_to("/api/v2/search")[0]
    assert search.query["q"] == [remote["uri"]] and search.query["resolve"] == ["true"]


async def test_the_accounts_followers_once_a_day(server: LocalServer) -> None:
    fake = MastodonFake(server)
    fake.add_tag("chezgege")
    opts = options(fake, mentions=True, token_env="MASTODON_TOKEN")
    first = await poll(opts)
    assert first.audience == {"followers": 97.0}
    again = await poll(opts, PollState(cursor=first.cursor))
    assert again.audience == {} and len(server.requests_to("/api/v1/accounts/verify_credentials")) == 1
    assert (await poll(options(fake))).audience == {}  # no token: no account of the client's to count


async def test_the_clients_own_replies_close_the_customers_conversation(fake: MastodonFake) -> None:
    """The token's owner ("resto", from verify_credentials) is the client: its reply to a customer is
    `from_client` in that customer's conversation; its statuses answering nobody are no hits."""
    fake.mention(20, mastodon_status(8, "@resto vous êtes ouverts dimanche ?", mentions=("resto",)))
    fake.own.append(
        mastodon_status(9, "@alice oui, de 11 h à 15 h !", acct="resto", mentions=("alice",), in_reply_to=(8, "alice"))
    )
    fake.own.append(mastodon_status(10, "Nouveau menu d'hiver !", acct="resto"))
    opts = options(fake, hashtags=[], mentions=True, token_env="MASTODON_TOKEN")
    first = await poll(opts)
    by_id = {i.extra["id"]: i for i in first.items}
    assert set(by_id) == {"8", "9"}
    question, answer = by_id["8"], by_id["9"]
    assert question.direct and not question.from_client
    assert answer.from_client and answer.direct and answer.parent_id == "8"
    assert question.conversation == answer.conversation == "@alice@127.0.0.1"
    assert json.loads(first.cursor)["own"] == {"id": "1", "acct": "@resto@127.0.0.1"}

    # The customer writes again in the thread: the same conversation (the inbox reopens it).
    fake.mention(21, mastodon_status(11, "@resto et le lundi ?", mentions=("resto",), in_reply_to=(9, "resto")))
    again = await poll(opts, PollState(cursor=first.cursor))
    [later_question] = again.items
    assert later_question.conversation == question.conversation and not later_question.from_client
    assert len(fake.server.requests_to("/api/v1/accounts/verify_credentials")) == 1  # remembered in the cursor
