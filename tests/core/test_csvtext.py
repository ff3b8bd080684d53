"""The one CSV writer: text from outside is never a spreadsheet formula, numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from veille.core.csvtext import csv_text, inert


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+33 6 12", "'+33 6 12"),
        ("-1", "'-1"),
        ("@alice", "'@alice"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cells_from_outside_are_never_formulas(value: str | None, expected: str) -> None:
    assert inert(value) == expected


def test_csv_text_neutralises_text_and_keeps_numbers_and_dates() -> None:
    moment = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    text = csv_text(["a", "b", "c", "d"], [["=cmd|' /C calc'!A0", -0.5, moment, None], ["@SUM(1)", 3, "ok", True]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["a", "b", "c", "d"],
        ["'=cmd|' /C calc'!A0", "-0.5", "2026-11-03T09:30:00+00:00", ""],
        ["'@SUM(1)", "3", "ok", "True"],
    ]
