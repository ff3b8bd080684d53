"""Secrets named in the config never reach a log record: message, arguments or traceback (I2, B11)."""

from __future__ import annotations

import logging

import pytest

from veille.core.logs import protect_secret, redact


def test_protected_secret_is_redacted_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    secret = "mastodon-token-9f8e7d6c5b"
    protect_secret(secret)
    log = logging.getLogger("veille.test")
    with caplog.at_level(logging.DEBUG):
        log.warning("calling https://x.example/api?token=%s", secret)
        try:
            raise RuntimeError(f"refused {secret}")
        except RuntimeError:
            log.exception("poll failed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert secret not in text
    assert "token=***" in text and "refused ***" in text
    assert redact(f"x{secret}y") == "x***y"
