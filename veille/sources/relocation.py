"""A feed that moved for good: when to follow its permanent redirects directly (D9).

A 301/308 is followed on every poll by the HTTP layer anyway; adopting the new URL (requesting it
directly) only saves a hop and survives the old host going away. Because one stray redirect (a
misconfigured CDN, a captive portal) must not re-point a source, the target is adopted only after
`CONFIRMATIONS` consecutive polls ended on the same permanent target; a poll without a permanent
redirect, or one to another target, starts the count again.

The state lives in the source's `PollState.cursor` as JSON (the RSS driver has no other use for
the cursor), so it is committed with the rest of the poll state and survives restarts without a
schema change. It remembers the config URL it applies to: once config.toml names another URL, it
is forgotten. Pure functions of data: the driver does the I/O and the logging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from veille.core.i18n import wording
from veille.net.redact import redact_url

CONFIRMATIONS = 3  # consecutive polls ending on the same permanent target before it is adopted


@dataclass(frozen=True, slots=True)
class Relocation:
    origin: str  # the config URL this applies to
    target: str | None = None  # the permanent redirect target seen on the last poll(s)
    seen: int = 0  # consecutive polls that ended on `target`
    adopted: str | None = None  # requested instead of `origin` once confirmed

    def request_url(self) -> str:
        return self.adopted or self.origin

    def to_cursor(self) -> str:
        return json.dumps(
            {"relocation": {"origin": self.origin, "target": self.target, "seen": self.seen, "adopted": self.adopted}},
            separators=(",", ":"),
        )


def from_cursor(cursor: str | None, origin: str) -> Relocation | None:
    """The stored relocation for this config URL; None if there is none or it was for another URL."""
    if not cursor:
        return None
    try:
        data = json.loads(cursor)["relocation"]
        stored = Relocation(
            origin=str(data["origin"]),
            target=data.get("target"),
            seen=int(data.get("seen", 0)),
            adopted=data.get("adopted"),
        )
    except (ValueError, TypeError, KeyError):
        return None  # not ours (written by an older version or by hand): start afresh
    return stored if stored.origin == origin else None


def advance(
    previous: Relocation | None, *, origin: str, permanent_url: str | None, confirmations: int = CONFIRMATIONS
) -> Relocation | None:
    """The state after a poll whose redirects ended (permanently) on `permanent_url`, or had none."""
    adopted = previous.adopted if previous else None
    if permanent_url is None or permanent_url == adopted:
        return Relocation(origin, adopted=adopted) if adopted else None
    seen = previous.seen + 1 if previous and previous.target == permanent_url else 1
    if seen >= confirmations:
        return Relocation(origin, adopted=permanent_url)
    return Relocation(origin, target=permanent_url, seen=seen, adopted=adopted)


def describe(relocation: Relocation | None, lang: str, *, confirmations: int = CONFIRMATIONS) -> str | None:
    """The `veille sources` note: where the feed moved (host and path only, never the query)."""
    if relocation is None:
        return None
    parts = []
    if relocation.adopted:
        where = redact_url(relocation.adopted)
        parts.append(wording(lang)._("moved to {where} (adopted; update url in config.toml)").format(where=where))
    if relocation.target:
        where = redact_url(relocation.target)
        parts.append(
            wording(lang)
            ._("permanent redirect to {where} ({seen}/{confirmations} confirmations)")
            .format(where=where, seen=relocation.seen, confirmations=confirmations)
        )
    return wording(lang).pgettext("list separator", "; ").join(parts) or None
