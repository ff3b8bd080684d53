"""Value types and states shared by every part of veille. No I/O here.

States are StrEnums stored as text in the database, never magic integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from veille.core.i18n import N_


class ErrorKind(StrEnum):
    """Why a poll failed; stored on the source and shown by `veille sources`."""

    NETWORK = "network"  # DNS, refused, reset
    TIMEOUT = "timeout"  # total deadline exceeded
    TLS = "tls"
    HTTP_5XX = "http_5xx"
    HTTP_4XX = "http_4xx"
    NOT_FOUND = "not_found"  # 404: the source becomes GONE once it lasts `[daemon] gone_after`
    GONE = "gone"  # 410
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"  # daily/monthly API budget exhausted
    AUTH = "auth"  # 401/403, missing or revoked credentials
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    FORBIDDEN_ADDRESS = "forbidden_address"
    UNSAFE_XML = "unsafe_xml"
    PARSE_ERROR = "parse_error"
    PARSE_TIMEOUT = "parse_timeout"
    NOT_A_FEED = "not_a_feed"
    BAD_RESPONSE = "bad_response"  # malformed JSON, missing fields
    INTERNAL = "internal"  # a bug in veille; logged with a traceback

    @property
    def label(self) -> str:
        """The kind in words: an English msgid, shown through the wording catalogue."""
        return _ERROR_KIND_LABELS[self]


_ERROR_KIND_LABELS = {
    ErrorKind.NETWORK: N_("network"),
    ErrorKind.TIMEOUT: N_("timeout"),
    ErrorKind.TLS: N_("TLS"),
    ErrorKind.HTTP_5XX: N_("server error (5xx)"),
    ErrorKind.HTTP_4XX: N_("request refused (4xx)"),
    ErrorKind.NOT_FOUND: N_("not found"),
    ErrorKind.GONE: N_("gone"),
    ErrorKind.RATE_LIMITED: N_("rate limited"),
    ErrorKind.QUOTA: N_("quota exhausted"),
    ErrorKind.AUTH: N_("credentials"),
    ErrorKind.TOO_LARGE: N_("too large"),
    ErrorKind.TOO_MANY_REDIRECTS: N_("too many redirects"),
    ErrorKind.FORBIDDEN_ADDRESS: N_("forbidden address"),
    ErrorKind.UNSAFE_XML: N_("unsafe XML"),
    ErrorKind.PARSE_ERROR: N_("parse error"),
    ErrorKind.PARSE_TIMEOUT: N_("parse timeout"),
    ErrorKind.NOT_A_FEED: N_("not a feed"),
    ErrorKind.BAD_RESPONSE: N_("bad response"),
    ErrorKind.INTERNAL: N_("internal error"),
}


def error_kind_label(value: str) -> str:
    """The label of a stored error kind (the value itself for a kind this version does not know)."""
    try:
        return ErrorKind(value).label
    except ValueError:
        return value


class SourceStatus(StrEnum):
    OK = "ok"
    NEW = "new"  # never polled yet
    FAILING = "failing"
    BACKING_OFF = "backing_off"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    GONE = "gone"


# A source's state in words (msgids of the catalogue), the same for `veille sources` and the dashboard.
SOURCE_STATUS_WORDS: dict[str, str] = {
    SourceStatus.OK: N_("ok"),
    SourceStatus.NEW: N_("new"),
    SourceStatus.FAILING: N_("failing"),
    SourceStatus.BACKING_OFF: N_("backing off"),
    SourceStatus.RATE_LIMITED: N_("rate limited"),
    SourceStatus.AUTH_FAILED: N_("credentials refused"),
    SourceStatus.GONE: N_("gone"),
}


class SentimentLabel(StrEnum):
    NEG = "neg"
    NEU = "neu"
    POS = "pos"


@dataclass(frozen=True, slots=True)
class Engagement:
    """One observation of a post's reach. Kept as a time series per hit."""

    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    score: int | None = None
    views: int | None = None

    def total(self) -> int:
        return sum(v for v in (self.likes, self.reposts, self.replies) if v)


class Channel(StrEnum):
    """Where a customer addresses a client, for the reply inbox's deadlines (`[clients.inbox]`)."""

    MESSAGE = "message"  # a private message (Messenger, Instagram direct)
    COMMENT = "comment"  # a comment or reply under a post
    REVIEW = "review"  # a review of the client's place, and the owner's reply
    POST = "post"  # a post addressed to the client (visitor post, mention)

    @property
    def label(self) -> str:
        """The channel in words: an English msgid, shown through the wording catalogue."""
        return {"message": N_("message"), "comment": N_("comment"), "review": N_("review"), "post": N_("post")}[
            self.value
        ]


REVIEW_TYPES = frozenset({"review", "owner_reply"})  # `extra["type"]` of a review and of the owner's reply


