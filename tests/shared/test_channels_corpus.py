"""Recorded Graph API, Places API and webhook answers (../shared/fixtures/api/facebook, instagram, google;
see each MANIFEST.tsv) replayed through the clients'-own-channel parsers.

Each parser must keep what the recorded object holds: an id always; the text, author and time whenever
the object has them (a post with only a photo has no text; a `fields=` request may leave the author out).
Error bodies map to the error types veille acts on; usage headers to a share of the budget; webhook
bodies parse without a crash, and their comments and messages give exactly the items expected. Not
replayed: `batch/` (veille makes no batch request) and the legacy Places error `OverQueryLimitResponse`
(the driver uses the Places API (New), whose errors are Google's JSON errors, tested in tests/sources).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import requires_shared
from tests.shared.test_api_corpus import API, files, load
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RetryableFetchError
from veille.core.models import ErrorKind, Item
from veille.sources.facebook import comment_item, post_item
from veille.sources.google_places import legacy_review_item, place_figures, place_review_item
from veille.sources.graph import TokenRefused, followers_of, graph_error, message_item, usage
from veille.sources.instagram import comment_items, media_item
from veille.sources.metawebhooks import parse_delivery

pytestmark = [pytest.mark.shared, requires_shared]


def rows(body: Any) -> Iterator[Any]:
    """The objects of an answer: `data[]`, the values of an `?ids=` map, or the object itself."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        yield from body["data"]
    elif isinstance(body, dict) and body and all(isinstance(v, dict) and "id" in v for v in body.values()):
        yield from body.values()
    elif isinstance(body, dict) and "id" in body:
        yield body


def keeps(item: Item | None, obj: Any, *, text: str | None, author: bool, time: str | None) -> Item | None:
    if "id" not in obj:  # recorded with a `fields=` list that left the id out: nothing to store it by
        assert item is None
        return None
    assert item is not None and item.external_id == str(obj["id"])
    if text:
        assert item.text, f"{item.external_id}: text lost"
    if author:
        assert item.author, f"{item.external_id}: author lost"
    if time:
        assert item.published_at is not None and item.published_at.tzinfo is not None, f"{item.external_id}: {time!r}"
    assert item.direct and item.thread_id
    return item


# --- Facebook ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", files("facebook", "bodies/posts/"))
def test_facebook_posts_and_their_inline_comments(name: str) -> None:
    seen = 0
    for post in rows(load("facebook", name)):
        author = isinstance(post.get("from"), dict) and bool(post["from"].get("name") or post["from"].get("id"))
        keeps(
            post_item(post),
            post,
            text=post.get("message") or post.get("story"),
            author=author,
            time=post.get("created_time"),
        )
        for comment in (post.get("comments") or {}).get("data", []):
            item = keeps(
                comment_item(comment, post["id"]),
                comment,
                text=comment.get("message"),
                author="from" in comment,
                time=comment.get("created_time"),
            )
            assert item is None or item.thread_id == post["id"]
        seen += 1
    assert seen


@pytest.mark.parametrize("name", files("facebook", "bodies/comments/"))
def test_facebook_comments(name: str) -> None:
    found = list(rows(load("facebook", name)))
    assert found
    for comment in found:
        item = keeps(
            comment_item(comment, None),
            comment,
            text=comment.get("message"),
            author="from" in comment,
            time=comment.get("created_time"),
        )
        if item is not None and isinstance(comment.get("parent"), dict):
            assert item.parent_id == comment["parent"]["id"] and item.extra["type"] == "reply"


@pytest.mark.parametrize(
    "name", files("facebook", "bodies/messages/") + files("instagram", "bodies/conversations/instagram-message")
)
def test_messages(name: str) -> None:
    platform = "instagram" if "instagram" in name else "facebook"  # Instagram's are its conversations' messages
    body = load(platform, name)
    found = list(rows(body))
    assert found
    for message in found:
        item = message_item(message, "t_1")
        assert item is not None and item.private and item.external_id == str(message["id"])
        assert item.author
        placeholder = str(message.get("created_time", "")).startswith("<")  # a documented example, not a recording
        assert (item.published_at is not None) or placeholder


@pytest.mark.parametrize(
    "name", [*files("facebook", "bodies/errors/"), "instagram:bodies/errors/ig_login_exception.json"]
)
def test_error_bodies(name: str) -> None:
    platform, _, path = name.rpartition(":")
    raw = (API / (platform or "facebook") / path).read_bytes()
    code = load(platform or "facebook", path)["error"]["code"]
    error = graph_error("test", 400, raw, "pages_read_engagement", None)
    assert isinstance(error, FetchError)
    if code == 190:
        assert isinstance(error, TokenRefused) and error.kind is ErrorKind.AUTH
    elif code in (1, 2):
        assert isinstance(error, RetryableFetchError)
    elif code == 100 and "does not exist" in load(platform or "facebook", path)["error"]["message"]:
        assert error.kind in (ErrorKind.NOT_FOUND, ErrorKind.HTTP_4XX)
    else:
        assert isinstance(error, PermanentFetchError)


