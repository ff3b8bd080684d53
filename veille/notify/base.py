"""The notifier interface the outbox dispatcher calls, and the errors a notifier raises.

A notifier sends one rendered notification to one route (a contact's chat on one channel) and
classifies every failure so the dispatcher knows what to do, by type, never by message text:

    NotifyError
    ├── NotifyRetryable      timeouts, 5xx, network: retry with backoff (`ambiguous` if maybe delivered)
    │   └── NotifyRateLimited    wait `retry_after` (persisted), for this route or globally
    └── NotifyPermanent      will never succeed as is: mark dead after reporting once
        ├── RecipientGone        blocked / kicked: mark the route gone, escalate to the next contact
        ├── RouteMoved           chat migrated: update the route to `new_address`, resend once
        └── NotifierAuthFailed   bad token: pause all sends on this channel, health red
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from veille.core.errors import VeilleError
from veille.core.incidents import Summary, Urgency


@dataclass(frozen=True, slots=True)
class HitSummary:
    """A hit as shown inside an alert."""

    hit_id: int
    source_kind: str
    text: str
    url: str | None
    author: str | None
    author_followers: int | None
    engagement: str  # human summary, e.g. "312 partages, 40 réponses"
    sentiment: str | None  # "neg -0.82"
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a notification (a monthly report): kept whole in the outbox payload, so it is sent
    after a restart as it was made."""

    filename: str
    content: str  # UTF-8 text (an HTML or Markdown report)
    mime: str = "text/html"

    @property
    def size(self) -> int:
        return len(self.content.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one contact, as stored in the outbox payload.

    `tag` (e.g. "#INC-42") appears in every message of an incident so a human can spot duplicates.
    `silent` asks the channel not to ring (quiet hours, low urgency).
    """

    outbox_id: int
    incident_id: int | None
    tag: str
    kind: str  # opened | update | repeat | escalated | resolved | digest | notice
    client_id: str | None
    client_name: str | None
    contact: str
    urgency: Urgency
    silent: bool
    title: str
    reasons: tuple[str, ...] = ()  # why it fired: risk, spike figures, crisis words
    hits: tuple[HitSummary, ...] = ()
    lang: str = "fr"
    possible_duplicate: bool = False
    created_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    summary: Summary | None = None  # what the incident's posts are about (buzz and volume)
    attachment: Attachment | None = None  # a file to send with the message (kind "report")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the channel answered on success."""

    message_ids: tuple[str, ...] = ()


class NotifyError(VeilleError):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotifyRetryable(NotifyError):
    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous  # the peer may have received it (timeout after send)


class NotifyRateLimited(NotifyRetryable):
    def __init__(self, message: str, *, retry_after: float, global_: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.global_ = global_


class NotifyPermanent(NotifyError):
    pass


class RecipientGone(NotifyPermanent):
    pass


class RouteMoved(NotifyPermanent):
    def __init__(self, message: str, *, new_address: str) -> None:
        super().__init__(message)
        self.new_address = new_address


class NotifierAuthFailed(NotifyPermanent):
    pass


@runtime_checkable
class Notifier(Protocol):
    channel: str  # "console", "telegram", "apprise", "fake"

    async def send(self, notification: Notification, address: str) -> Delivery:
        """Send to `address` (chat id, URL...). Raise a NotifyError subclass on failure."""
        ...

    async def aclose(self) -> None: ...
