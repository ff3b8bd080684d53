"""Bluesky Jetstream: every new post of the network, matched locally against all clients' keywords.

Jetstream (https://github.com/bluesky-social/jetstream) streams the firehose as JSON over a
websocket. One consumer serves every client: each post is matched against each client's
`Matcher`, and the matches are handed over in batches together with the cursor (`time_us`) to
persist once they are stored. On (re)connect the consumer resumes from the stored cursor minus a
few seconds (Jetstream replays from a cursor; duplicates are dropped by the store), and
reconnects with capped, jittered exponential backoff.

Matching 50 clients per post would cost 50 regex scans; instead a word index (for each keyword
alternative, one word it cannot match without -> clients) finds the few candidate clients of a post
from its words, and only those run their real matcher. This is exact, not a heuristic: every term
of a keyword matches whole alphanumeric runs of the folded text (see `veille.core.matching`), so a
client none of whose index words occurs in the post cannot match it (tested as a property).

The source kind "bluesky-jetstream" only validates options: the daemon runs `JetstreamConsumer`
instead of polling it.

    [[clients.sources]]
    kind = "bluesky-jetstream"
    url = "wss://jetstream2.us-east.bsky.network/subscribe"   # default
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from veille.core.backoff import EQUAL, BackoffPolicy
from veille.core.clock import Clock
from veille.core.configreader import Reader
from veille.core.errors import PermanentFetchError, Problems
from veille.core.i18n import N_
from veille.core.matching import Matcher, fold
from veille.core.models import ErrorKind, Item
from veille.core.polling import PollOutcome, PollState
from veille.sources._common import bounded, dig, parse_time, text_of, web_url
from veille.sources.base import DriverBase, PollContext
from veille.sources.bluesky import post_url, record_lang

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION = "app.bsky.feed.post"
REWIND_US = 5_000_000  # resume a few seconds before the stored cursor: nothing falls in the gap
# 1 s, 2 s, 4 s... up to 2 min between reconnects, equal jitter so that restarted consumers spread out.
RECONNECT = BackoffPolicy(base=1.0, cap=120.0, jitter=EQUAL)
MAX_MESSAGE = 2 * 1024 * 1024
_WORDS = re.compile(r"[a-z0-9]+")

OnBatch = Callable[[dict[str, list[Item]], int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JetstreamOptions:
    url: str = DEFAULT_URL
    zstd_dictionary: str | None = None

    @property
    def target(self) -> str:
        return f"jetstream: {urlsplit(self.url).hostname}"

    @property
    def secret_env(self) -> tuple[str, ...]:
        return ()


class JetstreamDriver(DriverBase[JetstreamOptions]):
    """Config validation for kind "bluesky-jetstream"; the daemon runs `JetstreamConsumer`."""

    kind: ClassVar[str] = "bluesky-jetstream"
    streams: ClassVar[bool] = True
    # The firehose gives no figure at all: a public post, a few readers.
    reach_prior: ClassVar[float] = 0.2

    def stream_group(self, options: JetstreamOptions) -> str:
        return options.url

    def open_stream(
        self, options: JetstreamOptions, matchers: Mapping[str, Matcher], *, clock: Clock, log: logging.Logger
    ) -> JetstreamConsumer:
        dictionary = Path(options.zstd_dictionary).read_bytes() if options.zstd_dictionary else None
        return JetstreamConsumer(options.url, dict(matchers), clock=clock, log=log, zstd_dictionary=dictionary)

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> JetstreamOptions | None:
        before = len(problems)
        reader = Reader(raw, path, problems)
        url = reader.url("url", DEFAULT_URL, schemes=("wss", "ws"))
        dictionary = reader.str("zstd_dictionary", None)
        reader.finish()
        if dictionary is not None and not Path(dictionary).is_file():
            reader.add(
                "zstd_dictionary",
                N_("{dictionary!r} is not a file").format(dictionary=dictionary),
                N_("give the path of Jetstream's zstd dictionary, or remove the key for plain JSON"),
            )
        if len(problems) > before:
            return None
        return JetstreamOptions(url, dictionary)

    async def poll(self, ctx: PollContext, options: JetstreamOptions, state: PollState) -> PollOutcome:
        raise PermanentFetchError(
            ErrorKind.INTERNAL, N_("bluesky-jetstream is a stream: the daemon runs JetstreamConsumer, not poll()")
        )


# --- matching --------------------------------------------------------------------------------


_TOKEN = re.compile(r'-?"[^"]*"|\S+')  # the same tokenising as veille.core.matching
_OR = re.compile(r"\s+or\s+")


def entry_words(entry: str) -> set[str] | None:
    """Words of which at least one occurs in every text the keyword entry can match.

    Mirrors `veille.core.matching`'s grammar: an entry is alternatives split on OR; an alternative
    needs all its positive tokens; a token matches whole alphanumeric runs of the folded text. So
    one word of one positive token per alternative is a necessary condition; the longest is kept
    (the rarest, roughly). Returns an empty set for an exclusion-only entry (it never makes a
    match) and None when no word can be found (the client must then always be asked).
    """
    text = fold(entry.strip())
    plain = '"' not in text and " or " not in text and not re.search(r"(?:^|\s)-\S", text)
    words: set[str] = set()
    for part in [text] if plain else _OR.split(text):
        tokens = [part] if plain else _TOKEN.findall(part)
        positive = [t.strip('"') for t in tokens if not (t.startswith("-") and len(t) > 1)]
        if not positive:
            continue  # only exclusions: this alternative matches nothing by itself
        required = [w for token in positive for w in _WORDS.findall(token)]  # all needed (AND, phrases)
        if not required:
            return None
        words.add(max(required, key=len))
    return words


class MatcherIndex:
    """Finds the clients whose keywords may match a text, then asks their real matcher."""

    def __init__(self, matchers: Mapping[str, Matcher]) -> None:
        self._matchers = dict(matchers)
        self._by_word: dict[str, set[str]] = {}
        self._always: set[str] = set()
        for client_id, matcher in self._matchers.items():
            words: set[str] = set()
            for entry in matcher.keywords:
                found = entry_words(entry)
                if found is None:
                    self._always.add(client_id)  # cannot index it: always ask its matcher
                    break
                words |= found
            for word in words:
                self._by_word.setdefault(word, set()).add(client_id)

    def candidates(self, folded: str) -> set[str]:
        found = set(self._always)
        by_word = self._by_word
        for word in set(_WORDS.findall(folded)):
            clients = by_word.get(word)
            if clients:
                found |= clients
        return found

    def match(self, text: str) -> list[tuple[str, bool, tuple[str, ...]]]:
        """(client_id, direct, terms) for every client whose matcher accepts `text`."""
        found = []
        for client_id in self.candidates(fold(text)):
            result = self._matchers[client_id].match(text)
            if result.matched:
                found.append((client_id, result.direct, result.terms))
        return found


def event_post(event: Any) -> tuple[str, str, Any] | None:
    """(did, uri, record) of a post creation/update event; None for anything else."""
    if not isinstance(event, Mapping) or event.get("kind") != "commit":
        return None
    commit = event.get("commit")
    if not isinstance(commit, Mapping) or commit.get("collection") != POST_COLLECTION:
        return None
    if commit.get("operation") not in ("create", "update"):
        return None
    did, rkey, record = text_of(event, "did"), text_of(commit, "rkey"), commit.get("record")
    if not did or not rkey or not isinstance(record, Mapping):
        return None
    return did, f"at://{did}/{POST_COLLECTION}/{rkey}", record


def post_text(record: Any) -> tuple[str, str]:
    """(title, text) of a post record: a link card's title counts as the title."""
    text = text_of(record, "text") or ""
    title = text_of(record, "embed", "external", "title") or text_of(record, "embed", "media", "external", "title")
    return bounded(title or "", 1000), bounded(text)


