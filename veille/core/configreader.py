"""Typed reading of one TOML table, collecting every problem with its dotted path.

Every section parser (core, sources, sentiment, alerting, telegram) uses a `Reader` so that
problems look the same everywhere and unknown keys are always reported (typos must not pass).
"""

from __future__ import annotations

import builtins
import enum
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TypeVar, overload
from urllib.parse import urlsplit

from veille.core.durations import parse_duration
from veille.core.errors import Problems
from veille.core.i18n import N_

T = TypeVar("T")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
Number = TypeVar("Number", int, float)


class _Missing(enum.Enum):
    """The default of a required key (None is a real default: "optional, no value")."""

    MISSING = enum.auto()


_MISSING = _Missing.MISSING


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
    """One table of the config. An accessor without a default reads a required key: missing or wrong, the
    problem is recorded and it returns None. With a default (None included) the key is optional: missing, it
    returns the default; wrong, the problem is recorded and it returns the default, so the result has its type."""

    def __init__(self, raw: Mapping[str, object], path: str, problems: Problems) -> None:
        self.raw = raw
        self.path = path
        self.problems = problems
        self._used: set[str] = set()

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def add(self, key: str, message: str, fix: str = "") -> None:
        self.problems.add(self.sub(key), message, fix)

    def _get(self, key: str, kinds: tuple[type, ...], default: object, expected: str) -> object:
        """The raw value if it has one of `kinds`; else the default (None for a required key)."""
        self._used.add(key)
        if key not in self.raw:
            if default is _MISSING:
                self.add(key, N_("is required"), N_("add `{key} = ...`").format(key=key))
                return None
            return default
        value = self.raw[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            self.add(
                key,
                N_("must be {expected}, not {type_name}").format(expected=expected, type_name=_type_name(value)),
                N_("write e.g. {key} = {example}").format(key=key, example=_example(expected)),
            )
            return _or_none(default)
        return value

    @overload
    def str(
        self, key: builtins.str, default: builtins.str, *, choices: Iterable[builtins.str] | None = None
    ) -> builtins.str: ...
    @overload
    def str(
        self, key: builtins.str, default: _Missing | None = ..., *, choices: Iterable[builtins.str] | None = None
    ) -> builtins.str | None: ...
    def str(
        self,
        key: builtins.str,
        default: builtins.str | _Missing | None = _MISSING,
        *,
        choices: Iterable[builtins.str] | None = None,
    ) -> builtins.str | None:
        value = self._get(key, (str,), default, "a string")
        if not isinstance(value, str):
            return None
        if choices is not None and value not in set(choices):
            options = ", ".join(sorted(choices))
            self.add(
                key,
                N_("{value!r} is not one of: {options}").format(value=value, options=options),
                N_("use one of: {options}").format(options=options),
            )
            return _or_none(default)
        return value

    @overload
    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool: ...
    @overload
    def bool(self, key: builtins.str, default: _Missing | None = ...) -> builtins.bool | None: ...
    def bool(self, key: builtins.str, default: builtins.bool | _Missing | None = _MISSING) -> builtins.bool | None:
        value = self._get(key, (bool,), default, "true or false")
        return value if isinstance(value, bool) else None

    @overload
    def int(
        self,
        key: builtins.str,
        default: builtins.int,
        *,
        min: builtins.int | None = None,
        max: builtins.int | None = None,
    ) -> builtins.int: ...
    @overload
    def int(
        self,
        key: builtins.str,
        default: _Missing | None = ...,
        *,
        min: builtins.int | None = None,
        max: builtins.int | None = None,
    ) -> builtins.int | None: ...
    def int(
        self,
        key: builtins.str,
        default: builtins.int | _Missing | None = _MISSING,
        *,
        min: builtins.int | None = None,
        max: builtins.int | None = None,
    ) -> builtins.int | None:
        value = self._get(key, (int,), default, "an integer")
        if not isinstance(value, int):
            return None
        return value if value is default or self._in_range(key, value, min, max) else _or_none(default)

    @overload
    def float(
        self,
        key: builtins.str,
        default: builtins.float,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> builtins.float: ...
    @overload
    def float(
        self,
        key: builtins.str,
        default: _Missing | None = ...,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> builtins.float | None: ...
    def float(
        self,
        key: builtins.str,
        default: builtins.float | _Missing | None = _MISSING,
        *,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> builtins.float | None:
        value = self._get(key, (int, float), default, "a number")
        if not isinstance(value, int | float):
            return None
        value = float(value)
        return value if value is default or self._in_range(key, value, min, max) else _or_none(default)

    def _in_range(self, key: builtins.str, value: Number, low: Number | None, high: Number | None) -> builtins.bool:
        """True when `value` is within its bounds; else the problem is recorded."""
        if (low is not None and value < low) or (high is not None and value > high):
            span = (
                f"between {low} and {high}"
                if low is not None and high is not None
                else (f"at least {low}" if low is not None else f"at most {high}")
            )
            self.add(key, N_("{value} is out of range").format(value=value), N_("use a value {span}").format(span=span))
            return False
        return True

    @overload
    def duration(self, key: builtins.str, default: timedelta, *, min: timedelta | None = None) -> timedelta: ...
    @overload
    def duration(
        self, key: builtins.str, default: _Missing | None = ..., *, min: timedelta | None = None
    ) -> timedelta | None: ...
    def duration(
        self, key: builtins.str, default: timedelta | _Missing | None = _MISSING, *, min: timedelta | None = None
    ) -> timedelta | None:
        value = self._get(key, (str,), default, 'a duration string like "10m"')
        if not isinstance(value, str):
            return value if isinstance(value, timedelta) else None
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            self.add(key, builtins.str(exc), N_('write e.g. "30s", "10m", "2h" or "7d"'))
            return _or_none(default)
        if min is not None and parsed < min:
            self.add(
                key,
                N_("{value!r} is too short").format(value=value),
                N_("use at least {seconds}s").format(seconds=builtins.int(min.total_seconds())),
            )
            return _or_none(default)
        return parsed

    @overload
    def str_list(self, key: builtins.str, default: list[builtins.str]) -> list[builtins.str]: ...
    @overload
    def str_list(self, key: builtins.str, default: _Missing | None = ...) -> list[builtins.str] | None: ...
    def str_list(
        self, key: builtins.str, default: list[builtins.str] | _Missing | None = _MISSING
    ) -> list[builtins.str] | None:
        value = self._get(key, (list,), default, "a list of strings")
        if not isinstance(value, list):
            return None
        if value is default:
            return value
        bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
        for index in bad:
            self.add(f"{key}[{index}]", N_("must be a string"), N_('quote it: "..."'))
        return [item for item in value if isinstance(item, str)]

    @overload
    def env_name(self, key: builtins.str, default: builtins.str) -> builtins.str: ...
    @overload
    def env_name(self, key: builtins.str, default: _Missing | None = ...) -> builtins.str | None: ...
    def env_name(self, key: builtins.str, default: builtins.str | _Missing | None = _MISSING) -> builtins.str | None:
        """The NAME of an environment variable holding a secret (never the secret itself)."""
        value = self._get(key, (str,), default, "an environment variable name")
        if not isinstance(value, str):
            return None
        if value and not _ENV_NAME.match(value):
            self.add(
                key,
                N_("must name an environment variable (A-Z, 0-9, _), not hold a secret"),
                N_('write e.g. {key} = "VEILLE_TOKEN" and export that variable').format(key=key),
            )
            return _or_none(default)
        return value

    @overload
    def url(
        self, key: builtins.str, default: builtins.str, *, schemes: tuple[builtins.str, ...] = ("http", "https")
    ) -> builtins.str: ...
    @overload
    def url(
        self,
        key: builtins.str,
        default: _Missing | None = ...,
        *,
        schemes: tuple[builtins.str, ...] = ("http", "https"),
    ) -> builtins.str | None: ...
    def url(
        self,
        key: builtins.str,
        default: builtins.str | _Missing | None = _MISSING,
        *,
        schemes: tuple[builtins.str, ...] = ("http", "https"),
    ) -> builtins.str | None:
        value = self.str(key, default)
        if not value or value is default:
            return value
        parts = urlsplit(value)
        if parts.scheme.lower() not in schemes:
            self.add(
                key,
                N_("scheme must be {schemes}, not {scheme!r}").format(
                    schemes=" or ".join(schemes), scheme=parts.scheme or "missing"
                ),
                N_("use a full https:// URL"),
            )
            return _or_none(default)
        if not parts.hostname:
            self.add(key, N_("has no host name"), N_("use a full URL such as https://example.org/feed.xml"))
            return _or_none(default)
        if parts.username or parts.password:
            self.add(
                key,
                N_("must not contain a user name or password"),
                N_("put credentials in an environment variable named by the source's *_env key"),
            )
            return _or_none(default)
        return value

    def raw_list(self, key: builtins.str, expected: builtins.str) -> list[object]:
        """An optional list whose items the caller checks itself (e.g. chat ids); `expected` names it."""
        value = self._get(key, (list,), [], expected)
        return value if isinstance(value, list) else []

    def table(self, key: builtins.str, *, required: builtins.bool = False) -> Reader | None:
        value = self._get(key, (dict,), _MISSING if required else None, "a table")
        return Reader(value, self.sub(key), self.problems) if isinstance(value, dict) else None

    def tables(self, key: builtins.str) -> list[Reader]:
        value = self._get(key, (list,), [], "an array of tables ([[...]])")
        readers = []
        for index, item in enumerate(value if isinstance(value, list) else []):
            path = f"{self.sub(key)}[{index}]"
            if not isinstance(item, dict):
                self.problems.add(path, N_("must be a table"), N_("write it as [[{key}]]").format(key=key))
                continue
            readers.append(Reader(item, path, self.problems))
        return readers

    def ignore(self, *keys: builtins.str) -> None:
        self._used.update(keys)

    def finish(self) -> None:
        """Report every key nobody read: a typo must not silently disable a feature."""
        for key in self.raw:
            if key not in self._used:
                known = ", ".join(sorted(self._used)) or "none"
                self.add(
                    key,
                    N_("unknown key"),
                    N_("remove it or fix its spelling (known here: {known})").format(known=known),
                )


def _or_none(default: T | _Missing) -> T | None:
    """What an accessor returns after recording a problem: the default, or None for a required key."""
    return None if isinstance(default, _Missing) else default


def _example(expected: str) -> str:
    return {
        "a string": '"..."',
        "true or false": "true",
        "an integer": "10",
        "a number": "0.5",
        "a list of strings": '["a", "b"]',
    }.get(expected, "...")
