"""The CLI speaks one language per run, `--help` and click's own messages included.

The language is chosen before click parses anything (VEILLE_LANG, else the config file's `lang`, else French):
`Group.main` sets it, so `veille --help` is translated too. Help texts are English msgids in the code
(`help=N_("...")`), translated when shown; click's own messages ("Usage:", "Error: No such option") go
through the same catalogue, because click's modules call the gettext functions they imported from the
standard library, which are rebound here to the run's catalogue.
"""

from __future__ import annotations

import gettext
import importlib
import inspect
import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from veille.core.i18n import DEFAULT_LANG, Wording, current_lang, normalise, wording
from veille.core.tomlfile import peek

# click's modules that translate their messages (parser, types and exceptions raise; formatting writes "Usage:").
_CLICK_MODULES = (
    "click.core",
    "click.decorators",
    "click.exceptions",
    "click.formatting",
    "click.parser",
    "click.shell_completion",
    "click.termui",
    "click.types",
    "click.utils",
    "click._termui_impl",
)

_active: list[Wording] = []


def cli_wording() -> Wording:
    """The catalogue of this run (the current language when called outside a run, e.g. from a test)."""
    return _active[-1] if _active else wording(current_lang())


def _(message: str) -> str:
    return cli_wording()._(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return cli_wording().ngettext(singular, plural, n)


def text(english: str) -> str:
    """English text made elsewhere (an error, a config problem) in this run's language."""
    return cli_wording().text(english)


def _click_gettext(message: str) -> str:
    return cli_wording()._(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    return cli_wording().ngettext(singular, plural, n)


def _route_click_messages() -> None:
    for name in _CLICK_MODULES:
        module = sys.modules.get(name) or importlib.import_module(name)
        if getattr(module, "_", None) is gettext.gettext:
            module._ = _click_gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is gettext.ngettext:
            module.ngettext = _click_ngettext  # type: ignore[attr-defined]


_route_click_messages()


# Commands whose --lang names the posts' language, not the messages' (`veille hits --lang es`, issue 16).
POSTS_LANG_COMMANDS = frozenset({"hits"})


def configured_lang(args: Sequence[str], environ: dict[str, str] | None = None) -> str:
    """The run's language before parsing: a command's --lang, else VEILLE_LANG, else `lang` in the config
    file, else French."""
    env = os.environ if environ is None else environ
    path = env.get("VEILLE_CONFIG") or "config.toml"
    chosen = None
    command = _command(args)
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if command in POSTS_LANG_COMMANDS and (arg == "--lang" or arg.startswith("--lang=")):
            continue
        value = args[index + 1] if index + 1 < len(args) else None
        if arg == "--config" and value is not None:
            path = value
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
        elif arg == "--lang" and value is not None:
            chosen = value
        elif arg.startswith("--lang="):
            chosen = arg.partition("=")[2]
    if normalise(chosen):
        return normalise(chosen) or DEFAULT_LANG
    if normalise(env.get("VEILLE_LANG")):
        return current_lang()
    try:
        with open(path, "rb") as file:
            lang = peek(file.read().decode()).get("lang")  # parsed once: the command takes it (veille.core.tomlfile)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        lang = None
    return current_lang(lang if isinstance(lang, str) else None)


def _command(args: Sequence[str]) -> str | None:
    """The subcommand's name: the first word that is neither an option nor the value of --log-level."""
    for index, arg in enumerate(args):
        if not arg.startswith("-") and (index == 0 or args[index - 1] != "--log-level"):
            return arg
    return None


@contextmanager
def speaking(lang: str) -> Iterator[Wording]:
    """Run the CLI in `lang` (nested runs, as in tests, restore the outer language)."""
    _active.append(wording(lang))
    try:
        yield _active[-1]
    finally:
        _active.pop()


def _translated(text: str | None) -> str | None:
    return _(inspect.cleandoc(text)) if text else text


@contextmanager
def _help_in_run_language(command: click.Command, ctx: click.Context) -> Iterator[None]:
    """Show the command's, its options' and its subcommands' help in this run's language, then put the
    English msgids back (the command objects live as long as the process: tests switch languages)."""
    help_option = command.get_help_option(ctx)
    if help_option is not None:  # built once by click, with the language of its first run
        help_option.help = "Show this message and exit."
    targets: list[Any] = [command, *command.get_params(ctx)]
    if isinstance(command, click.Group):
        targets += [command.get_command(ctx, name) for name in command.list_commands(ctx)]
    saved = [(t, attr, getattr(t, attr)) for t in targets for attr in ("help", "short_help") if getattr(t, attr, None)]
    for target, attr, value in saved:
        setattr(target, attr, _translated(value))
    try:
        yield
    finally:
        for target, attr, value in saved:
            setattr(target, attr, value)


class Command(click.Command):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_in_run_language(self, ctx):
            super().format_help(ctx, formatter)


class Group(click.Group):
    command_class = Command
    group_class = type  # subgroups made with @group.group() are Groups of this class

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_in_run_language(self, ctx):
            super().format_help(ctx, formatter)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        with speaking(configured_lang(arguments)):
            return super().main(arguments, *rest, **extra)


def command(name: str | None = None, **attrs: Any) -> Callable[[Callable[..., Any]], Command]:
    """`click.command` making a Command whose help follows the run's language."""
    return click.command(name, cls=Command, **attrs)


def group(name: str | None = None, **attrs: Any) -> Callable[[Callable[..., Any]], Group]:
    """`click.group` making a Group whose help follows the run's language."""
    return click.group(name, cls=Group, **attrs)
