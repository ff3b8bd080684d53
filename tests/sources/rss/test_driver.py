"""RssDriver over real loopback HTTP (LocalServer + veille.net.http.HttpClient): 200/304, D3, D12, E1-E4, E10."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import feeds
from tests.support.server import LocalServer, Request, Response
from veille.core.clock import FakeClock
from veille.core.errors import FetchError, PermanentFetchError, Problems, RetryableFetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollState
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.sources.base import PollContext, SourceDriver
from veille.sources.registry import get_driver
from veille.sources.rss.driver import RssDriver, RssOptions
from veille.sources.rss.entries import ParsedFeed, parse_document
from veille.sources.rss.parsepool import FeedParsePool

LAST_MODIFIED = "Mon, 16 Nov 2026 10:00:00 GMT"


def rss_headers() -> dict[str, str]:
    """A fresh dict each time: LocalServer adds Content-Encoding to the dict of a gzip response."""
    return {"Content-Type": "application/rss+xml; charset=utf-8"}


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with HttpClient(HttpConfig(allow_private_addresses=True, timeout=10.0)) as client:
        yield client


class CountingParser:
    """The in-process parser behind `ctx.parse_feed`, counting calls (a switchable fake)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, body: bytes, url: str, headers: dict[str, str], **selection: Any) -> ParsedFeed:
        self.calls += 1
        return parse_document(body, url, headers)  # ctx.keywords is None here: no selection asked


def context(http: HttpClient, parse_feed: Any = None) -> PollContext:
    return PollContext(
        http=http,
        clock=FakeClock(),
        client_id="resto",
        source_key="resto/feed",
        log=logging.getLogger("test.rss"),
        env=lambda name: None,
        parse_feed=parse_feed,
    )


def options(url: str, **raw: Any) -> RssOptions:
    problems = Problems()
    parsed = RssDriver().parse_options({"url": url, **raw}, "clients[0].sources[0]", problems)
    assert parsed is not None, [str(p) for p in problems.items]
    return parsed


# --- options -------------------------------------------------------------------------------------


def test_registered_and_implements_the_protocol() -> None:
    driver = get_driver("rss")
    assert isinstance(driver, RssDriver) and isinstance(driver, SourceDriver)


def test_valid_options() -> None:
    opts = options("https://example.org/feed", headers={"Accept-Language": "fr"}, max_entries=50)
    assert (opts.target, opts.secret_env, opts.header_map, opts.max_entries) == (
        "https://example.org/feed",
        (),
        {"Accept-Language": "fr"},
        50,
    )


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({}, "url"),
        ({"url": "ftp://example.org/feed"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://example.org/", "colour": "red"}, "colour"),
        ({"url": "https://example.org/", "max_entries": 0}, "max_entries"),
        ({"url": "https://example.org/", "max_entries": "10"}, "max_entries"),
        ({"url": "https://example.org/", "headers": {"Host": "evil.example"}}, "headers.Host"),
        ({"url": "https://example.org/", "headers": {"Connection": "close"}}, "headers.Connection"),
        ({"url": "https://example.org/", "headers": {"X-A": 3}}, "headers.X-A"),
        ({"url": "https://example.org/", "headers": {"X-A": "a\r\nB: c"}}, "headers.X-A"),
        ({"url": "https://example.org/", "headers": "x"}, "headers"),
    ],
)
def test_invalid_options_are_reported_with_their_path(raw: dict[str, Any], where: str) -> None:
    problems = Problems()
    assert RssDriver().parse_options(raw, "clients[0].sources[1]", problems) is None
    assert any(p.path == f"clients[0].sources[1].{where}" for p in problems.items), [str(p) for p in problems.items]


# --- polling -------------------------------------------------------------------------------------


async def test_first_poll_returns_items_and_validators(server: LocalServer, http: HttpClient) -> None:
    headers = {**rss_headers(), "ETag": '"v1"', "Last-Modified": LAST_MODIFIED}
    server.route("/feed", Response(200, feeds.rss(3), headers))
    outcome = await RssDriver().poll(context(http), options(server.url("/feed")), PollState())
    assert [i.external_id for i in outcome.items] == ["guid-0", "guid-1", "guid-2"]
    assert (outcome.etag, outcome.last_modified) == ('"v1"', "Mon, 16 Nov 2026 10:00:00 GMT")
    assert outcome.content_hash and not outcome.not_modified


async def test_conditional_get_and_304(server: LocalServer, http: HttpClient) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(304, b"", {"ETag": '"v1"'})
        return Response(200, feeds.rss(2), {**rss_headers(), "ETag": '"v1"', "Last-Modified": LAST_MODIFIED})

    server.route("/feed", handler)
    parser = CountingParser()
    driver, opts = RssDriver(), options(server.url("/feed"))
    first = await driver.poll(context(http, parser), opts, PollState())
    state = PollState(etag=first.etag, last_modified=first.last_modified, content_hash=first.content_hash)
    second = await driver.poll(context(http, parser), opts, state)
    assert second.not_modified and second.items == []
    assert (second.etag, second.last_modified, second.content_hash) == (
        first.etag,
        first.last_modified,
        first.content_hash,
    )
    assert server.requests[1].headers.get("If-Modified-Since") == "Mon, 16 Nov 2026 10:00:00 GMT"
    assert parser.calls == 1


