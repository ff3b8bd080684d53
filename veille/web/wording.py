"""The dashboard's words come from the project's gettext catalogue (veille.core.i18n): English message
ids in the templates (`{{ _("Overview") }}`, extracted by Babel's Jinja2 reader, see babel.cfg) and in
the code, French by default. Stored codes (a sentiment label, a state, an audit event) are shown
through `word`."""

from __future__ import annotations

from collections.abc import Callable

from veille.core.i18n import N_, wording
from veille.core.incidents import label as incident_label
from veille.core.models import SOURCE_STATUS_WORDS

WORDS = {
    # sentiment labels
    "neg": N_("negative"),
    "neu": N_("neutral"),
    "pos": N_("positive"),
    # audit events and delivery states that veille.core.incidents.label does not name
    "mute": N_("muted"),
    "unmute": N_("unmuted"),
    "notify": N_("notified"),
    "held": N_("held"),
    "sending": N_("sending"),
    **SOURCE_STATUS_WORDS,  # source states, in the words of `veille sources`
}


def translator(lang: str) -> Callable[[str], str]:
    """`_` for one language."""
    return wording(lang).gettext


def word_for(lang: str) -> Callable[[str | None], str]:
    """A stored code in words, in one language: incident states, urgencies, causes and events as
    `veille alerts` names them (veille.core.incidents.label), the others from WORDS; unknown: as it is."""
    translate = wording(lang).gettext

    def word(code: str | None) -> str:
        if not code:
            return ""
        return translate(WORDS[code] if code in WORDS else incident_label(code))

    return word
