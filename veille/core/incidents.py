"""Incidents and their vocabulary: what detection signals, what the escalation core decides on, what the
store keeps. Value types only, so that the pure core, the store and the notifiers share them without
importing one another."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from veille.core.i18n import N_, wording


class Urgency(StrEnum):
    LOW = "low"
    HIGH = "high"


class Cause(StrEnum):
    BUZZ = "buzz"  # risky hits or a spike of negative hits
    VOLUME = "volume"  # unusual volume, not negative
    SOURCE = "source"  # one source failing for hours
    SILENCE = "silence"  # a client receiving no data at all
    AUDIENCE = "audience"  # an account's audience (followers, rating) fell beyond its threshold
    REPLY_DUE = "reply_due"  # a customer awaits an answer: its deadline is near (the reply inbox)
    REPLY = "reply"  # a customer awaits an answer past its deadline


class Status(StrEnum):
    PENDING = "pending"  # inside group_wait: nobody told yet
    OPEN = "open"
    ACKED = "acked"  # acknowledged or snoozed until `ack_until`
    RESOLVED = "resolved"


class Mode(StrEnum):
    """How a notification reaches a contact."""

    WAKE = "wake"  # rings the phone
    SILENT = "silent"  # delivered without sound
    HELD = "held"  # not sent now: goes into the contact's next digest


class Kind(StrEnum):
    OPENED = "opened"
    UPDATE = "update"
    REPEAT = "repeat"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    DIGEST = "digest"
    NOTICE = "notice"
    REPORT = "report"  # a client's monthly report ([reports] send)


# How each state, urgency, cause, kind, mode and delivery state reads to a person (English msgids, shown
# through the wording catalogue): `veille alerts`, `veille replay`, `veille status` and the notifiers.
_LABELS: dict[str, str] = {
    Urgency.LOW: N_("low"),
    Urgency.HIGH: N_("high"),
    Cause.BUZZ: N_("bad buzz"),
    Cause.VOLUME: N_("volume spike"),
    Cause.SOURCE: N_("source down"),
    Cause.SILENCE: N_("silence"),
    Cause.AUDIENCE: N_("audience falling"),
    Cause.REPLY_DUE: N_("reply due"),
    Cause.REPLY: N_("reply overdue"),
    Status.PENDING: N_("waiting"),  # an incident inside group_wait, a delivery not sent yet
    Status.OPEN: N_("open"),
    Status.ACKED: N_("taken"),
    Status.RESOLVED: N_("resolved"),
    Mode.WAKE: N_("rings"),
    Mode.SILENT: N_("without ringing"),
    Mode.HELD: N_("held for the digest"),
    Kind.OPENED: N_("opened"),
    Kind.UPDATE: N_("update"),
    Kind.REPEAT: N_("reminder"),
    Kind.ESCALATED: N_("escalated"),
    Kind.DIGEST: N_("digest"),
    Kind.NOTICE: N_("notice"),
    Kind.REPORT: N_("monthly report"),
    # outbox delivery states and incident events
    "sent": N_("sent"),
    "dead": N_("failed"),
    "cancelled": N_("cancelled"),
    "ack": N_("taken"),
    "snooze": N_("postponed"),
}


def label(value: str) -> str:
    """The English label of a state, urgency, cause, kind or mode value (the value itself if unknown)."""
    return _LABELS.get(value, value)


def incident_key(client_id: str, cause: Cause, subject: str = "") -> str:
    return f"{client_id}:{cause.value}" + (f":{subject}" if subject else "")


@dataclass(frozen=True, slots=True)
class Summary:
    """What an incident is about, in a few words: computed from its posts (veille.alerting.summary), stored
    with it and shown in its alerts, the digest and `veille alerts`."""

    terms: tuple[str, ...]  # the words and word pairs that stand out against the client's usual posts
    crisis_words: tuple[str, ...]  # crisis words its posts contain, most frequent first
    posts: int
    authors: int
    sources: int
    top_hits: tuple[int, ...] = ()  # the most representative posts: most engaged, then most central

    def as_dict(self) -> dict[str, object]:
        return {
            "terms": list(self.terms),
            "crisis_words": list(self.crisis_words),
            "posts": self.posts,
            "authors": self.authors,
            "sources": self.sources,
            "top_hits": list(self.top_hits),
        }

    @classmethod
    def from_dict(cls, raw: object) -> Summary | None:
        """The stored form back (None for no summary or a shape this version cannot read)."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                terms=tuple(str(t) for t in raw.get("terms", ())),
                crisis_words=tuple(str(t) for t in raw.get("crisis_words", ())),
                posts=int(raw["posts"]),
                authors=int(raw["authors"]),
                sources=int(raw["sources"]),
                top_hits=tuple(int(h) for h in raw.get("top_hits", ())),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(slots=True)
class Signal:
    """What detection says about one dedup key right now."""

    client_id: str
    cause: Cause
    firing: bool
    urgency: Urgency = Urgency.LOW
    subject: str = ""
    title: str = ""
    reasons: tuple[str, ...] = ()
    new_hits: tuple[int, ...] = ()  # hit ids that are new evidence
    top_hits: tuple[int, ...] = ()  # best evidence so far, most risky first
    score: float = 0.0
    evidence_count: int | None = None  # total evidence in the window, when detection knows it

    @property
    def key(self) -> str:
        return incident_key(self.client_id, self.cause, self.subject)


@dataclass(slots=True)
class Incident:
    id: int | None
    key: str
    client_id: str
    cause: Cause
    subject: str
    status: Status
    urgency: Urgency
    firing: bool
    opened_at: datetime
    notify_at: datetime  # end of group_wait (or of the cool-down)
    last_evidence_at: datetime
    title: str = ""
    reasons: tuple[str, ...] = ()
    hit_count: int = 0
    top_hits: tuple[int, ...] = ()
    score: float = 0.0
    version: int = 1  # bumped by every meaningful change
    notified_version: int = 0
    notified_urgency: Urgency | None = None
    last_notified_at: datetime | None = None
    notified_contacts: tuple[str, ...] = ()
    held_for: tuple[str, ...] = ()  # contacts whose last notification waits for their digest
    level: int = 0  # index in the contact chain
    loops: int = 0
    escalate_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_until: datetime | None = None
    resolved_at: datetime | None = None
    flaps: int = 0
    summary: Summary | None = None  # buzz and volume incidents: what their posts are about

    @property
    def tag(self) -> str:
        return f"#INC-{self.id}" if self.id is not None else "#INC-?"

    @property
    def active(self) -> bool:
        return self.status is not Status.RESOLVED


MAX_EXTRA_CRISIS_WORDS = 3


def summary_line(summary: Summary, lang: str) -> str:
    """ "intoxication · malade · urgences : 7 posts, 5 auteurs, 3 sources (aussi : boycott, honte)"."""
    w = wording(lang)
    counts = ", ".join(
        (
            w.ngettext("{n} post", "{n} posts", summary.posts).format(n=summary.posts),
            w.ngettext("{n} author", "{n} authors", summary.authors).format(n=summary.authors),
            w.ngettext("{n} source", "{n} sources", summary.sources).format(n=summary.sources),
        )
    )
    line = w._("{terms}: {counts}").format(terms=" · ".join(summary.terms), counts=counts) if summary.terms else counts
    shown = {t.lower() for term in summary.terms for t in term.split()}
    extra = [c for c in summary.crisis_words if c.lower() not in shown][:MAX_EXTRA_CRISIS_WORDS]
    if extra:
        line += " " + w._("(also: {words})").format(words=", ".join(extra))
    return line
