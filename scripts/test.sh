#!/usr/bin/env bash
# Set everything up and run the whole test suite (PostgreSQL tests run when 127.0.0.1:5432 answers;
# the shared-corpus group runs when ../shared exists). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