def event_item(event: Any, *, direct: bool = False, terms: tuple[str, ...] = ()) -> Item | None:
    """A Jetstream post event -> Item (author is the DID: Jetstream carries no handle)."""
    post = event_post(event)
    if post is None:
        return None
    did, uri, record = post
    title, text = post_text(record)
    time_us = event.get("time_us")
    published = parse_time(text_of(record, "createdAt"))
    if published is None and isinstance(time_us, int):
        published = parse_time(time_us / 1_000_000)
    extra = {"did": did}
    link = web_url(text_of(record, "embed", "external", "uri"))
    if link:
        extra["link"] = link
    if terms:
        extra["terms"] = ", ".join(terms)
    if dig(record, "reply", "parent", "uri"):
        extra["reply_to"] = text_of(record, "reply", "parent", "uri") or ""
    return Item(
        external_id=uri,
        text=text,
        title=title,
        url=post_url(did, uri),
        author=did,
        published_at=published,
        lang=record_lang(record),
        direct=direct,
        extra=extra,
    )


# --- consumer --------------------------------------------------------------------------------


class _BatchFailed(Exception):
    """`on_batch` raised (e.g. the database refused the write): reconnect from the stored cursor."""


class _Batch:
    def __init__(self) -> None:
        self.items: dict[str, list[Item]] = {}
        self.posts = 0
        self.matched = 0
        self.cursor: int | None = None


