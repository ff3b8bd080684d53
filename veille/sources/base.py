"""The source interface every network implements, and the registry that finds a driver by `kind`.

A driver is stateless configuration-wise: the daemon gives it the source's validated options and
its stored poll state, and gets back items and the next poll state. Adding a network is one module
with a driver class plus one line in `veille/sources/registry.py`; nothing else changes.

Drivers never filter by keyword (the pipeline applies the client's matcher uniformly), never write
to the database, and never build an HTTP client: they use `ctx.http`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from veille.errors import Problems
from veille.models import Item

if TYPE_CHECKING:
    import logging

    from veille.clock import Clock
    from veille.http import HttpClient


class SourceOptions(Protocol):
    """A driver's validated, frozen options. `target` is what `veille sources` shows."""

    @property
    def target(self) -> str: ...

    @property
    def secret_env(self) -> tuple[str, ...]:
        """Names of the environment variables this source needs (never their values)."""
        ...


@dataclass(frozen=True, slots=True)
class PollState:
    """What a source remembers between polls (persisted by the store)."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None  # driver-owned, opaque (JSON text is fine): since_id, min_id, page token
    content_hash: str | None = None  # hash of the last body parsed: same body -> skip the parse


@dataclass(slots=True)
class PollOutcome:
    """The result of one successful poll."""

    items: list[Item] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    content_hash: str | None = None
    not_modified: bool = False  # 304 or identical body: nothing parsed
    note: str | None = None  # shown by `veille sources` (e.g. "budget: 812/1000 reads left")
    earliest_next_poll: float | None = None  # seconds; e.g. rate-limit window nearly exhausted


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

    def parse_options(self, raw: Mapping[str, Any], path: str, problems: Problems) -> SourceOptions | None:
        """Validate the source's own keys (`kind` and `every` are already handled).

        Report each problem with `problems.add(f"{path}.key", message, fix)`; return None if invalid.
        Unknown keys must be reported too.
        """
        ...

    async def poll(self, ctx: PollContext, options: Any, state: PollState) -> PollOutcome:
        """Fetch new items. Raise a `veille.errors.FetchError` subclass on failure."""
        ...
