"""Markdown that reads well as plain text and stays inert when a viewer renders it.

Every value goes through `terminal_safe` (no escapes, no control or bidi characters, one line) and
has the characters that would turn it into markup backslash-escaped: a hit saying
`<script>` or `[click](javascript:...)` shows as text in any CommonMark viewer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from veille.core.textsafe import terminal_safe
from veille.reports.layout import Cell, Document, Link, Table

_MARKUP = re.compile(r"([\\`*\[\]<>|~])")  # cells never start a line: # and - stay as they are
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # _ between letters never makes emphasis: http_5xx


def text(value: str) -> str:
    return _EDGE_UNDERSCORE.sub(r"\\_", _MARKUP.sub(r"\\\1", terminal_safe(value)))


def _cell(value: Cell) -> str:
    if isinstance(value, Link):
        return f"[{text(value.text)}]({value.url})"  # url is percent-encoded by layout.safe_url
    return text(value)


def _table(table: Table) -> list[str]:
    lines = [
        "| " + " | ".join(text(h) for h in table.headers) + " |",
        "|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.headers))) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def render_markdown(documents: Sequence[Document]) -> str:
    """One or several reports; several are separated by a horizontal rule."""
    parts = []
    for doc in documents:
        lines = [f"# {text(doc.title)}", "", text(doc.subtitle), ""]
        for section in doc.sections:
            lines += [f"## {text(section.title)}", ""]
            if section.lines:
                lines += [f"- {text(line)}" for line in section.lines] + [""]
            if section.table is not None:
                lines += [*_table(section.table), ""]
        parts.append("\n".join(lines).rstrip("\n") + "\n")
    return "\n---\n\n".join(parts)
