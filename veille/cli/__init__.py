"""The `veille` command. Each module in COMMAND_MODULES adds its commands with `register(group)`."""

from __future__ import annotations

import importlib

import click

from veille.core.version import __version__

COMMAND_MODULES = [
    "veille.cli.core",
    "veille.cli.alerts",
    "veille.cli.sentiment",
    "veille.cli.report",
    "veille.cli.maintenance",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="veille")
def cli() -> None:
    """veille : veille des réseaux sociaux pour community managers.

    Surveille les sources de chaque client, score le sentiment, détecte les bad buzz
    et réveille le téléphone seulement quand c'est grave.
    """


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    cli(prog_name="veille")
