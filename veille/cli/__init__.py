"""The `veille` command. Each module in COMMAND_MODULES adds its commands with `register(group)`."""

from __future__ import annotations

import importlib

import click

from veille.cli.wording import group
from veille.core.i18n import N_
from veille.core.version import __version__

COMMAND_MODULES = [
    "veille.cli.core",
    "veille.cli.alerts",
    "veille.cli.sentiment",
    "veille.cli.report",
    "veille.cli.maintenance",
]


@group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=N_(
        "veille: social listening for community managers.\n\n"
        "Watches every source of every client, scores sentiment, detects bad buzz and wakes the phone "
        "only when it matters."
    ),
)
@click.version_option(__version__, prog_name="veille", help=N_("Show the version and exit."))
def cli() -> None:
    pass


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    cli(prog_name="veille")
