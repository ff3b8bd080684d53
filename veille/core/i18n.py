"""The one wording catalogue: GNU gettext catalogues (managed with Babel) under veille/locale/.

Messages are written in English in the code (`_("...")`, `ngettext(...)`, `N_("...")` for tables translated
later); each other language is a catalogue `veille/locale/<lang>/LC_MESSAGES/veille.po` compiled to `.mo`,
so a third language is a file, not a code change. French is the default: `VEILLE_LANG`, else the config's
`lang`, else "fr". `VEILLE_LOCALE_DIR` adds a folder searched first (a translator trying a catalogue).
"""

from __future__ import annotations

import gettext
import os
import re
from functools import cache, cached_property
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
    """English plus every language with a compiled catalogue, sorted (read once per set of folders)."""
    return _languages(locale_dirs())


@cache
def _languages(folders: tuple[Path, ...]) -> tuple[str, ...]:
    found = {SOURCE_LANG}
    for folder in folders:
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


_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


# (literal characters, pattern, placeholder names, translated template, literal pieces)
_Template = tuple[int, re.Pattern[str], list[str], str, list[str]]


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m[0]], template)


class Wording:
    """The catalogue of one language: `w._(msg)`, `w.ngettext(one, many, n)`, `w.pgettext(context, msg)`,
    and `w.text(stored)` for English text made elsewhere (errors, config problems) shown to a reader."""

    def __init__(self, lang: str, catalogue: gettext.NullTranslations) -> None:
        self.lang = lang
        self._catalogue = catalogue
        self._seen: dict[str, str] = {}  # text() results: tables repeat the same errors

    def _(self, message: str) -> str:
        return self._catalogue.gettext(message)

    def gettext(self, message: str) -> str:
        return self._catalogue.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogue.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._catalogue.pgettext(context, message)

    def text(self, english: str) -> str:
        """Translate English text built from msgid templates (`N_("{detail} ({host})").format(...)`): errors
        and problems are stored and logged in English, and shown in the reader's language. Of the templates
        that match, the reading that recognises the most literal text (values included, recursively) wins."""
        if "\n" in english:  # a problem list: each line on its own, indentation and bullets kept
            return "\n".join(self._line(line) for line in english.split("\n"))
        if english not in self._seen:
            if len(self._seen) > 10_000:
                self._seen.clear()
            translated, score = self._best(english, {})
            if "; " in english:  # notes joined by "; " (a source's state) may read better one by one
                parts = [self._best(part, {}) for part in english.split("; ")]
                if sum(part_score for _, part_score in parts) > score:
                    translated = self.pgettext("list separator", "; ").join(part for part, _ in parts)
            self._seen[english] = translated
        return self._seen[english]

    def _line(self, line: str) -> str:
        body = line.lstrip(" -•")
        return line[: len(line) - len(body)] + self._best(body, {})[0]

    def _best(self, english: str, seen: dict[str, tuple[str, int]]) -> tuple[str, int]:
        if not english:  # gettext("") is the catalogue's header
            return english, 0
        if english in seen:
            return seen[english]
        exact = self._translated(english)
        best = (exact, len(english)) if exact is not None else (english, 0)
        if exact is None:
            for literal, pattern, names, template, pieces in self._candidates(english):
                if not (english.startswith(pieces[0]) and english.endswith(pieces[-1])) or any(
                    piece not in english for piece in pieces[1:-1]
                ):
                    continue  # cheap: most templates share no text with `english`
                found = pattern.fullmatch(english)
                if found is None:
                    continue
                values = {name: self._best(value, seen) for name, value in zip(names, found.groups(), strict=True)}
                score = literal + sum(score for _, score in values.values())
                if score > best[1]:
                    best = (_fill(template, {name: text for name, (text, _) in values.items()}), score)
        seen[english] = best
        return best

    def _candidates(self, english: str) -> list[_Template]:
        """The templates that may match: indexed by their first 4 or last 3 literal characters."""
        index, always = self._index
        return index.get("^" + english[:4], []) + index.get("$" + english[-3:], []) + always

    @cached_property
    def _index(self) -> tuple[dict[str, list[_Template]], list[_Template]]:
        index: dict[str, list[_Template]] = {}
        always: list[_Template] = []
        for template in self._templates:
            head, tail = template[4][0], template[4][-1]
            key = "^" + head[:4] if len(head) >= 4 else "$" + tail[-3:] if len(tail) >= 3 else None
            if key is None:
                always.append(template)
            else:
                index.setdefault(key, []).append(template)
        return index, always

    def _translated(self, message: str) -> str | None:
        found = self._catalogue.gettext(message)
        return found if found != message or message in self._messages else None

    @cached_property
    def _messages(self) -> dict[str, str]:
        """msgid -> msgstr of every singular message of this language's catalogues (English: none)."""
        found: dict[str, str] = {}
        catalogue: gettext.NullTranslations | None = self._catalogue
        while isinstance(catalogue, gettext.GNUTranslations):
            for key, value in catalogue._catalog.items():  # type: ignore[attr-defined]
                if isinstance(key, str) and key and key not in found:
                    found[key] = value
            catalogue = catalogue._fallback  # type: ignore[attr-defined]
        return found

    @cached_property
    def _templates(self) -> list[_Template]:
        """The messages with {placeholders} as patterns, most literal text first."""
        templates = []
        for msgid, msgstr in self._messages.items():
            parts = _PLACEHOLDER.split(msgid)
            names = _PLACEHOLDER.findall(msgid)
            literal = sum(len(p.strip()) for p in parts)
            if not names or not literal or len(set(names)) != len(names):
                continue
            regex = "".join(re.escape(p) + ("(.+?)" if i < len(names) else "") for i, p in enumerate(parts))
            templates.append((literal, re.compile(regex, re.DOTALL), names, msgstr, parts))
        templates.sort(key=lambda t: -t[0])
        return templates


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
