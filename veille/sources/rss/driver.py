"""RSS, Atom and RDF feeds (including Google Alerts and Google News feeds).

A poll is a conditional GET (ETag / Last-Modified, D2). A 304, or a 200 whose body hashes the same
as the last parsed one (servers that ignore caching, D3), ends the poll without parsing. Otherwise
the body goes to `ctx.parse_feed` (the daemon's `FeedParsePool`: worker processes with time and
memory limits) or, when none is wired (tests, one-shot commands), to the same `parse_document`
in-process. Entries become `Item`s through `veille.sources.rss.entries.to_items` (identity, dates).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from veille.core.configreader import Reader
from veille.core.errors import Problems
from veille.core.i18n import N_
from veille.core.polling import PollOutcome, PollState
from veille.net.redact import redact_url
from veille.sources import relocation
from veille.sources.base import DriverBase, PollContext
from veille.sources.rss.entries import (
    DEFAULT_MAX_ENTRIES,
    ParsedFeed,
    keep_matching,
    matcher_for,
    parse_document,
    to_items,
)

# Set by the HTTP layer (conditional GET, decoding, connection management): not per source.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "trailer",
        "content-length",
        "if-none-match",
        "if-modified-since",
        "accept-encoding",
        "cookie",
    }
)
MAX_ENTRIES_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class RssOptions:
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    max_entries: int | None = None  # None: the daemon's [daemon] max_entries

    @property
    def target(self) -> str:
        return self.url

    @property
    def secret_env(self) -> tuple[str, ...]:
        return ()

    @property
    def header_map(self) -> dict[str, str]:
        return dict(self.headers)


class RssDriver(DriverBase[RssOptions]):
    kind: ClassVar[str] = "rss"
    parses_feeds: ClassVar[bool] = True
    # A feed entry is a published article, review or blog post (Google News, Google Alerts, a local paper):
    # read by a few thousand people although the feed never says how many.
    reach_prior: ClassVar[float] = 0.7

    def describe_state(self, cursor: str | None, target: str, lang: str) -> str | None:
        """A feed that moved (301/308): "déplacé vers … (adopté)" in the reader's language."""
        return relocation.describe(relocation.from_cursor(cursor, target), lang)

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> RssOptions | None:
        reader = Reader(raw, path, problems)
        before = len(problems)
        url = reader.url("url")
        max_entries = reader.int("max_entries", None, min=1, max=MAX_ENTRIES_LIMIT)
        headers = _read_headers(reader)
        reader.finish()
        if url is None or len(problems) > before:
            return None
        return RssOptions(url=url, headers=headers, max_entries=max_entries)

    async def poll(self, ctx: PollContext, options: RssOptions, state: PollState) -> PollOutcome:
        previous = relocation.from_cursor(state.cursor, options.url)
        url = previous.request_url() if previous else options.url  # every hop still passes the SSRF guard
        response = await ctx.http.get(
            url, headers=options.header_map or None, etag=state.etag, last_modified=state.last_modified
        )
        moved = relocation.advance(previous, origin=options.url, permanent_url=response.permanent_url)
        _log_move(ctx, previous, moved)
        # The cursor is written only when not None: "" clears a relocation that no longer applies.
        cursor = moved.to_cursor() if moved else ("" if state.cursor else None)
        note = relocation.describe(moved, "fr")
        etag = response.headers.get("etag") or state.etag
        last_modified = response.headers.get("last-modified") or state.last_modified
        if response.not_modified:
            return PollOutcome(
                not_modified=True,
                etag=etag,
                last_modified=last_modified,
                content_hash=state.content_hash,
                cursor=cursor,
                note=note,
            )
        digest = hashlib.sha256(response.body).hexdigest()
        if digest == state.content_hash:  # same bytes as last time: nothing new to parse (D3)
            return PollOutcome(
                not_modified=True, etag=etag, last_modified=last_modified, content_hash=digest, cursor=cursor, note=note
            )
        headers = {"content-type": response.headers.get("content-type", "")}
        feed: ParsedFeed
        if ctx.parse_feed is not None:
            # The parse worker also selects and matches: only the client's matching entries come back.
            feed = await ctx.parse_feed(
                response.body,
                response.url,
                headers,
                keywords=ctx.keywords,
                now=ctx.clock.now().timestamp(),
                max_entries=options.max_entries,
            )
        else:
            limit = options.max_entries or DEFAULT_MAX_ENTRIES
            now = ctx.clock.now().timestamp()
            feed = parse_document(response.body, response.url, headers, max_entries=limit, now=now)
            if ctx.keywords:  # matched here as in a parse worker: on every field of the entry
                feed = keep_matching(feed, matcher_for(tuple(ctx.keywords)), now=now, max_entries=options.max_entries)
        items = to_items(feed, now=ctx.clock.now(), max_entries=options.max_entries)
        if feed.bozo:
            ctx.log.debug("feed read despite a problem: %s", feed.bozo)
        return PollOutcome(
            items=items, etag=etag, last_modified=last_modified, content_hash=digest, cursor=cursor, note=note
        )


def _log_move(ctx: PollContext, previous: relocation.Relocation | None, moved: relocation.Relocation | None) -> None:
    """A new permanent target is logged once per sighting streak; its adoption once (host/path only)."""
    if moved is None:
        return
    if moved.adopted and (previous is None or previous.adopted != moved.adopted):
        ctx.log.warning(
            "source %s: feed moved permanently to %s, now polled there directly after %d "
            "confirmations; update its url in config.toml",
            ctx.source_key,
            redact_url(moved.adopted),
            relocation.CONFIRMATIONS,
        )
    elif moved.target and moved.seen == 1:
        ctx.log.info(
            "source %s: permanent redirect to %s (1/%d before it is adopted)",
            ctx.source_key,
            redact_url(moved.target),
            relocation.CONFIRMATIONS,
        )


def _read_headers(reader: Reader) -> tuple[tuple[str, str], ...]:
    table = reader.table("headers")
    if table is None:
        return ()
    headers: list[tuple[str, str]] = []
    for name, value in table.raw.items():
        table.ignore(name)
        if not isinstance(value, str):
            table.add(name, N_("must be a string"), N_('write e.g. {name} = "..."').format(name=name))
            continue
        if name.lower() in _RESERVED_HEADERS or name.lower().startswith("proxy-"):
            table.add(name, N_("is set by veille's HTTP layer and cannot be configured"), N_("remove it"))
            continue
        if not name or any(ch in name for ch in " :\t\r\n\0") or any(ch in value for ch in "\r\n\0"):
            table.add(name, N_("is not a valid HTTP header"), N_("use a plain header name and a one-line value"))
            continue
        headers.append((name, value))
    return tuple(headers)
