"""The `veille` command. COMMANDS names the module that adds each command with `register(group)`."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from veille.cli.common import DATABASE_URL_KEY, LOG_LEVEL_KEY, LOG_LEVELS
from veille.cli.wording import Group
from veille.core.i18n import N_
from veille.core.version import __version__

log = logging.getLogger("veille.cli")

# The module that registers each command. A run imports only its command's module (`veille hits` does not
# load the report or the web commands): tests/cli/test_cli.py checks this table against what they register.
COMMANDS = {
    **dict.fromkeys(["run", "hits", "sources", "config", "db", "health", "daemons"], "veille.cli.core"),
    **dict.fromkeys(["alerts", "ack", "mute", "unmute", "replay", "export", "status"], "veille.cli.alerts"),
    **dict.fromkeys(["score", "sentiment", "label"], "veille.cli.sentiment"),
    "report": "veille.cli.report",
    "audience": "veille.cli.audience",
    "inbox": "veille.cli.inbox",
    "purge": "veille.cli.maintenance",
    "web": "veille.cli.web",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


class RootGroup(Group):
    """Every command's database failure ends in one line with its fix (exit 2 or 1); the traceback is
    logged at --log-level debug only. Anything else (a bug) keeps its traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name]).register(self)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from veille.cli.failures import explain

            explained = explain(exc, ctx.meta.get(DATABASE_URL_KEY))
            if explained is None:
                raise
            log.debug("the failure behind the next line", exc_info=exc)
            message, code = explained
            click.echo(message, err=True)
            ctx.exit(code)


@click.group(
    cls=RootGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=N_(
        "veille: social listening for community managers.\n\n"
        "Watches every source of every client, scores sentiment, detects bad buzz and wakes the phone "
        "only when it matters."
    ),
)
@click.version_option(__version__, prog_name="veille", help=N_("Show the version and exit."))
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help=N_("Log level of every command (debug also shows the traceback behind an error)."),
)
def cli(log_level: str | None) -> None:
    if log_level:
        from veille.core.logs import setup_logging

        setup_logging(log_level.upper())
        click.get_current_context().meta[LOG_LEVEL_KEY] = log_level.upper()


def main() -> None:
    cli(prog_name="veille")
