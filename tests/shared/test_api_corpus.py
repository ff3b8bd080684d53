"""Recorded real API answers (../shared/fixtures/api/<platform>/) replayed through the drivers' parsers.

For every post in every recorded answer: no crash, and an Item with an id, text, author and time.
The one exception is stated where it applies: X answers recorded with the API's default fields
carry no author or time (the driver always asks for them with `tweet.fields`/`expansions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, requires_shared
from veille.core.models import Item
from veille.sources._common import BadResponse, parse_json
from veille.sources.bluesky import post_item
from veille.sources.jetstream import event_item, event_post
from veille.sources.mastodon import status_item
from veille.sources.reddit import thing_item
from veille.sources.x import tweet_item, users_index
from veille.sources.youtube import thread_item

pytestmark = [pytest.mark.shared, requires_shared]
API = SHARED / "fixtures" / "api"


def manifest(platform: str) -> list[str]:
    path = API / platform / "MANIFEST.tsv"
    if not path.exists():
        return []
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t", 1)[0] for row in rows if row.strip()]


def files(platform: str, prefix: str, suffix: str = ".json") -> list[str]:
    return [f for f in manifest(platform) if f.startswith(prefix) and f.endswith(suffix)]


def load(platform: str, name: str) -> Any:
    return json.loads((API / platform / name).read_text(encoding="utf-8"))


def check(item: Item | None, *, author: bool = True, time: bool = True, text_source: str | None = None) -> Item:
    assert item is not None
    assert item.external_id
    assert isinstance(item.text, str)
    if text_source is None or text_source.strip():
        assert item.text or item.title, f"{item.external_id}: no text"
    if author:
        assert item.author, f"{item.external_id}: no author"
    if time:
        assert item.published_at is not None and item.published_at.tzinfo is not None
    if item.url:
        assert item.url.startswith(("http://", "https://"))
    return item


# --- Mastodon --------------------------------------------------------------------------------


def mastodon_statuses(body: Any) -> Iterator[tuple[Any, bool]]:
    """(status, is_mention) for every status a recorded answer holds."""
    if isinstance(body, list):
        for entry in body:
            if isinstance(entry, dict) and "type" in entry and "account" in entry:  # a notification
                if isinstance(entry.get("status"), dict):
                    yield entry["status"], entry["type"] == "mention"
            elif isinstance(entry, dict) and "content" in entry:
                yield entry, False
    elif isinstance(body, dict):
        if "content" in body and "uri" in body:
            yield body, False
        for status in body.get("statuses", []) if isinstance(body.get("statuses"), list) else []:
            yield status, False
        if isinstance(body.get("status"), dict):
            yield body["status"], body.get("type") == "mention"


@pytest.mark.parametrize("name", files("mastodon", "bodies/"))
def test_mastodon_bodies(name: str) -> None:
    body = load("mastodon", name)
    for status, mention in mastodon_statuses(body):
        item = check(
            status_item(status, instance_host="mastodon.social", direct=mention),
            text_source=(status.get("reblog") or status).get("content", "") + status.get("spoiler_text", ""),
        )
        assert item.direct == mention or item.direct


def test_mastodon_corpus_is_not_empty() -> None:
    total = sum(1 for name in files("mastodon", "bodies/") for _ in mastodon_statuses(load("mastodon", name)))
    assert total >= 20


# --- Bluesky ---------------------------------------------------------------------------------


def bluesky_posts(body: Any) -> Iterator[Any]:
    if not isinstance(body, dict):
        return
    yield from body.get("posts", [])
    thread = body.get("thread")
    if isinstance(thread, dict) and isinstance(thread.get("post"), dict):
        yield thread["post"]
        for reply in thread.get("replies", []):
            if isinstance(reply, dict) and isinstance(reply.get("post"), dict):
                yield reply["post"]
    for note in body.get("notifications", []):
        if note.get("reason") in ("mention", "reply", "quote"):
            yield note  # a notification carries uri, author and record like a post view


@pytest.mark.parametrize("name", files("bluesky", "bodies/"))
def test_bluesky_bodies(name: str) -> None:
    for post in bluesky_posts(load("bluesky", name)):
        check(post_item(post), text_source=post.get("record", {}).get("text", ""))


def test_bluesky_search_page_has_posts() -> None:
    [name] = [f for f in files("bluesky", "bodies/") if "searchPosts" in f]
    assert len(list(bluesky_posts(load("bluesky", name)))) >= 20


@pytest.mark.parametrize("name", files("bluesky", "jetstream/", ".jsonl"))
def test_jetstream_events(name: str) -> None:
    posts = 0
    for line in (API / "bluesky" / name).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        item = event_item(event)
        if event_post(event) is None:
            assert item is None
            continue
        posts += 1
        check(item, text_source=event["commit"]["record"].get("text", ""))
    assert posts >= 1


# --- Reddit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f for f in files("reddit", "bodies/") if "_200" in f])
def test_reddit_listings(name: str) -> None:
    body = load("reddit", name)
    children = body.get("data", {}).get("children", []) if isinstance(body, dict) else []
    for child in children:
        data = child.get("data", {})
        source = (data.get("body") or "") + (data.get("selftext") or "") + (data.get("title") or "")
        check(thing_item(child), text_source=source)


# --- X ---------------------------------------------------------------------------------------


def x_pages() -> Iterator[tuple[str, Any]]:
    for name in files("x", "bodies/"):
        yield name, load("x", name)
    for name in files("x", "twarc/", ".jsonl"):
        for number, line in enumerate((API / "x" / name).read_text(encoding="utf-8").splitlines()):
            if line.strip():
                yield f"{name}:{number}", line


@pytest.mark.parametrize(("name", "page"), list(x_pages()) if API.exists() else [])
def test_x_pages(name: str, page: Any) -> None:
    if isinstance(page, str):
        try:
            page = parse_json(page.encode(), name)
        except BadResponse:
            assert "streaming_output_with_error" in name  # the one deliberately truncated line
            return
    tweets = page.get("data") if isinstance(page, dict) else None
    if isinstance(tweets, dict):
        tweets = [tweets]  # filtered-stream lines hold one tweet
    if not isinstance(tweets, list) or not tweets or "text" not in tweets[0]:
        return  # counts, users lookups: no posts
    users = users_index(page)
    full_fields = "created_at" in tweets[0]
    for tweet in tweets:
        check(tweet_item(tweet, users), author=full_fields, time=full_fields, text_source=tweet.get("text", ""))


# --- YouTube ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f for f in files("youtube", "comment_threads/") if "insert" not in f])
def test_youtube_comment_threads(name: str) -> None:
    body = load("youtube", name)
    threads = body.get("items", [])
    assert threads
    for thread in threads:
        snippet = thread.get("snippet", {}).get("topLevelComment", {}).get("snippet", {})
        item = check(thread_item(thread), text_source=snippet.get("textOriginal", ""))
        assert item.direct


def test_corpus_folder_layout() -> None:
    for platform in ("mastodon", "bluesky", "reddit", "x", "youtube"):
        assert manifest(platform), f"{platform}: no MANIFEST.tsv rows"
        assert all((API / platform / f).exists() for f in manifest(platform))


def test_paths_are_inside_the_fixture_folder() -> None:
    for platform in ("mastodon", "bluesky", "reddit", "x", "youtube"):
        for name in manifest(platform):
            assert Path(API / platform / name).resolve().is_relative_to(API.resolve())
