"""The morning digest: what happened since the last one, per client. Pure: data in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from veille.core.incidents import Incident, Kind, Status
from veille.notify.render import incident_title

MAX_LINES = 30

_STATE = {
    "fr": {
        Status.PENDING: "en attente",
        Status.OPEN: "ouvert",
        Status.ACKED: "pris en charge",
        Status.RESOLVED: "résolu",
    },
    "en": {Status.PENDING: "pending", Status.OPEN: "open", Status.ACKED: "acknowledged", Status.RESOLVED: "resolved"},
}


def compose(
    incidents: Sequence[Incident], counts: Mapping[str, tuple[int, int]], names: Mapping[str, str], lang: str
) -> tuple[str, tuple[str, ...]]:
    """(title, lines): per client its volume and negative posts, then each incident touched."""
    fr = lang != "en"
    lines: list[str] = []
    for client_id in sorted(set(counts) | {i.client_id for i in incidents}):
        name = names.get(client_id, client_id)
        total, negative = counts.get(client_id, (0, 0))
        lines.append(
            f"{name} : {total} publication(s), dont {negative} négative(s)"
            if fr
            else f"{name}: {total} post(s), {negative} negative"
        )
        for incident in (i for i in incidents if i.client_id == client_id):
            head = incident_title(incident.cause, Kind.OPENED, name, incident.subject, lang)
            state = _STATE["fr" if fr else "en"][incident.status]
            lines.append(f"  {incident.tag} {head} — {incident.hit_count} hit(s), {incident.urgency.value}, {state}")
    if len(lines) > MAX_LINES:
        rest = len(lines) - MAX_LINES + 1
        lines = [
            *lines[: MAX_LINES - 1],
            f"… {rest} ligne(s) de plus : veille alerts" if fr else f"… {rest} more line(s): veille alerts",
        ]
    title = "Résumé : ce qui s'est passé depuis le dernier résumé" if fr else "Digest: what happened since the last one"
    return title, tuple(lines)
