"""The config file parsed once per command: the CLI reads its `lang` before the command runs, then the command
parses the same text (a config of a thousand sources takes about 30 ms to parse, a tenth of a warm
`veille run --once`'s start)."""

from __future__ import annotations

import tomllib
from typing import Any

_kept: list[tuple[str, dict[str, Any]]] = []  # at most one: what `peek` parsed, until `parse` takes it


def peek(text: str) -> dict[str, Any]:
    """`tomllib.loads(text)` (raising as it does), kept for the next `parse` of this same text: only read it."""
    data = tomllib.loads(text)
    _kept[:] = [(text, data)]
    return data


def parse(text: str) -> dict[str, Any]:
    """`tomllib.loads(text)`, or what `peek` parsed from this very text (handed over once: the caller owns it)."""
    kept = _kept.pop() if _kept else None
    if kept is not None and kept[0] == text:
        return kept[1]
    return tomllib.loads(text)
