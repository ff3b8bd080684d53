"""Database upkeep commands: `purge` (retention, G10)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database, progress
from veille.cli.wording import _, command, text
from veille.core.durations import format_duration, parse_duration
from veille.core.i18n import N_


def register(group: click.Group) -> None:
    group.add_command(purge_command)


@command(
    "purge",
    help=N_("Delete old hits in batches of 1,000 (except labelled hits and evidence of unresolved incidents)."),
)
@config_option
@click.option(
    "--older-than",
    "older_than",
    metavar="DURATION",
    help=N_("Age from which a hit is deleted (e.g. 400d); default: [retention] keep."),
)
@click.option("--dry-run", is_flag=True, help=N_("Count what would be deleted, deleting nothing."))
def purge_command(config_file: str | None, older_than: str | None, dry_run: bool) -> None:
    from veille.store.retention import BATCH, purge_hits

    config = load_or_exit(config_file)
    keep: timedelta | None = config.retention.keep
    if older_than is not None:
        try:
            keep = parse_duration(older_than)
        except ValueError as exc:
            fail(f"--older-than: {text(str(exc))}", 2)
        if keep < timedelta(days=1):
            fail(_("--older-than: at least 1d"), 2)
    if keep is None:
        fail(_("no age given: pass --older-than 400d or set [retention] keep in config.toml"), 2)
    engine = open_database(config)
    before = datetime.now(UTC) - keep
    age = format_duration(keep)

    total = None if dry_run or not sys.stderr.isatty() else purge_hits(engine, before, dry_run=True).hits
    with progress(_("Deleting old hits"), total) as advance:

        def on_batch(batch: int, deleted: int) -> None:
            advance(deleted)
            if deleted:
                click.echo(_("batch {batch}: {deleted} hits deleted").format(batch=batch, deleted=deleted))

        report = purge_hits(engine, before, dry_run=dry_run, on_batch=on_batch)
    engine.dispose()
    if dry_run:
        click.echo(
            _("{hits} hits older than {age} would be deleted (in batches of {batch}).").format(
                hits=report.hits, age=age, batch=BATCH
            )
        )
    else:
        click.echo(
            _("{hits} hits older than {age} deleted in {batches} transactions.").format(
                hits=report.hits, age=age, batches=report.batches
            )
        )
