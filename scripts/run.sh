#!/usr/bin/env bash
# Quick start: set everything up, bring the database schema up to date, and run the daemon.
# Defaults: ./config.toml, a SQLite file ./veille.db, alerts printed to the console when no Telegram
# token is set. Extra arguments go to `veille run` (e.g. --once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/veille db upgrade
exec .venv/bin/veille run "$@"
