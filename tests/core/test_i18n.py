"""The wording catalogue: every message the code uses is translated, the shipped .mo files match their .po,
placeholders survive translation, and a third language is a catalogue dropped in a locale folder."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import click
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tests.support.paths import REPO_ROOT
from veille.core.i18n import LOCALE_DIR, available_languages, current_lang, normalise, wording

PO_FILES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/veille.po"))
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]  # as babel.cfg: code and templates
_PLACEHOLDERS = re.compile(r"\{[^{}]*\}|%\([a-z_]+\)[sd]")


def _read(po: Path) -> Catalog:
    with po.open("rb") as file:
        return read_po(file)


def _used_msgids() -> set[str]:
    """Every msgid the code passes to the catalogue: veille's and click's own (translated in the same run)."""
    found: set[str] = set()
    for folder in (REPO_ROOT / "veille", Path(click.__file__).parent):
        for _file, _line, message, _comments, _context in extract_from_dir(str(folder), method_map=METHODS):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_french_is_shipped_and_english_needs_no_catalogue() -> None:
    assert [p.parent.parent.name for p in PO_FILES] == ["fr"]
    assert available_languages() == ("en", "fr")


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_every_message_used_in_the_code_is_translated(po: Path) -> None:
    catalogue = _read(po)
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue if m.id}
    missing = sorted(_used_msgids() - translated.keys())
    assert not missing, f"run `bash scripts/wording.sh` then translate in {po}: {missing[:10]}"
    fuzzy = sorted(k for k, m in translated.items() if m.fuzzy)
    assert not fuzzy, f"fuzzy (to review) in {po}: {fuzzy[:10]}"
    empty = sorted(k for k, m in translated.items() if not (all(m.string) if isinstance(m.string, tuple) else m.string))
    assert not empty, f"untranslated in {po}: {empty[:10]}"


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_translations_keep_every_placeholder(po: Path) -> None:
    for message in _read(po):
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else message.id
        strings = (message.string,) if isinstance(message.string, str) else message.string
        wanted = {p for i in ids for p in _PLACEHOLDERS.findall(i)}
        for string in strings:
            found = set(_PLACEHOLDERS.findall(string))
            assert found == wanted if len(ids) == 1 else found <= wanted, message.id


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: p.parent.parent.name)
def test_the_shipped_mo_matches_its_po(po: Path) -> None:
    """The .mo files are committed (a plain `pip install .` needs no Babel): stale ones fail here."""
    import gettext

    with po.with_suffix(".mo").open("rb") as file:
        shipped = gettext.GNUTranslations(file)
    for message in _read(po):
        if not message.id:
            continue
        hint = f"{po.with_suffix('.mo')} is stale: run `bash scripts/wording.sh compile`"
        if message.context:
            assert shipped.pgettext(message.context, message.id) == message.string, hint
        elif isinstance(message.id, str):
            assert shipped.gettext(message.id) == message.string, hint
        else:
            assert shipped.ngettext(message.id[0], message.id[1], 1) == message.string[0], hint
            assert shipped.ngettext(message.id[0], message.id[1], 5) == message.string[-1], hint


def test_language_names_are_normalised_and_french_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILLE_LANG", raising=False)
    names = ("fr_FR.UTF-8", "EN", "en-GB", "xx", "", None)
    assert [normalise(x) for x in names] == ["fr", "en", "en", None, None, None]
    assert current_lang() == "fr"
    assert current_lang("en") == "en"
    assert current_lang("klingon") == "fr"
    monkeypatch.setenv("VEILLE_LANG", "en_US.UTF-8")
    assert current_lang("fr") == "en"
    assert wording("fr")._("Usage:") == "Utilisation :"
    assert wording("en")._("Usage:") == "Usage:"
    assert wording().lang == "en"


def _third_language(folder: Path) -> None:
    catalogue = Catalog(locale="de", domain="veille")
    catalogue.add("Usage:", "Aufruf:")
    catalogue.add("Show this message and exit.", "Diese Hilfe zeigen und beenden.")
    target = folder / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)
    (target / "veille.mo").write_bytes(buffer.getvalue())


def test_a_third_language_is_a_catalogue_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from veille.cli import cli

    _third_language(tmp_path)
    monkeypatch.setenv("VEILLE_LOCALE_DIR", str(tmp_path))
    assert available_languages() == ("de", "en", "fr")
    assert wording("de_DE")._("Usage:") == "Aufruf:"
    assert wording("de")._("Commands") == "Commands"  # not yet translated: the English msgid
    result = CliRunner().invoke(cli, ["--help"], env={"VEILLE_LANG": "de"})
    assert result.exit_code == 0
    assert result.output.startswith("Aufruf: ")
    assert "Diese Hilfe zeigen und beenden." in result.output


# Parts whose French literals are data about French text (lexicons, crisis words, accent folding).
_LANGUAGE_DATA = (
    "veille/scoring/",
    "veille/alerting/settings.py",
    "veille/alerting/replies.py",
    "veille/alerting/summary.py",  # stop words of incident summaries
    "veille/core/matching.py",
)
_FRENCH_LETTERS = re.compile(r"[éèêàâçùûôîœ]")
_GETTEXT = {"_", "N_", "gettext", "ngettext", "pgettext"}


def french_literals(source: str) -> list[tuple[int, str]]:
    """String literals with French letters that are neither docstrings nor messages handed to the catalogue."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _GETTEXT:
                skip.update(id(child) for arg in node.args for child in ast.walk(arg))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and _FRENCH_LETTERS.search(node.value)
    ]


def test_user_facing_words_are_written_in_english_and_translated_in_the_catalogue() -> None:
    """A French sentence typed in the code would be French in every language: write the English msgid with
    `_()`/`N_()` and its French in veille/locale/fr (bash scripts/wording.sh)."""
    found = []
    for path in sorted((REPO_ROOT / "veille").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if not relative.startswith(_LANGUAGE_DATA):
            found += [f"{relative}:{line}: {text[:60]!r}" for line, text in french_literals(path.read_text("utf-8"))]
    assert not found, "\n".join(found)


def test_the_french_literal_rule_sees_what_it_must() -> None:
    code = 'def f():\n    """Déjà documenté."""\n    print("Prêt")\n    return _("Ready") or N_("chez gégé")\n'
    assert french_literals(code) == [(3, "Prêt")]
