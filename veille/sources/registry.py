"""Source drivers by `kind`. Adding a network: write its module, add one line here."""

from __future__ import annotations

import importlib
from functools import cache

from veille.sources.base import SourceDriver

# kind -> "module:Class". Imported lazily so that `veille hits` never imports websockets & co.
DRIVERS: dict[str, str] = {
    "rss": "veille.sources.rss.driver:RssDriver",
    "mastodon": "veille.sources.mastodon:MastodonDriver",
    "bluesky": "veille.sources.bluesky:BlueskyDriver",
    "bluesky-jetstream": "veille.sources.jetstream:JetstreamDriver",
    "reddit": "veille.sources.reddit:RedditDriver",
    "x": "veille.sources.x:XDriver",
    "youtube": "veille.sources.youtube:YoutubeDriver",
    "hackernews": "veille.sources.hackernews:HackerNewsDriver",
    "facebook": "veille.sources.facebook:FacebookDriver",
    "instagram": "veille.sources.instagram:InstagramDriver",
    "google-reviews": "veille.sources.google_reviews:GoogleReviewsDriver",
    "google-places": "veille.sources.google_places:GooglePlacesDriver",
}


def known_kinds() -> list[str]:
    return sorted(DRIVERS)


@cache
def get_driver(kind: str) -> SourceDriver:
    """Return the driver for `kind`; KeyError if unknown (config validation reports it first)."""
    module_name, _, class_name = DRIVERS[kind].partition(":")
    driver = getattr(importlib.import_module(module_name), class_name)()
    assert isinstance(driver, SourceDriver)
    return driver


def streams(kind: str) -> bool:
    """Whether sources of this kind are fed by a stream consumer instead of polls."""
    return kind in DRIVERS and get_driver(kind).streams


def reach_prior(kind: str) -> float:
    """The reach a hit of this kind is given when it carries no audience figure (0 for an unknown kind)."""
    return get_driver(kind).reach_prior if kind in DRIVERS else 0.0


def sees_own_answers(kind: str) -> bool:
    """Whether sources of this kind yield the client's own answers (the reply inbox follows their threads)."""
    return kind in DRIVERS and get_driver(kind).sees_own_answers


def leading_mentions_address(kind: str) -> bool:
    """Whether a post of this kind that opens with @handles addresses them (microblogs) rather than tags a friend."""
    return kind in DRIVERS and get_driver(kind).leading_mentions_address


def parses_feeds(kind: str) -> bool:
    """Whether polls of this kind need the feed parse-worker pool."""
    return kind in DRIVERS and get_driver(kind).parses_feeds
