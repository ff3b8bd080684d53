"""The source interface every network implements, and the registry that finds a driver by `kind`.

A driver is stateless configuration-wise: the daemon gives it the source's validated options and
its stored poll state, and gets back items and the next poll state. Adding a network is one module
with a driver class plus one line in `veille/sources/registry.py`; nothing else changes.

Drivers never filter by keyword (the pipeline applies the client's matcher uniformly), never write
to the database, and never build an HTTP client: they use `ctx.http`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from veille.core.errors import Problems
from veille.core.models import Item
from veille.core.polling import PollOutcome, PollState

if TYPE_CHECKING:
    import asyncio
    import logging

    from veille.core.clock import Clock
    from veille.core.matching import Matcher
    from veille.net.http import HttpClient


class SourceOptions(Protocol):
    """A driver's validated, frozen options. `target` is what `veille sources` shows."""

    @property
    def target(self) -> str: ...

    @property
    def secret_env(self) -> tuple[str, ...]:
        """Names of the environment variables this source needs (never their values)."""
        ...


@dataclass(slots=True)
class PollContext:
    """Everything a driver may use during a poll."""

    http: HttpClient
    clock: Clock
    client_id: str
    source_key: str
    log: logging.Logger | logging.LoggerAdapter[Any]
    env: Callable[[str], str | None]  # reads a secret by environment variable name
    parse_feed: Callable[..., Any] | None = None  # async feed parser with time/memory bounds
    keywords: tuple[str, ...] | None = None  # the client's, for a parser that can match (FeedParsePool)
    cache: dict[str, Any] = field(default_factory=dict)  # per-source, per-process (session tokens)


@runtime_checkable
class SourceDriver(Protocol):
    kind: ClassVar[str]
    parses_feeds: ClassVar[bool]
    streams: ClassVar[bool]
    reach_prior: ClassVar[float]

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> SourceOptions | None:
        """Validate the source's own keys (`kind` and `every` are already handled).

        Report each problem with `problems.add(f"{path}.key", message, fix)`; return None if invalid.
        Unknown keys must be reported too.
        """
        ...

    async def poll(self, ctx: PollContext, options: Any, state: PollState) -> PollOutcome:
        """Fetch new items. Raise a `veille.core.errors.FetchError` subclass on failure."""
        ...

    def stream_group(self, options: Any) -> str: ...

    def open_stream(
        self, options: Any, matchers: Mapping[str, Matcher], *, clock: Clock, log: logging.Logger
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


class DriverBase:
    """What a driver declares besides its options and its poll; the runtime and the CLI ask these,
    never the kind's name. A driver overrides only what it needs."""

    parses_feeds: ClassVar[bool] = False  # its polls parse feeds in the parse-worker pool
    streams: ClassVar[bool] = False  # fed by one long-lived consumer per stream group instead of polls
    # How many people a hit of this kind reaches when it carries no audience figure, on risk's 0-1 reach
    # scale (0.2 ~ 10 followers, 0.4 ~ 100, 0.5 ~ 300, 0.6 ~ 1,000, 0.7 ~ 3,000, 0.8 ~ 10,000). It is the floor of
    # the hit's reach: without it a press article, which gives no follower count, could never ring.
    # A kind that gives its authors' followers keeps 0 (a small audience is then a fact).
    reach_prior: ClassVar[float] = 0.0

    def stream_group(self, options: Any) -> str:
        """Sources of one group share one consumer (for example one Jetstream URL)."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def open_stream(
        self, options: Any, matchers: Mapping[str, Matcher], *, clock: Clock, log: logging.Logger
    ) -> StreamConsumer:
        """The consumer of a stream group, matching each post against every subscribed client."""
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    def describe_state(self, cursor: str | None, target: str, lang: str) -> str | None:
        """A note for `veille sources` read from the stored cursor (for example a feed that moved)."""
        return None
