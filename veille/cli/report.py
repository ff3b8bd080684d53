"""`veille report`: the monthly report of a client (or of every client) in Markdown, HTML, CSV or JSON."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database
from veille.core.i18n import current_lang, tr
from veille.core.textsafe import terminal_safe
from veille.reports import EXTENSIONS, FORMATS, monthly_report, render
from veille.reports.period import Month, previous_month
from veille.store.engine import read_conn


def register(group: click.Group) -> None:
    group.add_command(report_command)


@click.command("report")
@config_option
@click.option("--client", help="Identifiant du client (défaut : un rapport par client).")
@click.option(
    "--month", metavar="AAAA-MM", help="Mois du rapport (défaut : le mois précédent, dans le fuseau configuré)."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="md lisible tel quel, html autonome, csv (un hit par ligne), json (les chiffres).",
)
@click.option(
    "--output",
    "-o",
    metavar="CHEMIN",
    help="Fichier à écrire ; un dossier existant reçoit un fichier par client (défaut : sortie standard).",
)
@click.option(
    "--lang",
    type=click.Choice(["fr", "en"]),
    help="Langue du rapport (défaut : VEILLE_LANG, sinon lang de la configuration).",
)
def report_command(
    config_file: str | None,
    client: str | None,
    month: str | None,
    output_format: str,
    output: str | None,
    lang: str | None,
) -> None:
    """Rapport mensuel d'un client : volumes, sentiment et évolution, hits marquants, incidents, sources en panne."""
    config = load_or_exit(config_file)
    lang = lang or current_lang(config.lang)
    if client is not None and config.client(client) is None:
        known = ", ".join(c.id for c in config.clients)
        fail(tr(lang, f"client inconnu : {client!r} (clients : {known})", f"unknown client: {client!r} ({known})"))
    chosen = [config.client(client)] if client is not None else list(config.clients)
    if not chosen:
        fail(tr(lang, "aucun client dans la configuration", "no client in the configuration"))
    now = datetime.now(UTC)
    try:
        period = Month.parse(month) if month else previous_month(now, config.tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    engine = open_database(config)
    with read_conn(engine) as conn:
        reports = [
            monthly_report(
                conn,
                client_id=c.id,
                client_name=c.name,
                month=period,
                timezone=config.timezone,
                now=now,
                failing_after=config.alerting.source_failing_after,
            )
            for c in chosen
            if c is not None
        ]
    engine.dispose()
    many = client is None
    if output is None:
        text = render(reports, output_format, lang, many=many)
        click.echo(for_terminal(text, sys.stdout.isatty()), nl=False)
        return
    target = Path(output)
    if target.is_dir() or output.endswith(("/", os.sep)):
        target.mkdir(parents=True, exist_ok=True)
        for report in reports:
            path = target / f"{report.client_id}-{report.month}.{EXTENSIONS[output_format]}"
            _write(path, render([report], output_format, lang), lang)
        return
    _write(target, render(reports, output_format, lang, many=many), lang)


def for_terminal(text: str, tty: bool) -> str:
    """On a terminal, text from posts must not move the cursor or retitle the window (CSV/JSON keep raw text)."""
    return terminal_safe(text, keep_newlines=True) if tty else text


def _write(path: Path, text: str, lang: str) -> None:
    """Write through a temporary file in the same folder, so a reader never sees half a report."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        fail(
            tr(
                lang,
                f"impossible d'écrire {path} : {exc.strerror or exc}",
                f"cannot write {path}: {exc.strerror or exc}",
            )
        )
    click.echo(tr(lang, f"rapport écrit : {path}", f"report written: {path}"), err=True)
