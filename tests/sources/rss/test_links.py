"""Entry links: http(s) only (B9); Google Alerts and Google News redirectors unwrapped."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veille.sources.rss import links
from veille.sources.rss.links import decode_google_news_id, entry_url, safe_url, unwrap_google

ARTICLE = "https://www.ouest-france.fr/bretagne/rennes/un-article-123.html"


def old_google_news_id(url: str) -> str:
    """An id in the older format: protobuf {1: 19, 4: url, 26: ""} as base64url without padding."""
    payload = bytes([0x08, 0x13, 0x22, len(url)]) + url.encode() + bytes([0xD2, 0x01, 0x00])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "file:///etc/passwd",
        "tg://resolve?domain=x",
        "ftp://example.org/x",
        "//example.org/x",
        "/relative",
        "https://",
        "http://exa mple.org/",
        "https://example.org/\x00",
        "https://[::1/",
        None,
        42,
        "https://example.org/" + "a" * 5000,
    ],
)
def test_only_http_and_https_links_are_kept(value: object) -> None:
    assert safe_url(value) is None
    assert entry_url(value) is None


def test_plain_links_pass_unchanged() -> None:
    assert entry_url("  https://example.org/a?b=1#c ") == "https://example.org/a?b=1#c"
    assert entry_url("HTTP://Example.org/") == "HTTP://Example.org/"


def test_google_alerts_redirect_is_unwrapped() -> None:
    link = (
        "https://www.google.com/url?rct=j&sa=t&url=https://www.lemonde.fr/a%3Fx%3D1%26y%3D2"
        "&ct=ga&cd=CAIyGjA&usg=AOvVaw1"
    )
    assert entry_url(link) == "https://www.lemonde.fr/a?x=1&y=2"
    assert unwrap_google("https://www.google.fr/url?q=https://example.org/p&sa=U") == "https://example.org/p"


def test_google_redirect_to_a_bad_scheme_is_not_followed() -> None:
    link = "https://www.google.com/url?url=javascript:alert(1)"
    assert entry_url(link) == link


def test_lookalike_hosts_are_not_unwrapped() -> None:
    link = "https://evilgoogle.com/url?url=https://example.org/"
    assert entry_url(link) == link
    link = "https://google.com.evil.example/url?url=https://example.org/"
    assert entry_url(link) == link


def test_old_google_news_ids_are_decoded() -> None:
    article_id = old_google_news_id(ARTICLE)
    assert article_id.startswith("CBMi")
    assert decode_google_news_id(article_id) == ARTICLE
    assert entry_url(f"https://news.google.com/rss/articles/{article_id}?oc=5") == ARTICLE
    assert entry_url(f"https://news.google.com/articles/{article_id}") == ARTICLE


def test_long_urls_use_a_two_byte_length() -> None:
    url = "https://example.org/" + "a" * 300
    payload = bytes([0x08, 0x13, 0x22]) + bytes([0x80 | (len(url) & 0x7F), len(url) >> 7]) + url.encode()
    article_id = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert decode_google_news_id(article_id) == url


@pytest.mark.parametrize(
    "article_id",
    [
        "CBMiAU_yqLOkn1w7ZMmF0Ixx1vSl3m3e1hCkP4ZJkVq",  # newer format: an opaque token, no URL inside
        "not-base64-!!!",
        "",
        "CBMi",
        "CBMi" + "A" * 50,
    ],
)
def test_undecodable_google_news_ids_keep_the_link(article_id: str) -> None:
    link = f"https://news.google.com/rss/articles/{article_id}"
    assert decode_google_news_id(article_id) is None
    assert entry_url(link) == (link if safe_url(link) else None)


_URL_PARTS = st.sampled_from(
    [
        "http",
        "https",
        "HTTP",
        "ftp",
        "javascript",
        "",
        "://",
        "//",
        ":",
        "@",
        "[",
        "]",
        "::1",
        "80",
        "99999",
        "/",
        "?",
        "#",
        "a",
        "ex-ample.fr",
        "é",
        ".",
        "-",
        "user:pw",
        " ",
        "%20",
        "\\",
    ]
)


@given(st.lists(_URL_PARTS, max_size=8).map("".join))
def test_the_plain_link_shortcut_agrees_with_the_full_check(value: str) -> None:
    """safe_url decides the usual links with one regex; on anything, its answer is the full check's."""
    full = links._PLAIN_HTTP_URL
    try:
        links._PLAIN_HTTP_URL = links.re.compile(r"(?!)")  # a pattern that never matches: the full check only
        expected = safe_url(value)
    finally:
        links._PLAIN_HTTP_URL = full
    assert safe_url(value) == expected


def test_a_google_host_in_capitals_is_still_unwrapped() -> None:
    """The screen that lets most links skip the parse ignores case, as host names do."""
    assert unwrap_google("HTTPS://WWW.GOOGLE.FR/url?q=https://example.org/p") == "https://example.org/p"
