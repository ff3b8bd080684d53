#!/usr/bin/env bash
# Set everything up, lint, and run the whole test suite. PostgreSQL tests run when 127.0.0.1:5432
# answers; the shared-corpus group runs when ../shared exists. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The optional transformer scorer is tested with a tiny random model when a PyTorch wheel is already on
# this machine (pip's find-links): nothing of several GB is downloaded. Otherwise its test skips, saying why.
if ! .venv/bin/python -c "import torch, transformers" 2>/dev/null; then
  if .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-index --no-deps "torch==2.13.0" \
      2>/dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" "transformers>=4.40" \
      || echo "transformers unavailable: tests/scoring/test_transformer.py will skip"
  else
    echo "no local PyTorch wheel: tests/scoring/test_transformer.py will skip"
  fi
fi
# The dashboard's browser test drives Debian's chromium (tests/web/test_browser.py skips, saying why, without it).
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: tests/web/test_browser.py will skip"
  else
    echo "no apt-get (or not root): tests/web/test_browser.py will skip without /usr/bin/chromium"
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
