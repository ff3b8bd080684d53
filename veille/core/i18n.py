"""The one wording catalogue: GNU gettext catalogues (managed with Babel) under veille/locale/.

Messages are written in English in the code (`_("...")`, `ngettext(...)`, `N_("...")` for tables translated
later); each other language is a catalogue `veille/locale/<lang>/LC_MESSAGES/veille.po` compiled to `.mo`,
so a third language is a file, not a code change. French is the default: `VEILLE_LANG`, else the config's
`lang`, else "fr". `VEILLE_LOCALE_DIR` adds a folder searched first (a translator trying a catalogue).
"""

from __future__ import annotations

import gettext
import os
from functools import cache
from pathlib import Path

DOMAIN = "veille"
DEFAULT_LANG = "fr"
SOURCE_LANG = "en"  # the language of the msgids: needs no catalogue
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


def locale_dirs() -> tuple[Path, ...]:
    extra = os.environ.get("VEILLE_LOCALE_DIR")
    return (Path(extra), LOCALE_DIR) if extra else (LOCALE_DIR,)


def available_languages() -> tuple[str, ...]:
    """English plus every language with a compiled catalogue, sorted."""
    found = {SOURCE_LANG}
    for folder in locale_dirs():
        if folder.is_dir():
            found.update(p.parent.parent.name for p in folder.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return tuple(sorted(found))


def normalise(lang: str | None) -> str | None:
    """'fr_FR.UTF-8', 'FR', 'en-GB' -> 'fr', 'fr', 'en'; None when no catalogue serves that language."""
    if not lang:
        return None
    code = lang.strip().replace("-", "_").split(".")[0].split("@")[0]
    languages = available_languages()
    for candidate in (code, code.lower(), code.split("_")[0].lower()):
        if candidate in languages:
            return candidate
    return None


def current_lang(configured: str | None = None) -> str:
    """VEILLE_LANG wins over the config's `lang`; a language without a catalogue means the default (French)."""
    return normalise(os.environ.get("VEILLE_LANG")) or normalise(configured) or DEFAULT_LANG


class Wording:
    """The catalogue of one language: `w._(msg)`, `w.ngettext(one, many, n)`, `w.pgettext(context, msg)`."""

    __slots__ = ("_catalogue", "lang")

    def __init__(self, lang: str, catalogue: gettext.NullTranslations) -> None:
        self.lang = lang
        self._catalogue = catalogue

    def _(self, message: str) -> str:
        return self._catalogue.gettext(message)

    def gettext(self, message: str) -> str:
        return self._catalogue.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogue.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._catalogue.pgettext(context, message)


def wording(lang: str | None = None) -> Wording:
    """The catalogue for `lang` (normalised; None or unknown -> the current language)."""
    return _load(normalise(lang) or current_lang(), locale_dirs())


@cache
def _load(lang: str, folders: tuple[Path, ...]) -> Wording:
    catalogue: gettext.NullTranslations = gettext.NullTranslations()
    if lang != SOURCE_LANG:
        for folder in reversed(folders):  # the first folder is searched first: it is the last fallback added
            try:
                found = gettext.translation(DOMAIN, str(folder), languages=[lang])
            except OSError:
                continue
            found.add_fallback(catalogue)
            catalogue = found
    return Wording(lang, catalogue)


def tr(lang: str, fr: str, en: str) -> str:
    """Deprecated two-language switch, kept while modules move to the catalogue: use `wording(lang)._()`."""
    return en if lang == "en" else fr