@pytest.mark.parametrize(
    "name",
    files("facebook", "bodies/pages/")
    + files("instagram", "bodies/users/user_fields")
    + files("instagram", "bodies/users/restfb_user"),
)
def test_audience_figures(name: str) -> None:
    platform = "instagram" if "users/" in name else "facebook"
    for account in rows(load(platform, name)):
        expected = account.get("followers_count", account.get("fan_count"))
        assert followers_of(account) == (float(expected) if expected is not None else None)


def test_page_linked_instagram_account() -> None:
    body = load("instagram", "bodies/users/page-with-instagram.json")
    assert body["instagram_business_account"]["id"]


@pytest.mark.parametrize("name", files("facebook", "webhooks/") + files("instagram", "webhooks/"))
def test_webhook_bodies(name: str) -> None:
    platform = "instagram" if name in files("instagram", "webhooks/") else "facebook"
    body = load(platform, name)
    delivery = parse_delivery(body)
    expected = 0
    for entry in body["entry"]:
        account = str(entry["id"])
        for event in entry.get("messaging", []) + entry.get("standby", []):
            message = event.get("message")
            if message and message.get("mid") and not message.get("is_deleted"):
                expected += 1  # a customer's message, or the page's own answer (an echo)
        for change in entry.get("changes", []):
            value = change.get("value") or {}
            if change["field"] == "feed":
                wanted = value.get("item") in ("comment", "post", "status", "photo", "video", "share")
                own = str((value.get("from") or {}).get("id")) == account
                kept = value.get("item") == "comment" or not own  # the page's comment is its answer, its post none
                expected += wanted and value.get("verb") in ("add", "edited") and kept
            elif change["field"] == "mention":
                expected += value.get("verb") in ("add", "edited")
            elif change["field"] == "ratings":
                expected += value.get("item") == "rating" and value.get("verb") in ("add", "edited")
            elif change["field"] in ("comments", "live_comments"):
                expected += "id" in value
    assert sum(len(v) for v in delivery.items.values()) == expected, name


def test_usage_headers_recorded_on_an_instagram_call() -> None:
    headers = {k.lower(): v for k, v in load("instagram", "headers/headers.json").items()}
    read = usage(headers)
    assert read is not None and read.percent == 72 and read.regain_in == 20 * 60
    assert read.wait() is None  # 72 % leaves room: polling is not slowed yet


# --- Instagram --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *files("instagram", "bodies/comments/"),
        *files("instagram", "bodies/media/comment"),
    ],
)
def test_instagram_comments_and_replies(name: str) -> None:
    found = list(rows(load("instagram", name)))
    assert found
    for comment in found:
        items = comment_items(comment, "media-1")
        keeps(
            items[0],
            comment,
            text=comment.get("text"),
            author=bool(comment.get("username") or comment.get("from")),
            time=comment.get("timestamp"),
        )
        assert len(items) == 1 + len((comment.get("replies") or {}).get("data", []))
        assert all(r.parent_id == items[0].external_id for r in items[1:])


@pytest.mark.parametrize(
    "name",
    [
        *files("instagram", "bodies/hashtags/hashtag_recent"),
        *files("instagram", "bodies/users/medias"),
        *files("instagram", "bodies/users/tagged_medias"),
        *files("instagram", "bodies/discovery/medias"),
        *files("instagram", "bodies/media/media"),
    ],
)
def test_instagram_media(name: str) -> None:
    body = load("instagram", name)
    media = list(rows(body)) or list(rows(body.get("business_discovery", {}).get("media", {})))
    assert media
    for obj in media:
        item = keeps(
            media_item(obj, found="tagged"),
            obj,
            text=obj.get("caption"),
            author=bool(obj.get("username")),
            time=obj.get("timestamp"),
        )
        assert item is None or item.needs_keywords


# --- Google -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f for f in files("google", "bodies/places/") if "OverQueryLimit" not in f])
def test_places_legacy_answers(name: str) -> None:
    body = load("google", name)
    places = (
        [body["result"]]
        if isinstance(body.get("result"), dict)
        else body.get("results") or body.get("candidates") or []
    )
    assert places
    for place in places:
        figures = place_figures(place)
        assert ("rating" in figures) == ("rating" in place)
        for review in place.get("reviews", []):
            item = legacy_review_item(review, place.get("place_id"))
            assert item is not None and item.stars == review["rating"] and item.published_at is not None
            assert item.text == review.get("text", "")


def test_places_new_answer() -> None:
    body = load("google", "bodies/places_new/place_details_reviews.json")
    assert place_figures(body) == {"rating": body["rating"], "rating_count": float(body["userRatingCount"])}
    items = [place_review_item(r) for r in body["reviews"]]
    assert len(items) == 5 and all(i is not None and i.stars and i.text and i.author and i.published_at for i in items)
    assert len({i.external_id for i in items if i}) == 5


def test_the_corpora_are_not_empty() -> None:
    for platform in ("facebook", "instagram", "google"):
        assert files(platform, "bodies/") or files(platform, "webhooks/"), platform
    assert AuthFailed  # the error family the auth cases above belong to
