"""Helpers every command module shares: config loading with exit code 2, database opening, output."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from veille.cli.wording import ngettext, text
from veille.core.csvtext import csv_text
from veille.core.errors import ConfigError, SchemaVersionError
from veille.core.i18n import N_
from veille.core.textsafe import terminal_safe

if TYPE_CHECKING:  # the CLI imports its heavy parts when a command needs them: `veille --help` stays fast
    from sqlalchemy import Engine

    from veille.config import Config

config_option = click.option(
    "--config",
    "config_file",
    metavar="PATH",
    default=None,
    help=N_("Configuration file (default: $VEILLE_CONFIG, else ./config.toml)."),
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help=N_("table for humans, json/csv for scripts and spreadsheets."),
)

wide_option = click.option(
    "--wide", is_flag=True, help=N_("Every column, cells on several lines (default: one line per row, 80 columns).")
)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


# In click's context meta (shared by a command and the root group):
DATABASE_URL_KEY = "veille.database_url"  # what a database failure is about
LOG_LEVEL_KEY = "veille.log_level"  # `veille --log-level X run` without run's own option
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def load_or_exit(config_file: str | None) -> Config:
    from veille.config import load_config

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        count = len(exc.problems)
        heading = ngettext(
            "Invalid configuration: {file}: {n} problem:", "Invalid configuration: {file}: {n} problems:", count
        )
        click.echo(heading.format(file=exc.file, n=count), err=True)
        for problem in exc.problems:
            click.echo(f"  - {text(str(problem))}", err=True)
        sys.exit(2)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[DATABASE_URL_KEY] = config.database_url
    return config


def open_database(config: Config) -> Engine:
    """Open the configured database for reading; exit with the command to run if its schema is off."""
    from veille.store.engine import make_engine
    from veille.store.migrate import check_schema

    engine = make_engine(config.database_url)
    try:
        check_schema(engine)
    except SchemaVersionError as exc:
        fail(f"veille: {text(str(exc))}", 2)
    return engine


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    output_format: str,
    *,
    title: str = "",
    headers: Sequence[str] | None = None,
    styles: dict[str, Callable[[Any], str]] | None = None,
    max_widths: Mapping[str, int] | None = None,
    flexible: str | None = None,
    wide: bool = False,
) -> None:
    """Write rows as a rich table, JSON lines array, or CSV. Cells from outside are terminal-safe.

    With `flexible`, the table is laid out for the terminal's width (80 columns and up): one line per row,
    cells cut with an ellipsis, columns capped by `max_widths`, the `flexible` column taking what is left.
    Without it, cells fold onto as many lines as they need; `wide` (--wide) folds nothing: the table is as
    wide as its longest cells (for `less -S`, or a terminal that wraps)."""
    if output_format == "json":
        click.echo(
            json.dumps([{c: _json_value(r.get(c)) for c in columns} for r in rows], ensure_ascii=False, indent=1)
        )
        return
    if output_format == "csv":
        click.echo(csv_text(columns, ([r.get(c) for c in columns] for r in rows)), nl=False)
        return
    if flexible is not None and not wide:
        _compact_table(rows, columns, headers or columns, styles or {}, max_widths or {}, flexible)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, show_lines=False, expand=False, box=box.HEAVY_HEAD, padding=(0, 1))
    for header in headers or columns:
        table.add_column(header, overflow="fold")
    for r in rows:
        cells = []
        for c in columns:
            style = styles[c](r.get(c)) if styles and c in styles else ""
            cells.append(Text(terminal_safe(_cell(r.get(c))), style=style))  # Text: no markup injection
        table.add_row(*cells)
    console = Console(highlight=False, soft_wrap=False, width=_table_width(compact=False))
    if wide:
        console.width = console.measure(table, options=console.options.update_width(100_000)).maximum
    console.print(table)


def _compact_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Sequence[str],
    styles: Mapping[str, Callable[[Any], str]],
    max_widths: Mapping[str, int],
    flexible: str,
) -> None:
    """One line per row for an 80-column terminal: columns as wide as their longest cell (capped by
    `max_widths`), cut with an ellipsis; when the table is wider than the terminal, the `flexible` column
    takes what the others leave. Laid out here rather than by rich's general table engine, whose import and
    measuring passes were a quarter of `veille hits`' start; rich still measures the characters' widths."""
    from rich.cells import cell_len, set_cell_size

    texts = [[" ".join(terminal_safe(_cell(r.get(c))).split()) for c in columns] for r in rows]
    widths = []
    for index, (column, header) in enumerate(zip(columns, headers, strict=True)):
        natural = max([cell_len(header), *(cell_len(line[index]) for line in texts)])
        widths.append(min(natural, max_widths.get(column, natural)))
    room = _table_width(compact=True) or shutil.get_terminal_size().columns
    spare = room - (sum(widths) + len(widths) + 1)  # a space before, between and after the cells
    if spare < 0:
        flex = columns.index(flexible)
        widths[flex] = max(widths[flex] + spare, min(cell_len(headers[flex]), 10))
    colour = sys.stdout.isatty()

    def fit(value: str, width: int) -> str:
        if cell_len(value) > width:
            value = set_cell_size(value, width - 1) + "…"
        return set_cell_size(value, width)

    def line(cells: Sequence[str], row: Mapping[str, Any] | None = None) -> str:
        fitted = []
        for index, cell in enumerate(cells):
            text_cell = fit(cell, widths[index])
            column = columns[index]
            style = styles[column](row.get(column)) if row is not None and column in styles else ""
            fitted.append(click.style(text_cell, fg=style) if colour and style else text_cell)
        return " " + " ".join(fitted) + " "

    total = sum(widths) + len(widths) + 1
    header = line(headers)
    out = [" " * total, click.style(header, bold=True) if colour else header, " " + "─" * (total - 2) + " "]
    out.extend(line(cells, row) for row, cells in zip(rows, texts, strict=True))
    out.append(" " * total)
    click.echo("\n".join(out))


def _table_width(compact: bool) -> int | None:
    """The terminal's width; piped output: $COLUMNS, else 120 (compact) or 220 (--wide) columns."""
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else (120 if compact else 220)


def short_link(url: str | None) -> str:
    """A link as its host (and path, cut by the table): no scheme, no www."""
    if not url:
        return ""
    link = url.split("://", 1)[-1].removeprefix("www.")
    return link.rstrip("/")


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while long work runs (replay, report, purge, training), shown only when
    stderr is a terminal: piped or logged output stays as it was. Yields `advance(steps)`; a None total
    shows a spinner. The bar is removed when the work ends."""
    if not sys.stderr.isatty():
        yield lambda _steps: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps: bar.advance(task, steps)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
