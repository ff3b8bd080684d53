"""`--search` folds case, accents and ligatures on both databases, as keyword matching does (core.matching.fold):
`gege` finds "Gégé", `oeuvre` finds "ŒUVRE".

Each hit stores its searched fields already folded (`search_text`, written with the hit, filled for older
hits by migration 0011): a search is then a plain LIKE on one column. Folding in SQL on every row of the
client's period cost 680 ms at p95 on PostgreSQL (a `translate` and a dozen `replace` per field and row).
The fields are joined by a separator that folding never yields and a search cannot hold, so a search
still matches within one field only, as before. Rows without it (written by older code) are folded in SQL:

SQLite runs `fold` itself (a function registered on each connection). PostgreSQL gets the same folding as SQL:
`translate` over the Latin letters fold maps to one letter, `replace` for those it maps to two (œ -> oe), both
built from `fold` so the two databases agree; upper-case accented letters are in the table too, because
`lower()` leaves them alone on a database created with the C locale.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import ColumnElement, func

from veille.core.matching import fold

SQLITE_FUNCTION = "veille_fold"
SEPARATOR = "\x01"  # between the folded fields of search_text
_LATIN = [chr(code) for code in range(0xC0, 0x250)]  # Latin-1 Supplement, Latin Extended-A and -B


def _tables() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    single_from, single_to, pairs = [], [], []
    for char in _LATIN:
        folded = fold(char)
        if folded == char:
            continue
        if len(folded) == 1:
            single_from.append(char)
            single_to.append(folded)
        elif folded:
            pairs.append((char, folded))
    return "".join(single_from), "".join(single_to), tuple(pairs)


_FROM, _TO, _PAIRS = _tables()


def search_text(
    title: str | None, text: str | None, author: str | None, *, folded: tuple[str, str] | None = None
) -> str:
    """A hit's `search_text`: its title, text and author folded, one field from the next kept apart.

    `folded` is (fold(title), fold(text)) when the caller has them already."""
    title_text = folded if folded is not None else (fold(title or ""), fold(text or ""))
    return SEPARATOR.join((*title_text, fold(author or "")))


def needle(search: str) -> str:
    """The LIKE pattern's folded text (escape it for LIKE); no separator, so it never spans two fields."""
    return fold(search).replace(SEPARATOR, "")


def _fold_or_none(value: Any) -> str | None:
    return None if value is None else fold(str(value))


def register_sqlite_fold(connection: sqlite3.Connection) -> None:
    """Called on each new SQLite connection (store.engine's connect hook)."""
    connection.create_function(SQLITE_FUNCTION, 1, _fold_or_none, deterministic=True)


def folded(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """`column` folded like core.matching.fold, in the SQL of `dialect`."""
    if dialect == "sqlite":
        fold_function: ColumnElement[Any] = getattr(func, SQLITE_FUNCTION)(column)
        return fold_function
    expression: ColumnElement[Any] = func.translate(func.lower(column), _FROM, _TO)
    for char, replacement in _PAIRS:
        expression = func.replace(expression, char, replacement)
    return func.regexp_replace(expression, r"\s+", " ", "g")
