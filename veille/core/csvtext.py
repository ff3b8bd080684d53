"""The one CSV writer of every command and report: text cells never read as spreadsheet formulas.

A cell that starts like a formula (=, +, -, @, tab, carriage return) gets an apostrophe in front, so a
spreadsheet shows `=HYPERLINK(...)` planted in a post as text instead of running it (OWASP "CSV
injection"). Numbers stay numbers: only text is neutralised, so a score of -0.5 is still -0.5.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(value: str | None) -> str:
    """Text as a spreadsheet cell that is never read as a formula."""
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def cell(value: Any) -> Any:
    """One value as a CSV cell: text made inert, dates in ISO 8601, None empty, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool | int | float):
        return value
    return inert(str(value))


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV document (header, then one line per row) with every cell passed through `cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()
