"""Secrets come from the environment, never from config.toml.

A secret is named by an environment variable NAME. Its value is NAME itself, or the content of the
file named by NAME_FILE (Docker and systemd credentials). Values are never logged or put in errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return value.strip()
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return None


class Redactor:
    """Replaces known secret values in text (log records, error messages) with ***."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 6:
            self._values.add(value)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "***")
        return text
