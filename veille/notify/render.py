"""Words of a notification (French by default, English available) and its outbox payload.

The payload is a self-contained JSON copy of a `Notification` (minus the outbox id, which the
dispatcher fills in), so a message can be sent after a restart without re-reading anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from veille.core.incidents import Cause, Kind, Urgency
from veille.notify.base import HitSummary, Notification

_CAUSE = {
    "fr": {
        Cause.BUZZ: "Bad buzz possible",
        Cause.VOLUME: "Pic de volume",
        Cause.SOURCE: "Source en panne",
        Cause.SILENCE: "Aucune donnée reçue",
        Cause.AUDIENCE: "Audience en baisse",
    },
    "en": {
        Cause.BUZZ: "Possible bad buzz",
        Cause.VOLUME: "Volume spike",
        Cause.SOURCE: "Source failing",
        Cause.SILENCE: "No data received",
        Cause.AUDIENCE: "Audience falling",
    },
}
_KIND = {
    "fr": {
        Kind.OPENED: "",
        Kind.UPDATE: "mise à jour",
        Kind.REPEAT: "toujours en cours",
        Kind.ESCALATED: "escalade",
        Kind.RESOLVED: "résolu",
        Kind.DIGEST: "résumé",
        Kind.NOTICE: "avis",
    },
    "en": {
        Kind.OPENED: "",
        Kind.UPDATE: "update",
        Kind.REPEAT: "still ongoing",
        Kind.ESCALATED: "escalated",
        Kind.RESOLVED: "resolved",
        Kind.DIGEST: "digest",
        Kind.NOTICE: "notice",
    },
}
_WORDS = {
    "fr": {
        "hits": "publication(s)",
        "urgent": "URGENT",
        "duplicate": "doublon possible",
        "why": "Pourquoi",
        "ack": "Prendre en charge : veille ack",
    },
    "en": {
        "hits": "post(s)",
        "urgent": "URGENT",
        "duplicate": "possible duplicate",
        "why": "Why",
        "ack": "Acknowledge: veille ack",
    },
}


def _lang(lang: str) -> str:
    return lang if lang in _CAUSE else "fr"


def incident_title(cause: Cause, kind: Kind, client_name: str, subject: str, lang: str) -> str:
    lang = _lang(lang)
    head = _CAUSE[lang][cause]
    suffix = _KIND[lang][kind]
    text = f"{head} : {client_name}" if lang == "fr" else f"{head}: {client_name}"
    if subject:
        text += f" ({subject})"
    return f"{text} — {suffix}" if suffix else text


def word(key: str, lang: str) -> str:
    return _WORDS[_lang(lang)][key]


def render_text(n: Notification) -> str:
    """Plain-text rendering (console, logs, Apprise bodies)."""
    lang = _lang(n.lang)
    bell = "🔕" if n.silent else "🔔"
    urgent = f" [{word('urgent', lang)}]" if n.urgency is Urgency.HIGH else ""
    lines = [f"{bell} {n.tag} {n.title}{urgent}"]
    if n.possible_duplicate:
        lines[0] += f" ({word('duplicate', lang)})"
    if n.reasons:
        lines.append(f"{word('why', lang)}: " + "; ".join(n.reasons))
    for hit in n.hits:
        who = f"@{hit.author}" if hit.author else "?"
        if hit.author_followers:
            who += f" ({hit.author_followers})"
        meta = ", ".join(x for x in (hit.source_kind, hit.sentiment, hit.engagement) if x)
        lines.append(f"  - {who} [{meta}] {hit.text[:200]}")
        if hit.url:
            lines.append(f"    {hit.url}")
    if n.incident_id is not None and n.kind not in (Kind.RESOLVED, Kind.DIGEST, Kind.NOTICE):
        lines.append(f"{word('ack', lang)} {n.incident_id}")
    return "\n".join(lines)


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
    )
