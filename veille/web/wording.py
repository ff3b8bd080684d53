"""The dashboard's words come from the project's gettext catalogue (veille.core.i18n): English message
ids in the templates (`{{ _("Overview") }}`, extracted by Babel's Jinja2 reader, see babel.cfg) and in
the code, French by default. Stored codes (a sentiment label, a state, an audit event) are shown
through `word`, which names each in English for the catalogue."""

from __future__ import annotations

from collections.abc import Callable

from veille.core.i18n import N_, wording

WORDS = {
    # sentiment labels
    "neg": N_("negative"),
    "neu": N_("neutral"),
    "pos": N_("positive"),
    # incident urgency and states
    "low": N_("low"),
    "high": N_("high"),
    "pending": N_("pending"),
    "open": N_("open"),
    "acked": N_("taken"),
    "resolved": N_("resolved"),
    # audit events of an incident
    "ack": N_("taken"),
    "snooze": N_("reminder later"),
    "mute": N_("muted"),
    "unmute": N_("unmuted"),
    "notify": N_("notified"),
    "held": N_("held"),
    "digest": N_("digest"),
    "opened": N_("opened"),
    "escalate": N_("escalated"),
    # outbox states
    "sending": N_("sending"),
    "sent": N_("sent"),
    "dead": N_("failed for good"),
    "cancelled": N_("cancelled"),
    # source states (the same words as `veille sources`)
    "ok": N_("ok"),
    "new": N_("new"),
    "failing": N_("failing"),
    "backing_off": N_("backing off"),
    "rate_limited": N_("rate limited"),
    "auth_failed": N_("credentials refused"),
    "gone": N_("gone"),
}


def translator(lang: str) -> Callable[[str], str]:
    """`_` for one language."""
    return wording(lang).gettext


def word_for(lang: str) -> Callable[[str | None], str]:
    """A stored code in words, in one language; an unknown code is shown as it is."""
    translate = wording(lang).gettext
    return lambda code: translate(WORDS[code]) if code in WORDS else (code or "")
