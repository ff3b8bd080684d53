"""Many rows into one SQLite table with the driver's own parameters, for the writer's hot inserts.

SQLAlchemy processes an executemany's parameters row by row and key by key (its compiled parameters, then
each type's bind processor): on a first poll of 1,000 feeds that was a tenth of the main process's CPU, more
than SQLite's own work. Here each column's bind processor is looked up once and the values go to the
driver as plain tuples: one executemany, or with RETURNING (which executemany cannot give back) multi-row
INSERTs of a few fixed sizes (a statement per size, so SQLite's statement cache holds at most len(PAGES) of
them per table and suffix).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table

PAGES = (256, 64, 16, 4, 1)  # rows per INSERT: the largest that fits what is left, down to one row
_SQL: dict[tuple[str, tuple[str, ...], str, int], str] = {}


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]], suffix: str = ""
) -> list[Any]:
    """Insert `rows` (dicts holding at least `columns`) into `table` on SQLite; the rows `suffix` returns
    (`suffix` is SQL after the VALUES list: an ON CONFLICT clause, a RETURNING clause)."""
    defaults = _defaults(table, columns)
    if defaults:  # a column left out takes its default, as in SQLAlchemy's insert
        columns = (*columns, *defaults)
        rows = [{**row, **defaults} for row in rows]
    processors = _processors(conn, table, tuple(columns))
    pairs = list(zip(columns, processors, strict=True))
    values = [[row[name] if process is None else process(row[name]) for name, process in pairs] for row in rows]
    if "RETURNING" not in suffix.upper():  # nothing to read back: one executemany of one-row INSERTs
        if values:
            conn.exec_driver_sql(_sql(conn, table, tuple(columns), suffix, 1), [tuple(row) for row in values])
        return []
    returned: list[Any] = []
    start = 0
    while start < len(values):  # RETURNING needs one statement per page (the driver's executemany returns none)
        size = next(page for page in PAGES if page <= len(values) - start)
        flat = tuple(value for row in values[start : start + size] for value in row)
        returned.extend(conn.exec_driver_sql(_sql(conn, table, tuple(columns), suffix, size), flat).all())
        start += size
    return returned


def _defaults(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    """The scalar defaults of the columns not given; a column with any other kind of default must be given."""
    defaults = {}
    for column in table.c:
        if column.name in columns or column.default is None:
            continue
        if not column.default.is_scalar:
            raise ValueError(f"{table.name}.{column.name}: give a value, its default is not a constant")
        defaults[column.name] = column.default.arg  # type: ignore[attr-defined]
    return defaults


_PROCESSORS: dict[tuple[str, str, tuple[str, ...]], list[Callable[[Any], Any] | None]] = {}


def _processors(conn: Connection, table: Table, columns: tuple[str, ...]) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor (what SQLAlchemy applies to a value of its type), looked up once."""
    dialect = conn.dialect
    key = (dialect.name, table.name, columns)
    found = _PROCESSORS.get(key)
    if found is None:
        found = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
        _PROCESSORS[key] = found
    return found


def _sql(conn: Connection, table: Table, columns: tuple[str, ...], suffix: str, size: int) -> str:
    key = (table.name, columns, suffix, size)
    sql = _SQL.get(key)
    if sql is None:
        quote = conn.dialect.identifier_preparer.quote
        one = "(" + ", ".join("?" * len(columns)) + ")"
        head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) VALUES "
        sql = _SQL[key] = head + ", ".join([one] * size) + (f" {suffix}" if suffix else "")
    return sql
