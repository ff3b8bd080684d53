"""Database upkeep commands: `purge` (retention, G10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database
from veille.core.durations import format_duration, parse_duration
from veille.core.i18n import current_lang, tr


def register(group: click.Group) -> None:
    group.add_command(purge_command)


@click.command("purge")
@config_option
@click.option(
    "--older-than",
    "older_than",
    metavar="DURÉE",
    help="Âge à partir duquel un hit est supprimé (ex. 400d) ; défaut : [retention] keep.",
)
@click.option("--dry-run", is_flag=True, help="Compte ce qui serait supprimé, sans rien supprimer.")
def purge_command(config_file: str | None, older_than: str | None, dry_run: bool) -> None:
    """Supprime les vieux hits par lots de 1 000 (sauf hits annotés et preuves d'incidents non résolus)."""
    from veille.store.retention import BATCH, purge_hits

    config = load_or_exit(config_file)
    lang = current_lang(config.lang)
    keep: timedelta | None = config.retention.keep
    if older_than is not None:
        try:
            keep = parse_duration(older_than)
        except ValueError as exc:
            fail(f"--older-than: {exc}", 2)
        if keep < timedelta(days=1):
            fail(tr(lang, "--older-than : au moins 1d", "--older-than: at least 1d"), 2)
    if keep is None:
        fail(
            tr(
                lang,
                "aucune durée : passez --older-than 400d ou réglez [retention] keep dans config.toml",
                "no age given: pass --older-than 400d or set [retention] keep in config.toml",
            ),
            2,
        )
    engine = open_database(config)
    before = datetime.now(UTC) - keep
    age = format_duration(keep)

    def progress(batch: int, deleted: int) -> None:
        if deleted:
            click.echo(tr(lang, f"lot {batch} : {deleted} hits supprimés", f"batch {batch}: {deleted} hits deleted"))

    report = purge_hits(engine, before, dry_run=dry_run, on_batch=progress)
    engine.dispose()
    if dry_run:
        click.echo(
            tr(
                lang,
                f"{report.hits} hits de plus de {age} seraient supprimés (par lots de {BATCH}).",
                f"{report.hits} hits older than {age} would be deleted (in batches of {BATCH}).",
            )
        )
    else:
        click.echo(
            tr(
                lang,
                f"{report.hits} hits de plus de {age} supprimés en {report.batches} transactions.",
                f"{report.hits} hits older than {age} deleted in {report.batches} transactions.",
            )
        )
