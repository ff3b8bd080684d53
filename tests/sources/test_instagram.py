"""Instagram driver against a fake Graph API over loopback: comments and replies, tagged media, hashtag
search under the 30-per-7-days budget, direct messages, an account not linked to the page, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fake_apis import T0, poll_context
from tests.support.fake_graph import GraphFake, fb_message, graph_error, ig_comment, ig_media, later
from tests.support.server import LocalServer
from veille.core.clock import FakeClock
from veille.core.errors import AuthFailed, PermanentFetchError, Problems
from veille.core.models import ErrorKind
from veille.core.polling import PollOutcome, PollState
from veille.sources.graph import GRAPH_VERSION
from veille.sources.instagram import HASHTAG_WINDOW, InstagramDriver, InstagramOptions

PAGE, IG = "104512345678901", "17841400000000001"
ENV = {"IG_TOKEN": "page-token"}


@pytest.fixture
def fake(server: LocalServer) -> GraphFake:
    graph = GraphFake(server, token="page-token")
    graph.add_page(PAGE, ig=IG)
    graph.ig_users[IG] = {"id": IG, "username": "chezgege", "followers_count": 812}
    return graph


def options(fake: GraphFake, **raw: Any) -> InstagramOptions:
    problems = Problems()
    base = {"page_id": PAGE, "token_env": "IG_TOKEN", "api_base": fake.url("").rstrip("/")}
    parsed = InstagramDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(opts: InstagramOptions, state: PollState | None = None, clock: FakeClock | None = None) -> PollOutcome:
    async with poll_context(env=ENV, clock=clock) as ctx:
        return await InstagramDriver().poll(ctx, opts, state or PollState())


def test_options_are_validated() -> None:
    problems = Problems()
    raw = {"page_id": PAGE, "token_env": "T", "hashtags": [f"tag{i}" for i in range(31)], "ig_user_id": "me"}
    assert InstagramDriver().parse_options(raw, "c.s", problems) is None
    assert sorted(p.path for p in problems.items) == ["c.s.hashtags", "c.s.ig_user_id"]


async def test_comments_replies_tags_and_messages(fake: GraphFake) -> None:
    fake.ig_media[IG] = [{**ig_media("m1", "Notre tarte du jour", when=later(1)), "username": "chezgege"}]
    fake.ig_comments["m1"] = [
        ig_comment(
            "c1",
            "Elle a l'air délicieuse",
            when=later(2),
            replies=[
                ig_comment("r1", "Merci !", username="chezgege", when=later(3)),  # the account's own answer
                ig_comment("r2", "Je confirme", username="paul", when=later(4)),
            ],
        )
    ]
    fake.ig_tags[IG] = [ig_media("t1", "Déjeuner au soleil", when=later(5), username="lea")]
    fake.conversation(
        PAGE,
        "aWdfZAG06",
        {**fb_message("dm1", "Vous livrez ?", when=later(6)), "from": {"username": "lea", "id": "ig-lea"}},
        platform="instagram",
    )
    outcome = await poll(options(fake))
    items = {i.external_id: i for i in outcome.items}
    assert set(items) == {"c1", "r1", "r2", "t1", "dm1"}  # the account's media are not hits, its answers are
    assert [key for key, item in items.items() if item.from_client] == ["r1"]
    assert items["r1"].conversation == items["c1"].conversation == "c1" and items["r1"].channel == "comment"
    assert items["r2"].parent_id == "c1" and items["r2"].thread_id == "m1" and items["r2"].author == "@paul"
    assert items["c1"].parent_id == "m1" and items["c1"].kept_unmatched
    assert items["t1"].needs_keywords and items["t1"].direct and items["t1"].author == "@lea"
    assert items["dm1"].private and items["dm1"].thread_id == "aWdfZAG06" and items["dm1"].author == "@lea"
    assert outcome.audience == {"followers": 812.0}
    cursor = json.loads(outcome.cursor or "")
    assert cursor["ig"] == IG and cursor["media"]["m1"]["n"] == 3
    conversations = fake.server.requests_to(f"/{GRAPH_VERSION}/{PAGE}/conversations")
    assert conversations[0].query["platform"] == ["instagram"]

    again = await poll(options(fake), PollState(cursor=outcome.cursor))
    assert (
        again.items == [] and not fake.server.requests_to(f"/{GRAPH_VERSION}/{PAGE}")[1:]
    )  # the account id is remembered
    assert len(fake.edge_calls("comments")) == 1  # count unchanged: no comment read


async def test_account_not_linked_to_a_business_page(fake: GraphFake) -> None:
    del fake.pages[PAGE]["instagram_business_account"]
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake))
    assert caught.value.kind is ErrorKind.HTTP_4XX and "no linked Instagram business or creator account" in str(
        caught.value
    )
    assert len(fake.calls) == 1


async def test_hashtag_search_stays_within_the_budget(fake: GraphFake) -> None:
    fake.hashtags = {"chezgege": "h1", "lyon": "h2", "miam": "h3"}
    fake.hashtag_media = {"h1": [ig_media("x1", "Dîner chez gégé", when=later(1))], "h2": [], "h3": []}
    clock = FakeClock(T0)
    opts = options(fake, hashtags=["#ChezGege", "lyon"], hashtag_budget=2, tagged=False, messages=False)
    first = await poll(opts, clock=clock)
    assert [i.external_id for i in first.items] == ["x1"] and first.items[0].needs_keywords
    assert not first.items[0].direct
    assert first.note == "Instagram hashtags: 0/2 left over 7 days"
    clock.advance(3600)
    second = await poll(opts, PollState(cursor=first.cursor), clock=clock)
    assert second.items == [] and len([c for c in fake.calls if c == "ig_hashtag_search"]) == 2  # ids remembered

    # The manager swaps #lyon for #miam the next day: #lyon still counts for 7 days, so #miam waits.
    swapped = options(fake, hashtags=["chezgege", "miam"], hashtag_budget=2, tagged=False, messages=False)
    clock.advance(86_400)
    third = await poll(swapped, PollState(cursor=second.cursor), clock=clock)
    assert third.note == "Instagram hashtags: 0/2 left over 7 days; hashtag budget spent: #miam not read"
    assert fake.searched[IG] == {"chezgege", "lyon"}  # never a third distinct hashtag in the window
    clock.advance(HASHTAG_WINDOW)
    fourth = await poll(swapped, PollState(cursor=third.cursor), clock=clock)
    assert fourth.note == "Instagram hashtags: 0/2 left over 7 days" and "miam" in fake.searched[IG]


async def test_spent_budget_and_an_instagram_refusal_are_one_clear_line(fake: GraphFake) -> None:
    fake.hashtags = {"chezgege": "h1", "lyon": "h2"}
    fake.hashtag_media = {"h1": [], "h2": []}
    fake.searched[IG] = {"lyon"} | {f"other{i}" for i in range(29)}  # another tool spent the 30 hashtags
    clock = FakeClock(T0)
    opts = options(fake, hashtags=["chezgege"], messages=False, tagged=False)
    outcome = await poll(opts, clock=clock)
    assert outcome.note == "Instagram hashtags: 0/30 left over 7 days; hashtag budget spent: #chezgege not read"
    searches = len([c for c in fake.calls if c == "ig_hashtag_search"])
    clock.advance(3600)
    again = await poll(opts, PollState(cursor=outcome.cursor), clock=clock)
    assert again.note == outcome.note
    assert len([c for c in fake.calls if c == "ig_hashtag_search"]) == searches  # not asked again within the day


async def test_missing_comment_permission_is_named(fake: GraphFake) -> None:
    fake.permissions.discard("instagram_manage_comments")
    fake.ig_media[IG] = [ig_media("m1", "Tarte")]
    fake.ig_comments["m1"] = [ig_comment("c1", "Miam")]
    fake.hashtags = {"chezgege": "h1"}
    fake.hashtag_media = {"h1": []}
    outcome = await poll(options(fake, messages=False, hashtags=["chezgege"]))
    assert outcome.note == (
        "missing permission: instagram_manage_comments (comments not read); "
        "missing permission: instagram_manage_comments (media that tag the account not read); "
        "Instagram hashtags: 29/30 left over 7 days"
    )
    with pytest.raises(AuthFailed, match="missing permission instagram_manage_comments"):
        await poll(options(fake, messages=False))  # nothing else to read: the poll fails, naming it


async def test_revoked_token(fake: GraphFake) -> None:
    fake.revoked = True
    with pytest.raises(AuthFailed, match="expired or revoked"):
        await poll(options(fake, ig_user_id=IG))


async def test_personal_account_id_is_not_found(fake: GraphFake) -> None:
    fake.fail_next(graph_error(100, "Unsupported get request. Object with ID '1784' does not exist", subcode=33))
    with pytest.raises(PermanentFetchError) as caught:
        await poll(options(fake, ig_user_id="1784"))
    assert caught.value.kind is ErrorKind.NOT_FOUND