@dataclass(frozen=True, slots=True)
class Item:
    """What a source yields for one post or entry, before keyword matching and storage.

    `external_id` is the source's stable id for the post (guid, status uri, tweet id...).
    Text fields are plain text (HTML already stripped) and already bounded in size.
    """

    external_id: str
    text: str
    title: str = ""
    url: str | None = None  # http/https only; anything else is dropped by the source
    author: str | None = None  # handle
    author_name: str | None = None  # display name
    author_followers: int | None = None
    published_at: datetime | None = None  # aware UTC; None -> fetch time
    lang: str | None = None
    engagement: Engagement | None = None
    direct: bool = False  # addresses the client (mention, reply, comment on its channel, message, review)
    extra: dict[str, str] = field(default_factory=dict)  # small source-specific facts
    private: bool = False  # a private message (Messenger, Instagram direct): not visible to the public
    thread_id: str | None = None  # the platform's post or conversation it belongs to (the reply inbox follows it)
    parent_id: str | None = None  # the comment or message it answers, when it is a reply
    # Found outside the client's own channels (posts tagging the page, hashtag search): kept only when it
    # matches the client's keywords, even though it addresses the client.
    needs_keywords: bool = False
    stars: int | None = None  # a review's star rating (1-5): 1 or 2 is negative whatever the text says
    # Set when the source matched the client's keywords itself (the RSS parse workers do): the terms
    # found, and the pipeline does not match again. None: not matched yet.
    matched_terms: tuple[str, ...] | None = None
    # Written by the client's own account in its own channel (the page's answer to a comment or message,
    # the owner's reply to a review): it answers a conversation of the reply inbox and is never an alert.
    from_client: bool = False
    # The reply inbox's thread, named by the source itself where replies form a flat tree (Mastodon, Bluesky,
    # X): the thread's root and the customer the client talks with, so that the client's answer to that
    # customer closes it and the customer's next message reopens it. None: derived below.
    conversation_key: str | None = None

    @property
    def kept_unmatched(self) -> bool:
        """Stored without a keyword match: it addresses the client on one of the client's own channels."""
        return self.direct and not self.needs_keywords

    @property
    def channel(self) -> Channel:
        if self.private:
            return Channel.MESSAGE
        if self.stars is not None or self.extra.get("type") in REVIEW_TYPES:
            return Channel.REVIEW
        return Channel.COMMENT if self.parent_id else Channel.POST

    @property
    def conversation(self) -> str:
        """The reply inbox's thread: a message's conversation, a review, the top comment a reply answers.

        A top-level comment opens its own conversation (answering one comment under a post does not answer
        the others); the client's own top-level comment answers the post it sits under."""
        if self.conversation_key:
            return self.conversation_key
        if self.channel is Channel.COMMENT and self.parent_id:
            if self.parent_id != self.thread_id:
                return self.parent_id
            return self.thread_id if self.from_client else self.external_id
        if self.channel in (Channel.MESSAGE, Channel.REVIEW):
            return self.thread_id or self.external_id
        return self.external_id


@dataclass(frozen=True, slots=True)
class SentimentResult:
    """A scorer's verdict on one text.

    `label` is None for a post in a language the scorer does not score (issue 16): it is stored with
    its language and no sentiment, and counts neither as negative nor as positive."""

    label: SentimentLabel | None
    score: float  # in [-1, 1]; 0 when unscored
    lang: str  # "fr", "en", another ISO 639-1 code (veille.scoring.language), or "und"
    reasons: tuple[str, ...] = ()

    @classmethod
    def unscored(cls, lang: str) -> SentimentResult:
        return cls(None, 0.0, lang)

    @property
    def scored(self) -> bool:
        return self.label is not None

    def brief(self) -> str:
        """'neg -0.80', or 'unscored (es)': as alerts show it (in English; `wording.text` translates it)."""
        if self.label is None:
            return N_("unscored ({lang})").format(lang=self.lang)
        return f"{self.label.value} {self.score:+.2f}"


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A hit as just stored, handed to the alerting work inside the same write transaction."""

    id: int
    client_id: str
    source_key: str
    kind: str
    external_id: str
    text: str
    title: str
    url: str | None
    author: str | None
    author_followers: int | None
    direct: bool
    published_at: datetime
    fetched_at: datetime
    sentiment: SentimentResult | None = None
    engagement: Engagement | None = None
    duplicate_of: int | None = None  # same post already stored through another source
    reach_prior: float = 0.0  # its source kind's reach when the hit gives no figure (DriverBase.reach_prior)
    # The reply inbox's view of it (Item.channel, Item.conversation, Item.from_client); None: not followed.
    channel: Channel | None = None
    conversation: str | None = None
    from_client: bool = False
    matched_terms: tuple[str, ...] = ()  # the keywords it matched, when just stored (not on a refresh)
