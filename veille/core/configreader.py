"""Typed reading of one TOML table, collecting every problem with its dotted path.

Every section parser (core, sources, sentiment, alerting, telegram) uses a `Reader` so that
problems look the same everywhere and unknown keys are always reported (typos must not pass).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from veille.core.durations import parse_duration
from veille.core.errors import Problems

T = TypeVar("T")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MISSING: Any = object()


def _type_name(value: object) -> str:
    return {
        str: "a string",
        bool: "true/false",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class Reader:
    def __init__(self, raw: Mapping[str, Any], path: str, problems: Problems) -> None:
        self.raw = raw
        self.path = path
        self.problems = problems
        self._used: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def add(self, key: str, message: str, fix: str = "") -> None:
        self.problems.add(self.sub(key), message, fix)

    def _get(self, key: str, kinds: tuple[type, ...], default: Any, expected: str) -> Any:
        self._used.add(key)
        if key not in self.raw:
            if default is _MISSING:
                self.add(key, "is required", f"add `{key} = ...`")
                return None
            return default
        value = self.raw[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            self.add(key, f"must be {expected}, not {_type_name(value)}", f"write e.g. {key} = {_example(expected)}")
            return None if default is _MISSING else default
        return value

    def str(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None) -> Any:
        value = self._get(key, (str,), default, "a string")
        if value is not None and choices is not None and value not in set(choices):
            options = ", ".join(sorted(choices))
            self.add(key, f"{value!r} is not one of: {options}", f"use one of: {options}")
            return None if default is _MISSING else default
        return value

    def bool(self, key: str, default: Any = _MISSING) -> Any:
        return self._get(key, (bool,), default, "true or false")

    def int(self, key: str, default: Any = _MISSING, *, min: int | None = None, max: int | None = None) -> Any:
        value = self._get(key, (int,), default, "an integer")
        return self._bounded(key, value, default, min, max)

    def float(self, key: str, default: Any = _MISSING, *, min: float | None = None, max: float | None = None) -> Any:
        value = self._get(key, (int, float), default, "a number")
        value = float(value) if value is not None else None
        return self._bounded(key, value, default, min, max)

    def _bounded(self, key: str, value: Any, default: Any, low: Any, high: Any) -> Any:
        if value is None or value is default:
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            span = (
                f"between {low} and {high}"
                if low is not None and high is not None
                else (f"at least {low}" if low is not None else f"at most {high}")
            )
            self.add(key, f"{value} is out of range", f"use a value {span}")
            return None if default is _MISSING else default
        return value

    def duration(self, key: str, default: Any = _MISSING, *, min: timedelta | None = None) -> Any:
        value = self._get(key, (str,), default, 'a duration string like "10m"')
        if value is None or isinstance(value, timedelta):
            return value
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            self.add(key, str(exc), 'write e.g. "30s", "10m", "2h" or "7d"')
            return None if default is _MISSING else default
        if min is not None and parsed < min:
            self.add(key, f"{value!r} is too short", f"use at least {int(min.total_seconds())}s")
            return None if default is _MISSING else default
        return parsed

    def str_list(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, (list,), default, "a list of strings")
        if value is None or value is default:
            return value
        bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
        for index in bad:
            self.add(f"{key}[{index}]", "must be a string", 'quote it: "..."')
        return [item for item in value if isinstance(item, str)]

    def env_name(self, key: str, default: Any = _MISSING) -> Any:
        """The NAME of an environment variable holding a secret (never the secret itself)."""
        value = self._get(key, (str,), default, "an environment variable name")
        if value and not _ENV_NAME.match(value):
            self.add(
                key,
                "must name an environment variable (A-Z, 0-9, _), not hold a secret",
                f'write e.g. {key} = "VEILLE_TOKEN" and export that variable',
            )
            return None
        return value

    def url(self, key: str, default: Any = _MISSING, *, schemes: tuple[str, ...] = ("http", "https")) -> Any:
        value = self.str(key, default)
        if not value or value is default:
            return value
        parts = urlsplit(value)
        if parts.scheme.lower() not in schemes:
            self.add(
                key,
                f"scheme must be {' or '.join(schemes)}, not {parts.scheme or 'missing'!r}",
                "use a full https:// URL",
            )
            return None
        if not parts.hostname:
            self.add(key, "has no host name", "use a full URL such as https://example.org/feed.xml")
            return None
        if parts.username or parts.password:
            self.add(
                key,
                "must not contain a user name or password",
                "put credentials in an environment variable named by the source's *_env key",
            )
            return None
        return value

    def table(self, key: str, *, required: bool = False) -> Reader | None:
        value = self._get(key, (dict,), _MISSING if required else None, "a table")
        return Reader(value, self.sub(key), self.problems) if value is not None else None

    def tables(self, key: str) -> list[Reader]:
        value = self._get(key, (list,), [], "an array of tables ([[...]])")
        readers = []
        for index, item in enumerate(value or []):
            path = f"{self.sub(key)}[{index}]"
            if not isinstance(item, dict):
                self.problems.add(path, "must be a table", f"write it as [[{key}]]")
                continue
            readers.append(Reader(item, path, self.problems))
        return readers

    def ignore(self, *keys: str) -> None:
        self._used.update(keys)

    def finish(self) -> None:
        """Report every key nobody read: a typo must not silently disable a feature."""
        for key in self.raw:
            if key not in self._used:
                known = ", ".join(sorted(self._used)) or "none"
                self.add(key, "unknown key", f"remove it or fix its spelling (known here: {known})")


def _example(expected: str) -> str:
    return {
        "a string": '"..."',
        "true or false": "true",
        "an integer": "10",
        "a number": "0.5",
        "a list of strings": '["a", "b"]',
    }.get(expected, "...")