class JetstreamConsumer:
    """Consumes Jetstream until `stop` is set; see the module docstring.

    `on_batch(items_by_client, cursor)` is awaited with the matched items and the `time_us` to
    persist after they are stored, every `batch_seconds` or as soon as `batch_size` items matched
    (one write transaction per batch, whatever the post rate); it is also called with no items
    every `cursor_every` seconds so that a restart does not replay hours of unmatched posts.
    """

    def __init__(
        self,
        url: str,
        matchers: Mapping[str, Matcher],
        *,
        clock: Clock,
        log: logging.Logger | logging.LoggerAdapter[Any],
        batch_size: int = 200,
        batch_seconds: float = 0.5,
        cursor_every: float = 5.0,
        rewind_us: int = REWIND_US,
        reconnect: BackoffPolicy = RECONNECT,
        zstd_dictionary: bytes | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.index = MatcherIndex(matchers)
        self.clock = clock
        self.log = log
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.cursor_every = cursor_every
        self.rewind_us = rewind_us
        self.reconnect = reconnect
        self.open_timeout = open_timeout
        # After a failed batch the read queue may be full, so the peer's close frame is never read:
        # a short close timeout keeps the reconnect prompt.
        self.close_timeout = close_timeout
        self._decompress: Callable[[bytes], bytes] | None = None
        if zstd_dictionary is not None:
            import zstandard

            decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(zstd_dictionary))
            self._decompress = lambda data: decompressor.decompress(data, max_output_size=MAX_MESSAGE)
        self.posts_seen = 0
        self.messages = 0
        self.connections = 0
        self.last_cursor: int | None = None

    def subscribe_url(self, cursor: int | None) -> str:
        parts = urlsplit(self.url)
        skip = ("wantedCollections", "cursor", "compress")
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in skip]
        query.append(("wantedCollections", POST_COLLECTION))
        if self._decompress is not None:
            query.append(("compress", "true"))
        if cursor is not None:
            query.append(("cursor", str(max(cursor - self.rewind_us, 0))))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    async def run(
        self, stop: asyncio.Event, load_cursor: Callable[[], Awaitable[int | None]], on_batch: OnBatch
    ) -> None:
        """Consume until `stop` is set; returns within about `batch_seconds + close_timeout` of it."""
        failures = 0
        while not stop.is_set():
            cursor = self.last_cursor if self.last_cursor is not None else await load_cursor()
            session = asyncio.ensure_future(self._session(self.subscribe_url(cursor), cursor, stop, on_batch))
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not session.done():
                    # A consuming session notices `stop` within batch_seconds and stores its batch;
                    # only a hung connect or close is cut short.
                    await asyncio.wait({session}, timeout=self.batch_seconds + self.close_timeout + 1)
            finally:
                stopped.cancel()
                if not session.done():
                    session.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await session
            if stop.is_set():
                break
            received = session.result()
            failures = 0 if received else failures + 1
            delay = self.reconnect.delay(failures + 1)  # a session that received data: the shortest wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _session(self, url: str, cursor: int | None, stop: asyncio.Event, on_batch: OnBatch) -> int:
        """One connection: returns the number of messages it received, also when it ended in a failure."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        before = self.messages
        try:
            async with connect(
                url,
                max_size=MAX_MESSAGE,
                max_queue=256,
                compression=None,
                proxy=None,
                open_timeout=self.open_timeout,
                close_timeout=self.close_timeout,
                user_agent_header="veille",
            ) as ws:
                self.connections += 1
                self.log.info("jetstream.connected", extra={"cursor": cursor})
                await self._consume(ws, stop, on_batch)
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.log.warning("jetstream.disconnected", extra={"error": type(exc).__name__})
        except _BatchFailed as exc:
            # Nothing past the last stored cursor is lost: Jetstream replays it after the wait.
            self.log.error("jetstream.batch_failed", exc_info=exc.__cause__)
            return 0  # count it as a failure: back off before replaying
        return self.messages - before

    async def _consume(self, ws: Any, stop: asyncio.Event, on_batch: OnBatch) -> int:
        """Read until the connection ends or `stop` is set; return the number of messages."""
        batch = _Batch()
        received = 0
        started = self.clock.monotonic()
        last_flush = started
        failed = False
        try:
            while not stop.is_set():
                timeout = max(0.0, self.batch_seconds - (self.clock.monotonic() - started))
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=timeout or 0.001)
                except TimeoutError:
                    message = None
                if message is not None:
                    received += 1
                    self.messages += 1
                    self._handle(message, batch)
                now = self.clock.monotonic()
                full = batch.matched >= self.batch_size or now - started >= self.batch_seconds
                if full and batch.cursor is not None and (batch.items or now - last_flush >= self.cursor_every):
                    failed = True
                    await self._flush(batch, on_batch)
                    failed = False
                    batch = _Batch()
                    last_flush = now
                if full:
                    started = now
        finally:
            if batch.cursor is not None and batch.items and not failed:
                await self._flush(batch, on_batch)  # matched items are never dropped on a disconnect
        return received

    async def _flush(self, batch: _Batch, on_batch: OnBatch) -> None:
        assert batch.cursor is not None
        try:
            await on_batch(batch.items, batch.cursor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever the store raised: retry the batch via a replay
            raise _BatchFailed() from exc
        self.last_cursor = batch.cursor

    def _handle(self, message: str | bytes, batch: _Batch) -> None:
        if isinstance(message, bytes) and self._decompress is not None:
            try:
                message = self._decompress(message)
            except Exception:  # zstd raises its own ZstdError; a bad frame is skipped, never fatal
                self.log.warning("jetstream.bad_frame")
                return
        try:
            event = json.loads(message)
        except ValueError:
            self.log.warning("jetstream.bad_json")
            return
        time_us = event.get("time_us") if isinstance(event, dict) else None
        if isinstance(time_us, int) and (batch.cursor is None or time_us > batch.cursor):
            batch.cursor = time_us
        post = event_post(event)
        if post is None:
            return
        batch.posts += 1
        self.posts_seen += 1
        title, text = post_text(post[2])
        for client_id, direct, terms in self.index.match(f"{title}\n{text}" if title else text):
            item = event_item(event, direct=direct, terms=terms)
            if item is not None:
                batch.items.setdefault(client_id, []).append(item)
                batch.matched += 1
