"""Logging set-up for the daemon, and the one mechanism that keeps secrets out of every log record.

Secrets are redacted by a log-record factory rather than a handler filter: handler filters miss
handlers added later (pytest's caplog, a library's own) and logger filters miss child loggers.
The factory also redacts exception and stack text, so a traceback cannot carry a token either.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from veille.core.secrets import Redactor

_REDACTOR = Redactor()
_INSTALLED: list[bool] = []  # the record factory is wrapped once per process
_NOISY = ("httpx", "httpcore", "telegram.ext", "hpack", "alembic", "apscheduler")


def redact(text: str) -> str:
    """`text` with every protected secret replaced by ***."""
    return _REDACTOR(text)


def protect_secret(value: str | None) -> None:
    """Keep `value` out of every log record from now on (idempotent)."""
    _REDACTOR.add(value)
    if _INSTALLED:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _INSTALLED.append(True)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: let logging report it as usual
        return
    cleaned = _REDACTOR(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = _REDACTOR(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = _REDACTOR(record.stack_info)


def setup_logging(level: str = "INFO", *, secrets: tuple[str | None, ...] = ()) -> None:
    for secret in secrets:
        protect_secret(secret)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY:  # httpx logs full request URLs (a Telegram URL holds the token) at INFO
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
