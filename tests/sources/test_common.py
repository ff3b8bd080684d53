"""Shared helpers of the API drivers (rate-limit headers, JSON fields, HTML to text, cursors), and every
social source kind read from a real config.toml through `veille.config.parse_config`."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from veille.config import parse_config
from veille.core.errors import ConfigError
from veille.sources._common import (
    dig,
    html_to_text,
    int_of,
    link_rel,
    load_cursor,
    newest_id,
    parse_time,
    rate_window,
    web_url,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Mastodon: reset is an ISO date
        (
            {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "12",
                "X-RateLimit-Reset": "2026-11-20T12:03:00.123Z",
            },
            (300, 12, 180.123),
        ),
        # X: reset is epoch seconds
        (
            {
                "x-rate-limit-limit": "450",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(NOW.timestamp()) + 900),
            },
            (450, 0, 900.0),
        ),
        # Reddit: floats, reset in seconds from now, no limit header (used + remaining)
        ({"X-Ratelimit-Used": "576", "X-Ratelimit-Remaining": "24.0", "X-Ratelimit-Reset": "240"}, (600, 24, 240.0)),
        # Bluesky: RateLimit-* with epoch reset
        (
            {
                "RateLimit-Limit": "3000",
                "RateLimit-Remaining": "2983",
                "RateLimit-Reset": str(int(NOW.timestamp()) + 60),
            },
            (3000, 2983, 60.0),
        ),
    ],
)
def test_rate_window_reads_every_header_family(headers: dict[str, str], expected: tuple) -> None:
    window = rate_window(httpx.Headers(headers), NOW)
    assert window is not None
    assert (window.limit, window.remaining) == expected[:2]
    assert window.reset_in == pytest.approx(expected[2], abs=0.01)


def test_rate_window_absent_or_garbage() -> None:
    assert rate_window(httpx.Headers({}), NOW) is None
    window = rate_window(httpx.Headers({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "soon"}), NOW)
    assert window is not None and window.reset_in is None and window.wait() is None


def test_rate_window_wait_only_when_nearly_exhausted() -> None:
    def window(remaining: int):
        return rate_window(
            httpx.Headers(
                {
                    "x-rate-limit-limit": "100",
                    "x-rate-limit-remaining": str(remaining),
                    "x-rate-limit-reset": str(int(NOW.timestamp()) + 50),
                }
            ),
            NOW,
        )

    assert window(50).wait() is None
    assert window(10).wait() == pytest.approx(50)
    assert window(0).exhausted


def test_link_rel_parses_mastodon_links() -> None:
    header = (
        '<https://m.example/api/v1/timelines/tag/x?max_id=5>; rel="next", '
        '<https://m.example/api/v1/timelines/tag/x?min_id=9>; rel="prev"'
    )
    assert link_rel(header, "prev") == "https://m.example/api/v1/timelines/tag/x?min_id=9"
    assert link_rel(header, "next").endswith("max_id=5")
    assert link_rel(None, "prev") is None


def test_html_to_text() -> None:
    html = '<p>Hello <a href="x">@<span>bob</span></a> &amp; co</p><p>line<br/>two</p><script>x</script>'
    assert html_to_text(html) == "Hello @bob & co\nline\ntwo\nx"
    assert html_to_text(None) == "" and html_to_text("\x1b[31mred\x00") == "[31mred"


def test_json_field_helpers() -> None:
    data = {"a": {"b": [{"c": "1"}]}, "n": "12.0", "t": True}
    assert dig(data, "a", "b", 0, "c") == "1"
    assert dig(data, "a", "b", 5) is None and dig(data, "x", "y") is None and dig("str", "a") is None
    assert int_of(data, "n") == 12 and int_of(data, "t") is None and int_of(data, "a") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T12:00:00Z", NOW),
        ("2026-11-20T13:00:00+01:00", NOW),
        ("2026-11-20T12:00:00", NOW),
        (NOW.timestamp(), NOW),
        ("not a date", None),
        (None, None),
        (True, None),
        (1e30, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_urls_cursors_ids() -> None:
    assert web_url("javascript:alert(1)") is None and web_url("https://x.org/a") == "https://x.org/a"
    assert load_cursor("{bad") == {} and load_cursor("[1]") == {} and load_cursor('{"a": 1}') == {"a": 1}
    assert newest_id(["99", "100", None], "98") == "100"


CONFIG = """
[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]

  [[clients.sources]]
  kind = "mastodon"
  instances = ["https://piaille.fr", "https://mastodon.social"]
  hashtags = ["chezgege"]
  search = ["chez gégé"]
  mentions = true
  token_env = "MASTODON_TOKEN"

  [[clients.sources]]
  kind = "bluesky"
  identifier = "chezgege.bsky.social"
  password_env = "BLUESKY_APP_PASSWORD"
  search = ["chez gégé"]
  mentions = true

  [[clients.sources]]
  kind = "bluesky-jetstream"

  [[clients.sources]]
  kind = "reddit"
  search = ["chez gégé"]
  subreddits = ["lyon"]
  client_id_env = "REDDIT_CLIENT_ID"
  client_secret_env = "REDDIT_CLIENT_SECRET"

  [[clients.sources]]
  kind = "x"
  query = '"chez gégé" -is:retweet'
  bearer_env = "X_BEARER_TOKEN"
  monthly_read_budget = 1000

  [[clients.sources]]
  kind = "youtube"
  channel_id = "UCa-vrCLQHviTOVnEKDOdetQ"
  key_env = "YOUTUBE_API_KEY"

  [[clients.sources]]
  kind = "hackernews"
  search = ["chez gégé"]
"""


def test_every_social_kind_reads_from_config_toml() -> None:
    config = parse_config(CONFIG, environ={})
    kinds = [s.kind for s in config.sources]
    assert kinds == ["mastodon", "bluesky", "bluesky-jetstream", "reddit", "x", "youtube", "hackernews"]
    secrets = {name for s in config.sources for name in s.options.secret_env}
    assert secrets == {
        "MASTODON_TOKEN",
        "BLUESKY_APP_PASSWORD",
        "REDDIT_CLIENT_ID",
        "REDDIT_CLIENT_SECRET",
        "X_BEARER_TOKEN",
        "YOUTUBE_API_KEY",
    }
    assert all(s.target for s in config.sources)


def test_secret_values_in_config_are_refused_with_paths() -> None:
    bad = CONFIG.replace('bearer_env = "X_BEARER_TOKEN"', 'bearer_env = "AAAA-real-token-value"').replace(
        "monthly_read_budget = 1000", 'monthly_read_budget = "lots"'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, environ={})
    paths = {p.path for p in caught.value.problems}
    assert {"clients[0].sources[4].bearer_env", "clients[0].sources[4].monthly_read_budget"} <= paths
    assert "AAAA-real-token-value" not in str(caught.value)
