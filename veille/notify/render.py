"""Words of a notification (in the contact's language, from the wording catalogue) and its outbox payload.

The payload is a self-contained JSON copy of a `Notification` (minus the outbox id, which the
dispatcher fills in), so a message can be sent after a restart without re-reading anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from veille.core.i18n import N_, wording
from veille.core.incidents import Cause, Kind, Summary, Urgency, summary_line
from veille.notify.base import Attachment, HitSummary, Notification

_CAUSE = {
    Cause.BUZZ: N_("Possible bad buzz: {client}"),
    Cause.VOLUME: N_("Volume spike: {client}"),
    Cause.SOURCE: N_("Source failing: {client}"),
    Cause.SILENCE: N_("No data received: {client}"),
    Cause.AUDIENCE: N_("Audience falling: {client}"),
    Cause.REPLY_DUE: N_("A customer awaits an answer: {client}"),
    Cause.REPLY: N_("Answer overdue: {client}"),
}
_KIND = {
    Kind.UPDATE: N_("update"),
    Kind.REPEAT: N_("still ongoing"),
    Kind.ESCALATED: N_("escalated"),
    Kind.RESOLVED: N_("resolved"),
    Kind.DIGEST: N_("digest"),
    Kind.NOTICE: N_("notice"),
}


def incident_title(cause: Cause, kind: Kind, client_name: str, subject: str, lang: str) -> str:
    w = wording(lang)
    text = w._(_CAUSE[cause]).format(client=client_name)
    if subject:
        text += f" ({w.text(subject)})"
    suffix = _KIND.get(kind)
    return f"{text} — {w._(suffix)}" if suffix else text


def render_text(n: Notification) -> str:
    """Plain-text rendering (console, logs, Apprise bodies), in the contact's language."""
    w = wording(n.lang)
    bell = "🔕" if n.silent else "🔔"
    urgent = f" [{w._('URGENT')}]" if n.urgency is Urgency.HIGH else ""
    lines = [f"{bell} {n.tag} {n.title}{urgent}"]
    if n.possible_duplicate:
        lines[0] += f" ({w._('possible duplicate')})"
    if n.summary is not None:
        lines.append(w._("In short: {summary}").format(summary=summary_line(n.summary, n.lang)))
    if n.reasons and n.kind == Kind.REPORT:  # a report's lines are its figures, not an alert's reasons
        lines += [w.text(r) for r in n.reasons]
    elif n.reasons:
        lines.append(w._("Why: {reasons}").format(reasons="; ".join(w.text(r) for r in n.reasons)))
    for hit in n.hits:
        who = f"@{hit.author}" if hit.author else "?"
        if hit.author_followers:
            who += f" ({hit.author_followers})"
        sentiment = hit.sentiment and w.text(hit.sentiment)  # "unscored (es)" is translated
        meta = ", ".join(x for x in (hit.source_kind, sentiment, w.text(hit.engagement)) if x)
        lines.append(f"  - {who} [{meta}] {hit.text[:200]}")
        if hit.url:
            lines.append(f"    {hit.url}")
    if n.incident_id is not None and n.kind not in (Kind.RESOLVED, Kind.DIGEST, Kind.NOTICE, Kind.REPORT):
        lines.append(w._("Take it: veille ack {id}").format(id=n.incident_id))
    if n.attachment is not None:
        lines.append(attachment_line(n.attachment, n.lang))
    return "\n".join(lines)


def attachment_line(attachment: Attachment, lang: str) -> str:
    """ "Fichier joint : resto-2026-11.html (34 Ko)"."""
    kilobytes = max(1, round(attachment.size / 1024))
    return wording(lang)._("Attached file: {name} ({size} KB)").format(name=attachment.filename, size=kilobytes)


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_payload(n: Notification) -> dict[str, Any]:
    return {
        "incident_id": n.incident_id,
        "tag": n.tag,
        "kind": n.kind,
        "client_id": n.client_id,
        "client_name": n.client_name,
        "contact": n.contact,
        "urgency": n.urgency.value,
        "silent": n.silent,
        "title": n.title,
        "reasons": list(n.reasons),
        "lang": n.lang,
        "created_at": _dt(n.created_at),
        "extra": dict(n.extra),
        "summary": n.summary.as_dict() if n.summary else None,
        "attachment": (
            {"filename": n.attachment.filename, "content": n.attachment.content, "mime": n.attachment.mime}
            if n.attachment
            else None
        ),
        "hits": [
            {
                "hit_id": h.hit_id,
                "source_kind": h.source_kind,
                "text": h.text,
                "url": h.url,
                "author": h.author,
                "author_followers": h.author_followers,
                "engagement": h.engagement,
                "sentiment": h.sentiment,
                "published_at": _dt(h.published_at),
            }
            for h in n.hits
        ],
    }


def from_payload(payload: dict[str, Any], *, outbox_id: int, possible_duplicate: bool) -> Notification:
    hits = tuple(
        HitSummary(
            hit_id=h["hit_id"],
            source_kind=h["source_kind"],
            text=h["text"],
            url=h.get("url"),
            author=h.get("author"),
            author_followers=h.get("author_followers"),
            engagement=h.get("engagement", ""),
            sentiment=h.get("sentiment"),
            published_at=datetime.fromisoformat(h["published_at"]) if h.get("published_at") else None,
        )
        for h in payload.get("hits", ())
    )
    created = payload.get("created_at")
    return Notification(
        outbox_id=outbox_id,
        incident_id=payload.get("incident_id"),
        tag=payload["tag"],
        kind=payload["kind"],
        client_id=payload.get("client_id"),
        client_name=payload.get("client_name"),
        contact=payload["contact"],
        urgency=Urgency(payload["urgency"]),
        silent=bool(payload["silent"]),
        title=payload["title"],
        reasons=tuple(payload.get("reasons", ())),
        hits=hits,
        lang=payload.get("lang", "fr"),
        possible_duplicate=possible_duplicate,
        created_at=datetime.fromisoformat(created) if created else None,
        extra=dict(payload.get("extra", {})),
        summary=Summary.from_dict(payload.get("summary")),
        attachment=_attachment(payload.get("attachment")),
    )


def _attachment(raw: object) -> Attachment | None:
    if not isinstance(raw, dict):
        return None
    return Attachment(str(raw["filename"]), str(raw["content"]), str(raw.get("mime") or "text/html"))
