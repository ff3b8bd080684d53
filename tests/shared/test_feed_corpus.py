"""Every feed of the shared corpus (../shared/fixtures/feeds) through loopback HTTP and the real RssDriver.

For each file: no exception other than a FetchError, an answer within 10 s, and for every document
feedparser itself reads as a well-formed feed (a version, no bozo) as many entries as feedparser
finds, capped by max_entries. Documents that declare entities are refused by design (unsafe_xml)
and counted apart. Run with `-s` to see the figures.
"""

from __future__ import annotations

import io
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, requires_shared
from tests.support.server import LocalServer, Request, Response
from veille.core.clock import SystemClock
from veille.core.errors import FetchError
from veille.core.models import ErrorKind
from veille.core.polling import PollState
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.sources.base import PollContext
from veille.sources.rss.driver import RssDriver, RssOptions
from veille.sources.rss.entries import ParsedFeed
from veille.sources.rss.parsepool import FeedParsePool
from veille.sources.rss.safety import find_entity_declaration

pytestmark = [pytest.mark.shared, requires_shared]

CORPUS = SHARED / "fixtures" / "feeds"
MAX_ENTRIES = 200
TIME_BOUND = 10.0
CONTENT_TYPE = "application/xml"


def corpus_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "MANIFEST.tsv" and "LICENSES" not in p.relative_to(CORPUS).parts
    )


def feedparser_reference(body: bytes, url: str) -> tuple[bool, int]:
    """(well-formed feed according to feedparser, number of entries it finds)."""
    import feedparser

    result = feedparser.parse(
        io.BytesIO(body), response_headers={"content-type": CONTENT_TYPE, "content-location": url}
    )
    return bool(result.get("version")) and not result.get("bozo"), len(result.get("entries") or [])


async def test_every_corpus_feed() -> None:
    files = corpus_files()
    assert len(files) > 250
    bodies = {f"/f/{index}": path.read_bytes() for index, path in enumerate(files)}
    names = {f"/f/{index}": str(path.relative_to(CORPUS)) for index, path in enumerate(files)}
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    refused_by_design: list[str] = []
    compared = matched = 0
    slowest = (0.0, "")
    pool = FeedParsePool(workers=2, timeout=5.0, max_entries=MAX_ENTRIES)
    parsed: dict[str, ParsedFeed] = {}

    async def parse_feed(body: bytes, url: str, headers: Any, **selection: Any) -> ParsedFeed:
        feed = await pool.parse(body, url, headers, **selection)
        parsed[url] = feed
        return feed

    def serve(request: Request) -> Response:
        return Response(200, bodies[request.path], {"Content-Type": CONTENT_TYPE})

    try:
        with LocalServer() as server:
            server.route("*", serve)
            async with HttpClient(HttpConfig(allow_private_addresses=True)) as http:
                ctx = PollContext(
                    http=http,
                    clock=SystemClock(),
                    client_id="corpus",
                    source_key="corpus/feed",
                    log=logging.getLogger("test.corpus"),
                    env=lambda name: None,
                    parse_feed=parse_feed,
                )
                driver = RssDriver()
                for path, body in bodies.items():
                    url = server.url(path)
                    started = time.monotonic()
                    kind = "ok"
                    try:
                        outcome = await driver.poll(ctx, RssOptions(url=url), PollState())
                    except FetchError as exc:
                        kind = exc.kind.value
                        if exc.kind is ErrorKind.UNSAFE_XML:
                            refused_by_design.append(names[path])
                    except Exception as exc:  # the test's point: nothing else may escape
                        problems.append(f"{names[path]}: unexpected {type(exc).__name__}: {exc}")
                        kind = "crash"
                    elapsed = time.monotonic() - started
                    slowest = max(slowest, (elapsed, names[path]))
                    if elapsed > TIME_BOUND:
                        problems.append(f"{names[path]}: took {elapsed:.1f} s")
                    outcomes[kind] += 1
                    well_formed, expected = feedparser_reference(body, url)
                    if not well_formed:
                        continue
                    declares = find_entity_declaration(body.decode("latin-1")) is not None
                    if kind == ErrorKind.UNSAFE_XML.value and declares:
                        continue  # entity declarations are refused on purpose (RELIABILITY E1-E3)
                    compared += 1
                    got = len(parsed[url].entries) if kind == "ok" else -1
                    if kind == "ok" and got == min(expected, MAX_ENTRIES) and len(outcome.items) <= got:
                        matched += 1
                    else:
                        problems.append(f"{names[path]}: {kind}, {got} entries, feedparser finds {expected}")
    finally:
        pool.close()
    summary = (
        f"{len(files)} files: {dict(outcomes)}; well-formed compared {compared}, matched {matched}; "
        f"refused by design (entities): {len(refused_by_design)}; slowest {slowest[0]:.2f} s ({slowest[1]})"
    )
    print(summary)
    assert not problems, summary + "\n" + "\n".join(problems)
