"""Every config key veille reads is documented in the example config.toml (K3, datasette's test_docs)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.paths import REPO_ROOT
from veille.config import load_config
from veille.core.configreader import Reader

ROOT = REPO_ROOT


def test_every_key_read_appears_in_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    read: set[tuple[str, str]] = set()
    original = Reader._get

    def recording(self: Reader, key: str, *args: Any, **kwargs: Any) -> Any:
        read.add((self.path, key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(Reader, "_get", recording)
    load_config(str(ROOT / "config.toml"), environ={})
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*#?\s*([a-z_][a-z0-9_]*)\s*=", text, re.MULTILINE))
    documented |= set(re.findall(r"^\s*#?\s*\[+([a-z_.]+)\]+", text, re.MULTILINE))
    documented |= {part for name in list(documented) for part in name.split(".")}
    missing = sorted({f"{path}.{key}" if path else key for path, key in read if key not in documented})
    assert not missing, f"keys read but not documented in config.toml: {missing}"


# Hosts of the public endpoints the example points at, as each service documents them. Any other URL in
# the example must sit on a line that marks it "pattern:" (a value to replace with the client's own).
DOCUMENTED_HOSTS = {
    "news.google.com",  # Google News search feeds
    "www.reddit.com",  # the public search feed, and the OAuth token endpoint
    "oauth.reddit.com",
    "piaille.fr",  # Mastodon instances
    "mastodon.social",
    "bsky.social",
    "jetstream2.us-east.bsky.network",
    "api.twitter.com",
    "www.googleapis.com",
    "graph.facebook.com",
    "mybusiness.googleapis.com",
    "oauth2.googleapis.com",
    "places.googleapis.com",
    "hn.algolia.com",
    "api.telegram.org",
}
EXAMPLE = ROOT / "config.toml"


def test_every_url_in_the_example_is_a_documented_endpoint_or_marked_as_a_pattern() -> None:
    found = []
    for number, line in enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        for url in re.findall(r"(?:https?|wss)://[^\s\"',\]]+", line):
            found.append(url)
            if "pattern:" not in line.lower():
                assert urlsplit(url).hostname in DOCUMENTED_HOSTS, f"config.toml:{number}: {url} answers nothing known"
    assert len(found) > 10


def test_a_pattern_url_is_never_polled_as_is() -> None:
    config = load_config(str(EXAMPLE), environ={})
    for source in config.sources:
        if "00000000000000000000" in source.target:
            assert not source.enabled, f"{source.key} would poll a placeholder"


def test_the_example_switches_on_what_a_small_agency_really_can() -> None:
    config = load_config(str(EXAMPLE), environ={})
    text = EXAMPLE.read_text(encoding="utf-8")
    by_client: dict[str, set[str]] = {}
    for source in config.sources:
        by_client.setdefault(source.client_id, set()).add(source.kind)
    # Hacker News is for a software client, not the restaurant.
    assert "hackernews" not in by_client["resto"] and "hackernews" in by_client["appli"]
    # Reddit: new API apps need Reddit's approval; the public search feed is the way without one, polled gently.
    (reddit_feed,) = [s for s in config.sources if "reddit.com/search.rss" in s.target]
    assert reddit_feed.enabled and "sort=new" in reddit_feed.target and reddit_feed.every >= timedelta(minutes=30)
    reddit_block = text[text.index('kind = "reddit"') : text.index('kind = "x"')]
    assert "approves every new API app" in reddit_block
    # X: its price per read and a budget that matches it.
    x_block = text[text.index('kind = "x"') : text.index('kind = "youtube"')]
    assert "$0.005" in x_block and re.search(r"monthly_read_budget = \d+", x_block)
