"""The morning digest: what happened since the last one, per client, and the conversations still awaiting
the client's answer (what waited overnight), each with an excerpt of the customer's message. Pure: data in,
text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from veille.core.durations import format_duration
from veille.core.i18n import wording
from veille.core.incidents import Incident, Kind, label, summary_line
from veille.core.models import Channel
from veille.notify.render import incident_title

MAX_LINES = 30
MAX_AWAITING = 8  # per client; the rest is counted, `veille inbox` lists them all
EXCERPT = 100


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A conversation still awaiting the client's answer when the digest goes out (the reply inbox)."""

    item_id: int
    client_id: str
    channel: str
    author: str | None
    excerpt: str
    waiting_since: datetime


def _awaiting_lines(items: Sequence[Awaiting], lang: str, now: datetime, tz: tzinfo) -> list[str]:
    """One client's waiting conversations, the longest waiting first: who, where, since when, what."""
    w = wording(lang)
    lines = [w.ngettext("  {n} awaits an answer:", "  {n} await an answer:", len(items)).format(n=len(items))]
    for item in sorted(items, key=lambda i: i.waiting_since)[:MAX_AWAITING]:
        text = " ".join(item.excerpt.split())
        text = text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"
        head = w._("#{id} {channel} from {author}, since {since} ({waited})").format(
            id=item.item_id,
            channel=w._(Channel(item.channel).label),
            author=item.author or "?",
            since=f"{item.waiting_since.astimezone(tz):%d/%m %H:%M}",
            waited=format_duration(now - item.waiting_since),
        )
        lines.append("    " + w._("{head}: “{text}”").format(head=head, text=text))
    if len(items) > MAX_AWAITING:
        rest = len(items) - MAX_AWAITING
        lines.append("    " + w.ngettext("… {n} more: veille inbox", "… {n} more: veille inbox", rest).format(n=rest))
    return lines


def compose(
    incidents: Sequence[Incident],
    counts: Mapping[str, tuple[int, int]],
    names: Mapping[str, str],
    lang: str,
    *,
    awaiting: Sequence[Awaiting] = (),
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> tuple[str, tuple[str, ...]]:
    """(title, lines): per client its volume and negative posts, each incident touched, then the conversations
    still awaiting its answer."""
    w = wording(lang)
    lines: list[str] = []
    now = now or datetime.now(UTC)
    clients = set(counts) | {i.client_id for i in incidents} | {a.client_id for a in awaiting}
    for client_id in sorted(clients):
        name = names.get(client_id, client_id)
        total, negative = counts.get(client_id, (0, 0))
        posts = w.ngettext("{name}: {n} post", "{name}: {n} posts", total).format(name=name, n=total)
        lines.append(
            w.ngettext("{posts}, {n} negative", "{posts}, {n} negative", negative).format(posts=posts, n=negative)
        )
        for incident in (i for i in incidents if i.client_id == client_id):
            head = incident_title(incident.cause, Kind.OPENED, name, incident.subject, lang)
            hits = w.ngettext("{n} hit", "{n} hits", incident.hit_count).format(n=incident.hit_count)
            details = f"{hits}, {w._(label(incident.urgency))}, {w._(label(incident.status))}"
            lines.append(f"  {incident.tag} {head} — {details}")
            if incident.summary is not None:
                lines.append(f"    {summary_line(incident.summary, lang)}")
        waiting = [a for a in awaiting if a.client_id == client_id]
        if waiting:
            lines.extend(_awaiting_lines(waiting, lang, now, tz))
    if len(lines) > MAX_LINES:
        rest = len(lines) - MAX_LINES + 1
        more = w.ngettext("… {n} more line: veille alerts", "… {n} more lines: veille alerts", rest).format(n=rest)
        lines = [*lines[: MAX_LINES - 1], more]
    return w._("Digest: what happened since the last one"), tuple(lines)
