"""Helpers every command module shares: config loading with exit code 2, database opening, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from veille.cli.wording import ngettext, text
from veille.config import Config, load_config
from veille.core.csvtext import csv_text
from veille.core.errors import ConfigError, SchemaVersionError
from veille.core.i18n import N_
from veille.core.textsafe import terminal_safe
from veille.store.engine import make_engine
from veille.store.migrate import check_schema

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


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


# In click's context meta (shared by a command and the root group):
DATABASE_URL_KEY = "veille.database_url"  # what a database failure is about
LOG_LEVEL_KEY = "veille.log_level"  # `veille --log-level X run` without run's own option
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def load_or_exit(config_file: str | None) -> Config:
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
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    output_format: str,
    *,
    title: str = "",
    headers: Sequence[str] | None = None,
    styles: dict[str, Callable[[Any], str]] | None = None,
) -> None:
    """Write rows as a rich table, JSON lines array, or CSV. Cells from outside are terminal-safe."""
    if output_format == "json":
        click.echo(
            json.dumps([{c: _json_value(r.get(c)) for c in columns} for r in rows], ensure_ascii=False, indent=1)
        )
        return
    if output_format == "csv":
        click.echo(csv_text(columns, ([r.get(c) for c in columns] for r in rows)), nl=False)
        return
    table = Table(title=title or None, show_lines=False, expand=False)
    for header in headers or columns:
        table.add_column(header, overflow="fold")
    for r in rows:
        cells = []
        for c in columns:
            style = styles[c](r.get(c)) if styles and c in styles else ""
            cells.append(Text(terminal_safe(_cell(r.get(c))), style=style))  # Text: no markup injection
        table.add_row(*cells)
    # Piped output (less, files) gets a wide table instead of 80 folded columns.
    width = None if sys.stdout.isatty() else 220
    Console(highlight=False, soft_wrap=False, width=width).print(table)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