async def test_same_body_without_caching_is_not_parsed_again(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.rss(2), rss_headers()))
    parser = CountingParser()
    driver, opts = RssDriver(), options(server.url("/feed"))
    first = await driver.poll(context(http, parser), opts, PollState())
    second = await driver.poll(context(http, parser), opts, PollState(content_hash=first.content_hash))
    assert len(first.items) == 2 and second.not_modified and second.items == []
    assert parser.calls == 1


async def test_changed_body_is_parsed(server: LocalServer, http: HttpClient) -> None:
    bodies = [feeds.rss(1), feeds.rss(2)]
    server.route("/feed", lambda request: Response(200, bodies[min(len(server.requests), 2) - 1], rss_headers()))
    driver, opts = RssDriver(), options(server.url("/feed"))
    first = await driver.poll(context(http), opts, PollState())
    second = await driver.poll(context(http), opts, PollState(content_hash=first.content_hash))
    assert len(second.items) == 2 and second.content_hash != first.content_hash


async def test_custom_headers_are_sent(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.rss(1), rss_headers()))
    await RssDriver().poll(context(http), options(server.url("/feed"), headers={"X-Token-Name": "abc"}), PollState())
    assert server.requests[0].headers.get("X-Token-Name") == "abc"


async def test_gzip_and_max_entries(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.rss(30), rss_headers(), gzip=True))
    outcome = await RssDriver().poll(context(http), options(server.url("/feed"), max_entries=10), PollState())
    assert len(outcome.items) == 10


async def test_html_login_page_is_not_a_feed(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.HTML_LOGIN_PAGE, {"Content-Type": "text/html"}))
    with pytest.raises(PermanentFetchError) as info:
        await RssDriver().poll(context(http), options(server.url("/feed")), PollState())
    assert info.value.kind is ErrorKind.NOT_A_FEED


@pytest.mark.parametrize(
    "body", [feeds.quadratic_blowup(), feeds.billion_laughs().encode(), feeds.billion_laughs().encode("utf-16")]
)
async def test_entity_bombs_are_refused(server: LocalServer, http: HttpClient, body: bytes) -> None:
    server.route("/feed", Response(200, body, {"Content-Type": "application/xml"}))
    with pytest.raises(PermanentFetchError) as info:
        await RssDriver().poll(context(http), options(server.url("/feed")), PollState())
    assert info.value.kind is ErrorKind.UNSAFE_XML


async def test_external_dtd_and_entities_cause_no_request(server: LocalServer, http: HttpClient) -> None:
    server.route("/dtd.xml", Response(200, feeds.external_dtd(server.url("/evil.dtd")), rss_headers()))
    server.route("/pe.xml", Response(200, feeds.parameter_entity(server.url("/evil.dtd")), rss_headers()))
    driver = RssDriver()
    outcome = await driver.poll(context(http), options(server.url("/dtd.xml")), PollState())
    assert [i.title for i in outcome.items] == ["ok"]
    with pytest.raises(PermanentFetchError):
        await driver.poll(context(http), options(server.url("/pe.xml")), PollState())
    assert [r.path for r in server.requests] == ["/dtd.xml", "/pe.xml"]  # nothing else was fetched


async def test_truncated_transfer_is_a_retryable_network_error(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.rss(20), rss_headers(), truncate_at=500))
    with pytest.raises(RetryableFetchError):
        await RssDriver().poll(context(http), options(server.url("/feed")), PollState())


async def test_malformed_and_truncated_xml(server: LocalServer, http: HttpClient) -> None:
    server.route("/truncated", Response(200, feeds.BROKEN_TRUNCATED, rss_headers()))
    server.route("/garbage", Response(200, feeds.GARBAGE, rss_headers()))
    driver = RssDriver()
    outcome = await driver.poll(context(http), options(server.url("/truncated")), PollState())
    assert [i.external_id for i in outcome.items][:2] == ["g0", "g1"]
    with pytest.raises(FetchError) as info:
        await driver.poll(context(http), options(server.url("/garbage")), PollState())
    assert info.value.kind in (ErrorKind.PARSE_ERROR, ErrorKind.NOT_A_FEED)


async def test_hostile_text_is_cleaned(server: LocalServer, http: HttpClient) -> None:
    entry = feeds.Entry(
        title=f"Alerte {feeds.ANSI_TEXT}",
        description=feeds.ACTIVE_HTML,
        cdata=True,
        link="javascript:alert(1)",
        guid="g",
    )
    server.route("/feed", Response(200, feeds.Feed(entries=[entry]).bytes(), rss_headers()))
    item = (await RssDriver().poll(context(http), options(server.url("/feed")), PollState())).items[0]
    assert item.url is None
    assert "\x1b" not in item.title and "alert" not in item.text and "script" not in item.text


async def test_through_the_parse_pool(server: LocalServer, http: HttpClient) -> None:
    server.route("/feed", Response(200, feeds.atom(4), {"Content-Type": "application/atom+xml"}))
    server.route("/redos", Response(200, feeds.redos_authors(), rss_headers()))
    pool = FeedParsePool(workers=1, timeout=1.0)
    try:
        driver = RssDriver()
        outcome = await driver.poll(context(http, pool.parse), options(server.url("/feed")), PollState())
        assert outcome.items[0].url == "https://blog.example.org/posts/0"
        with pytest.raises(PermanentFetchError) as info:
            await driver.poll(context(http, pool.parse), options(server.url("/redos")), PollState())
        assert info.value.kind is ErrorKind.PARSE_TIMEOUT
        again = await driver.poll(context(http, pool.parse), options(server.url("/feed")), PollState())
        assert len(again.items) == 4
    finally:
        pool.close()
