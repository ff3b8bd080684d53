"""The source interface every network implements, and the registry that finds a driver by `kind`.

A driver is stateless configuration-wise: the daemon gives it the source's validated options and
its stored poll state, and gets back items and the next poll state. Adding a network is one module
with a driver class plus one line in `veille/sources/registry.py`; nothing else changes.

Drivers never filter by keyword (the pipeline applies the client's matcher uniformly), never write
to the database, and never build an HTTP client: they use `ctx.http`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from veille.core.errors import Problems
from veille.core.models import Item
from veille.core.polling import PollOutcome, PollState

if TYPE_CHECKING:
    import asyncio
    import logging

    from veille.core.clock import Clock
    from veille.core.matching import Matcher
    from veille.net.http import HttpClient
    from veille.sources.rss.entries import ParsedFeed


class SourceOptions(Protocol):
    """A driver's validated, frozen options. `target` is what `veille sources` shows."""

    @property
    def target(self) -> str: ...

    @property
    def secret_env(self) -> tuple[str, ...]:
        """Names of the environment variables this source needs (never their values)."""
        ...


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


class FeedParser(Protocol):
    """Parses a fetched feed with time and memory bounds (the daemon's `FeedParsePool.parse`)."""

    async def __call__(
        self,
        body: bytes,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        keywords: Sequence[str] | None = None,
        now: float | None = None,
        max_entries: int | None = None,
    ) -> ParsedFeed: ...


@dataclass(slots=True)
class PollContext:
    """Everything a driver may use during a poll."""

    http: HttpClient
    clock: Clock
    client_id: str
    source_key: str
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    env: Callable[[str], str | None]  # reads a secret by environment variable name
    parse_feed: FeedParser | None = None
    keywords: tuple[str, ...] | None = None  # the client's, for a parser that can match (FeedParsePool)
    # Per source, per process (session tokens): the driver's own; it checks the type of what it reads back.
    cache: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class SourceDriver(Protocol):
    """What the config, the runtime and the CLI use of a driver. `options` is always what the same
    driver's `parse_options` returned: the registry, which loads drivers by name, is where that is taken
    on trust; each driver class (a `DriverBase[ItsOptions]`) is checked against its own options type."""

    kind: ClassVar[str]
    parses_feeds: ClassVar[bool]
    streams: ClassVar[bool]
    reach_prior: ClassVar[float]
    refreshes: ClassVar[bool]
    sees_own_answers: ClassVar[bool]
    leading_mentions_address: ClassVar[bool]

    def parse_options(self, raw: Mapping[str, object], path: str, problems: Problems) -> SourceOptions | None:
        """Validate the source's own keys (`kind` and `every` are already handled).

        Report each problem with `problems.add(f"{path}.key", message, fix)`; return None if invalid.
        Unknown keys must be reported too.
        """
        ...

    async def poll(self, ctx: PollContext, options: SourceOptions, state: PollState) -> PollOutcome:
        """Fetch new items. Raise a `veille.core.errors.FetchError` subclass on failure."""
        ...

    async def refresh(self, ctx: PollContext, options: SourceOptions, external_ids: list[str]) -> list[Item]:
        """Fetch known posts again by id (when `refreshes`), for their current engagement."""
        ...

    def stream_group(self, options: SourceOptions) -> str: ...

    def open_stream(
        self, options: SourceOptions, matchers: Mapping[str, Matcher], *, clock: Clock, log: logging.Logger
    ) -> StreamConsumer: ...

    def describe_state(self, cursor: str | None, target: str, lang: str) -> str | None: ...


class StreamConsumer(Protocol):
    """A long-lived consumer that feeds several sources at once (one connection per stream group)."""

    async def run(
        self,
        stop: asyncio.Event,
        load_cursor: Callable[[], Awaitable[int | None]],
        store: Callable[[dict[str, list[Item]], int], Awaitable[None]],
    ) -> None: ...


class DriverBase(Generic[OptionsT]):
    """What a driver declares besides its options and its poll; the runtime and the CLI ask these,
    never the kind's name. A driver overrides only what it needs."""

    parses_feeds: ClassVar[bool] = False  # its polls parse feeds in the parse-worker pool
    streams: ClassVar[bool] = False  # fed by one long-lived consumer per stream group instead of polls
    # How many people a hit of this kind reaches when it carries no audience figure, on risk's 0-1 reach
    # scale (0.2 ~ 10 followers, 0.4 ~ 100, 0.5 ~ 300, 0.6 ~ 1,000, 0.7 ~ 3,000, 0.8 ~ 10,000). It is the floor of
    # the hit's reach: without it a press article, which gives no follower count, could never ring.
    # A kind that gives its authors' followers keeps 0 (a small audience is then a fact).
    reach_prior: ClassVar[float] = 0.0
    refreshes: ClassVar[bool] = False  # can fetch known posts again by id (engagement of risky hits)
    # Yields the client's own answers in its threads (`Item.from_client`): the reply inbox follows its
    # conversations, which the client's answer closes. Elsewhere nothing could close them but a person.
    sees_own_answers: ClassVar[bool] = False
    # A post that opens with @handles addresses those accounts (microblogs: replies start with them), rather
    # than tagging a friend under the client's post ("@karine tu connais ?" on Facebook): the reply inbox's
    # rules then read a leading mention as no sign that the question is put to someone else.
    leading_mentions_address: ClassVar[bool] = False

    async def refresh(self, ctx: PollContext, options: OptionsT, external_ids: list[str]) -> list[Item]:
        """Known posts fetched again by id, with their current engagement."""
        raise NotImplementedError(f"{type(self).__name__} does not refresh")

    def stream_group(self, options: OptionsT) -> str:
        """Sources of one group share one consumer (for example one Jetstream URL)."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def open_stream(
        self, options: OptionsT, matchers: Mapping[str, Matcher], *, clock: Clock, log: logging.Logger
    ) -> StreamConsumer:
        """The consumer of a stream group, matching each post against every subscribed client."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def describe_state(self, cursor: str | None, target: str, lang: str) -> str | None:
        """A note for `veille sources` read from the stored cursor (for example a feed that moved)."""
        return None
