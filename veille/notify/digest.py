"""The morning digest: what happened since the last one, per client. Pure: data in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from veille.core.i18n import wording
from veille.core.incidents import Incident, Kind, label, summary_line
from veille.notify.render import incident_title

MAX_LINES = 30


def compose(
    incidents: Sequence[Incident], counts: Mapping[str, tuple[int, int]], names: Mapping[str, str], lang: str
) -> tuple[str, tuple[str, ...]]:
    """(title, lines): per client its volume and negative posts, then each incident touched."""
    w = wording(lang)
    lines: list[str] = []
    for client_id in sorted(set(counts) | {i.client_id for i in incidents}):
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
    if len(lines) > MAX_LINES:
        rest = len(lines) - MAX_LINES + 1
        more = w.ngettext("… {n} more line: veille alerts", "… {n} more lines: veille alerts", rest).format(n=rest)
        lines = [*lines[: MAX_LINES - 1], more]
    return w._("Digest: what happened since the last one"), tuple(lines)
