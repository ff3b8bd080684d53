"""YouTube commentThreads driver against a fake API over loopback: paging, quota, key errors, no key leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fake_apis import T0, YoutubeFake, google_error, poll_context, yt_reply, yt_thread
from tests.support.server import LocalServer, Response
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, Problems, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollState
from veille.net.http import quiet_http_loggers
from veille.sources.youtube import YoutubeDriver, YoutubeOptions, quota_day, seconds_to_quota_reset

KEY = "AIzaKEY123"
ENV = {"YT_KEY": KEY}
CHANNEL = "UCa-vrCLQHviTOVnEKDOdetQ"


@pytest.fixture(autouse=True)
def _restore_http_loggers() -> Iterator[None]:
    yield
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def fake(server: LocalServer) -> YoutubeFake:
    return YoutubeFake(server, key=KEY)


def options(fake: YoutubeFake, **raw: object) -> YoutubeOptions:
    problems = Problems()
    base: dict[str, object] = {
        "channel_id": CHANNEL,
        "key_env": "YT_KEY",
        "daily_quota": 50,
        "api_base": fake.url("/youtube/v3"),
    }
    parsed = YoutubeDriver().parse_options({**base, **raw}, "c.s", problems)
    assert not problems, problems.items
    assert parsed is not None
    return parsed


async def poll(opts: YoutubeOptions, state: PollState | None = None, env: dict[str, str] | None = None):
    async with poll_context(env=ENV if env is None else env) as ctx:
        return await YoutubeDriver().poll(ctx, opts, state or PollState())


def test_channel_id_is_validated() -> None:
    problems = Problems()
    assert YoutubeDriver().parse_options({"channel_id": "chezgege", "key_env": "K"}, "c.s", problems) is None
    assert [p.path for p in problems.items] == ["c.s.channel_id"]


def test_quota_day_is_pacific() -> None:
    late_utc = datetime(2026, 11, 21, 7, 30, tzinfo=UTC)  # still the 20th in California
    assert quota_day(late_utc) == "2026-11-20"
    assert seconds_to_quota_reset(late_utc) == pytest.approx(30 * 60)


async def test_comments_are_direct_and_paged_forward(fake: YoutubeFake) -> None:
    fake.threads.extend(yt_thread(f"c{i:03}", f"comment {i}", when=T0 + timedelta(seconds=i)) for i in range(150))
    first = await poll(options(fake))
    assert len(first.items) == 100 and all(i.direct for i in first.items)
    cursor = json.loads(first.cursor)
    assert cursor["day"] == "2026-11-20" and cursor["units"] == 2  # one list call and the daily subscriber count
    assert first.audience == {"followers": 1520.0}
    fake.threads.extend(yt_thread(f"d{i:03}", f"new {i}", when=T0 + timedelta(seconds=500 + i)) for i in range(120))
    second = await poll(options(fake), PollState(cursor=first.cursor))
    assert {i.external_id for i in second.items} == {f"d{i:03}" for i in range(120)}
    assert json.loads(second.cursor)["units"] == 4 and second.audience == {}  # the count is read once a day
    assert second.note == "YouTube quota: 46/50 units left today"
    request = fake.server.requests_to("/youtube/v3/commentThreads")[0]
    assert request.query["allThreadsRelatedToChannelId"] == [CHANNEL]


async def test_item_fields(fake: YoutubeFake) -> None:
    fake.threads.append(yt_thread("Ugx1", "Trop bien ce resto"))
    [item] = (await poll(options(fake))).items
    assert item.url == "https://www.youtube.com/watch?v=vid1&lc=Ugx1"
    assert (item.author, item.author_name, item.published_at) == ("UCdan", "Dan", T0)
    assert item.engagement is not None and (item.engagement.likes, item.engagement.replies) == (4, 2)


async def test_source_quota_is_respected(fake: YoutubeFake) -> None:
    state = PollState(cursor=json.dumps({"day": "2026-11-20", "units": 50}))
    with pytest.raises(RateLimited) as caught:
        await poll(options(fake), state)
    assert caught.value.kind is ErrorKind.QUOTA and fake.calls == 0


@pytest.mark.parametrize(
    ("response", "error", "kind"),
    [
        (google_error(403, "quotaExceeded"), RateLimited, ErrorKind.QUOTA),
        (google_error(403, "rateLimitExceeded"), RateLimited, ErrorKind.RATE_LIMITED),
        (google_error(403, "forbidden"), AuthFailed, ErrorKind.AUTH),
        (google_error(403, "commentsDisabled"), PermanentFetchError, ErrorKind.HTTP_4XX),
        (google_error(400, "keyInvalid"), AuthFailed, ErrorKind.AUTH),
        (Response.json({"error": "error message"}, 403), AuthFailed, ErrorKind.AUTH),
        (Response(500, "backend error"), RetryableFetchError, ErrorKind.HTTP_5XX),
        (Response(200, "{", {"Content-Type": "application/json"}), RetryableFetchError, ErrorKind.BAD_RESPONSE),
        (Response.json({"kind": "youtube#commentThreadListResponse"}), RetryableFetchError, ErrorKind.BAD_RESPONSE),
    ],
)
async def test_errors_are_classified_and_never_show_the_key(
    fake: YoutubeFake, caplog: pytest.LogCaptureFixture, response: Response, error: type[FetchError], kind: ErrorKind
) -> None:
    caplog.set_level(logging.DEBUG)
    quiet_http_loggers()  # as the daemon does: httpx logs full URLs (with the key) at INFO
    fake.fail_next(response)
    with pytest.raises(error) as caught:
        await poll(options(fake))
    assert caught.value.kind is kind
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert KEY not in caplog.text


async def test_missing_key(fake: YoutubeFake) -> None:
    with pytest.raises(AuthFailed) as caught:
        await poll(options(fake), env={})
    assert "YT_KEY" in str(caught.value)


async def test_threads_with_missing_fields(fake: YoutubeFake) -> None:
    fake.fail_next(Response.json({"items": [{"id": "t1", "snippet": {}}, {"snippet": {}}, 3]}))
    [item] = (await poll(options(fake))).items
    assert item.external_id == "t1" and item.text == "" and item.direct


async def test_hidden_subscriber_count_is_no_figure(fake: YoutubeFake) -> None:
    fake.subscribers = None
    outcome = await poll(options(fake))
    assert outcome.audience == {} and json.loads(outcome.cursor)["audience_day"] == "2026-11-20"


async def test_the_channels_replies_close_the_comment_they_answer(fake: YoutubeFake) -> None:
    """`channel_id` is the client's own account: its reply under a comment is `from_client` in that comment's
    conversation; the commenter's next reply in the thread is in it again (reopens it)."""
    answer = yt_reply("r1", "Ug1", "Oui, partout en ville !", author=CHANNEL, when=T0 + timedelta(minutes=3))
    fake.threads += [
        yt_thread("Ug1", "Vous faites la livraison ?", when=T0, replies=(answer,)),
        yt_thread("Ug2", "Merci à tous !", when=T0 - timedelta(minutes=1), author=CHANNEL),
    ]
    first = await poll(options(fake))
    assert fake.server.requests_to("/youtube/v3/commentThreads")[0].query["part"] == ["snippet,replies"]
    by_id = {i.external_id: i for i in first.items}
    assert set(by_id) == {"Ug1", "Ug1.r1"}  # the channel's own top-level comment is no hit
    assert by_id["Ug1.r1"].from_client and not by_id["Ug1"].from_client
    assert by_id["Ug1"].conversation == by_id["Ug1.r1"].conversation == "Ug1"

    again = yt_reply("r2", "Ug1", "Super, et le dimanche ?", author="UCdan", when=T0 + timedelta(minutes=9))
    fake.threads[0] = yt_thread("Ug1", "Vous faites la livraison ?", when=T0, replies=(answer, again))
    second = await poll(options(fake), PollState(cursor=first.cursor))
    [reply] = second.items  # only what is new, though the thread's first comment is older
    assert reply.external_id == "Ug1.r2" and reply.conversation == "Ug1" and not reply.from_client
