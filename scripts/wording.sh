#!/usr/bin/env bash
# The wording catalogues (veille/locale/<lang>/LC_MESSAGES/veille.po -> .mo), managed with Babel's pybabel.
#   bash scripts/wording.sh          extract every message (veille's and click's), merge it into each .po, compile
#   bash scripts/wording.sh init de  start a new language's catalogue from the extracted messages
#   bash scripts/wording.sh compile  compile the .po files only (after translating)
# The compiled .mo files are committed (plain package data: a wheel or `pip install .` needs no Babel);
# tests/core/test_i18n.py fails when one is stale against its .po or a message lacks a translation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(realpath -s "$(command -v "${PYTHON:-.venv/bin/python}")")"
LOCALES=veille/locale

extract() {
  # Extract from a folder of links so that locations read veille/... and click/..., whatever the venv path.
  local work
  work=$(mktemp -d)
  ln -s "$PWD/veille" "$work/veille"
  ln -s "$("$PY" -c 'import click, os; print(os.path.dirname(click.__file__))')" "$work/click"
  (cd "$work" && "$PY" -m babel.messages.frontend -q extract -F "$OLDPWD/babel.cfg" --add-location=file \
    --sort-by-file --no-wrap --project=veille --copyright-holder="veille contributors" -o veille.pot veille click \
    >/dev/null)
  cp "$work/veille.pot" "$1"
  rm -rf "$work"
}

pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
case "${1:-all}" in
  init)
    extract "$pot"
    "$PY" -m babel.messages.frontend -q init -D veille -i "$pot" -d "$LOCALES" -l "$2" --no-wrap
    ;;
  compile) ;;
  all)
    extract "$pot"
    "$PY" -m babel.messages.frontend -q update -D veille -i "$pot" -d "$LOCALES" --no-wrap --ignore-pot-creation-date \
      --ignore-obsolete
    ;;
  *) echo "usage: $0 [all|init LANG|compile]" >&2; exit 2 ;;
esac
"$PY" -m babel.messages.frontend compile -D veille -d "$LOCALES" --statistics
