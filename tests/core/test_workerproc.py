"""Helper processes (feed parser, scorer) whose daemon was killed end quietly (found by the G3 crash loop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from tests.support.paths import REPO_ROOT
from veille.scoring.settings import SentimentSettings

ROOT = REPO_ROOT


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("veille.sources.rss.worker", ["0"]),
        ("veille.scoring.worker", [json.dumps(asdict(SentimentSettings())), ""]),
    ],
)
def test_a_helper_whose_daemon_died_exits_without_a_traceback(module: str, args: list[str]) -> None:
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    os.close(request_write)  # the daemon is gone: its ends of both pipes are closed
    os.close(reply_read)
    try:
        child = subprocess.run(
            [sys.executable, "-m", module, str(request_read), str(reply_write), *args],
            pass_fds=(request_read, reply_write),
            capture_output=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    finally:
        os.close(request_read)
        os.close(reply_write)
    assert (child.returncode, child.stderr.decode()) == (0, "")
