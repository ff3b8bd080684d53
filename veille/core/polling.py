"""What one poll of a source brings back and what a source remembers between polls: value types shared
by the drivers that produce them, the runtime that moves them and the store that persists them."""

from __future__ import annotations

from dataclasses import dataclass, field

from veille.core.models import Item


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
    # The client account's audience as the API gave it this poll (followers, rating, rating_count);
    # drivers ask at most once a day, the store keeps one figure per metric per day.
    audience: dict[str, float] = field(default_factory=dict)
