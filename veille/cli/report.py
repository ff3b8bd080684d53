"""`veille report`: the monthly report of a client (or of every client) in Markdown, HTML, CSV or JSON."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database, progress
from veille.cli.wording import _, cli_wording, command, text
from veille.core.i18n import N_
from veille.core.textsafe import terminal_safe

# veille.reports.FORMATS, spelt out so that building the command does not import the report code
# (tests/cli/test_cli.py checks that the two agree).
FORMATS = ("md", "html", "csv", "json")


def register(group: click.Group) -> None:
    group.add_command(report_command)


@command(
    "report",
    help=N_("A client's monthly report: volumes, sentiment and trend, notable hits, incidents, broken sources."),
)
@config_option
@click.option("--client", help=N_("Client id (default: one report per client)."))
@click.option(
    "--month", metavar="YYYY-MM", help=N_("Month of the report (default: the previous month, in the configured zone).")
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help=N_("md readable as is, self-contained html, csv (one hit per line), json (the figures)."),
)
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help=N_("File to write; an existing folder receives one file per client (default: standard output)."),
)
@click.option(
    "--lang",
    help=N_("Language of the report (default: VEILLE_LANG, else the config's lang)."),
)
def report_command(
    config_file: str | None,
    client: str | None,
    month: str | None,
    output_format: str,
    output: str | None,
    lang: str | None,
) -> None:
    from veille.reports import EXTENSIONS, monthly_report, render
    from veille.reports.period import Month, previous_month
    from veille.store.engine import read_conn

    config = load_or_exit(config_file)
    lang = cli_wording().lang  # --lang, VEILLE_LANG or the config's, read before parsing
    if client is not None and config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(_("unknown client: {client} (clients: {known})").format(client=repr(client), known=known))
    chosen = [config.client(client)] if client is not None else list(config.clients)
    if not chosen:
        fail(_("no client in the configuration"))
    now = datetime.now(UTC)
    try:
        period = Month.parse(month) if month else previous_month(now, config.tz)
    except ValueError as exc:
        raise click.BadParameter(text(str(exc)), param_hint="--month") from None
    engine = open_database(config)
    clients = [c for c in chosen if c is not None]
    reports = []
    with read_conn(engine) as conn, progress(_("Monthly reports"), len(clients)) as advance:
        for c in clients:
            reports.append(
                monthly_report(
                    conn,
                    client_id=c.id,
                    client_name=c.name,
                    month=period,
                    timezone=config.timezone,
                    now=now,
                    failing_after=config.alerting.source_failing_after,
                )
            )
            advance(1)
    engine.dispose()
    many = client is None
    if output is None:
        rendered = render(reports, output_format, lang, many=many)
        click.echo(for_terminal(rendered, sys.stdout.isatty()), nl=False)
        return
    target = Path(output)
    if target.is_dir() or output.endswith(("/", os.sep)):
        target.mkdir(parents=True, exist_ok=True)
        for report in reports:
            path = target / f"{report.client_id}-{report.month}.{EXTENSIONS[output_format]}"
            _write(path, render([report], output_format, lang))
        return
    _write(target, render(reports, output_format, lang, many=many))


def for_terminal(rendered: str, tty: bool) -> str:
    """On a terminal, text from posts must not move the cursor or retitle the window (CSV/JSON keep raw text)."""
    return terminal_safe(rendered, keep_newlines=True) if tty else rendered


def _write(path: Path, content: str) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a report."""
    import tempfile

    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        fail(_("cannot write {path}: {reason}").format(path=path, reason=exc.strerror or exc))
    click.echo(_("report written: {path}").format(path=path), err=True)
