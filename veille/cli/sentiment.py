"""Sentiment commands: `veille score`, `veille sentiment train`, `veille label`.

`veille score` is also how a community manager asks "why was this flagged?": every line of output
carries the reasons (words, emojis and rules that weighed most).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database, progress
from veille.cli.wording import _, command, group, ngettext, text
from veille.core.i18n import N_
from veille.core.models import SentimentLabel, SentimentResult

if TYPE_CHECKING:
    from veille.config import Config
    from veille.scoring.base import Scorer
    from veille.scoring.own_terms import OwnTerms

BATCH = 256
# Read before parsing, with VEILLE_LANG and the config's lang (veille.cli.wording.configured_lang).
lang_option = click.option(
    "--lang",
    "ui_lang",
    default=None,
    help=N_("Language of the messages (default: $VEILLE_LANG, else the config, else fr)."),
)


def register(group: click.Group) -> None:
    group.add_command(score)
    group.add_command(sentiment_group)
    group.add_command(label)


def _optional_config(config_file: str | None) -> Config | None:
    """`veille score` works without any config file: then the bundled model is used."""
    from veille.config import config_path

    path = config_path(config_file)
    if config_file is None and not Path(path).is_file():
        return None
    return load_or_exit(path)


class _ClientScorer:
    """What the pipeline does for one client's hits: its own name and keywords are taken out first."""

    def __init__(self, scorer: Scorer, own: OwnTerms) -> None:
        self.name = scorer.name
        self._scorer = scorer
        self._own = own

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        return self._scorer.score_batch([self._own.without(body) for body in texts])


def _as_client(scorer: Scorer, config: Config | None, client_id: str) -> Scorer:
    from veille.scoring.own_terms import OwnTerms

    client = config.client(client_id) if config else None
    if client is None:
        known = ", ".join(c.id for c in config.clients) if config else ""
        fail(_("unknown client: {client} (clients: {known})").format(client=repr(client_id), known=known), 2)
    return _ClientScorer(scorer, OwnTerms(client.name, client.keywords))


def _scorer(config: Config | None) -> Scorer:
    from veille.core.paths import data_dir
    from veille.scoring import ScorerLoadError, load_scorer
    from veille.scoring.settings import SentimentSettings

    settings = config.sentiment if config else SentimentSettings()
    try:
        return load_scorer(settings, data_dir=data_dir(config.database_url if config else None))
    except ScorerLoadError as exc:
        fail(f"veille: {text(str(exc))}", 2)


def _inputs(texts: tuple[str, ...], file: IO[str] | None) -> Iterator[str]:
    yield from texts
    if file is not None:
        for line in file:
            yield line.rstrip("\r\n")


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def result_json(result: SentimentResult) -> str:
    return json.dumps(
        {
            "label": result.label and result.label.value,
            "score": result.score,
            "lang": result.lang,
            "reasons": list(result.reasons),
        },
        ensure_ascii=False,
    )


@command(
    help=N_(
        "Score the sentiment of texts: label, score [-1, 1], language and reasons.\n\n"
        'Example: veille score "the pizza was cold and the waiter rude 😡"'
    )
)
@click.argument("texts", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.File("r", encoding="utf-8", errors="replace", lazy=False),
    default=None,
    help=N_("One text per line; '-' for standard input."),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help=N_("json: one JSON line per text, in order; table: for humans."),
)
@click.option(
    "--client",
    help=N_(
        "Score as veille does for this client's hits: its name and keywords are left out (they are not sentiment)."
    ),
)
@config_option
@lang_option
def score(
    texts: tuple[str, ...],
    file: IO[str] | None,
    output_format: str,
    client: str | None,
    config_file: str | None,
    ui_lang: str | None,
) -> None:
    config = _optional_config(config_file)
    if not texts and file is None:
        fail(_("Give one or more texts, or --file FILE ('-' for standard input)."), 2)
    scorer = _scorer(config)
    if client is not None:
        scorer = _as_client(scorer, config, client)
    if output_format == "json":
        for batch in _batches(_inputs(texts, file), BATCH):
            for result in scorer.score_batch(batch):
                click.echo(result_json(result))
        return
    _table(scorer, _inputs(texts, file))


def _table(scorer: Scorer, inputs: Iterable[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from veille.core.textsafe import terminal_safe

    table = Table(show_lines=False)
    for header in (
        "#",
        _("text"),
        _("label"),
        _("score"),
        _("language"),
        _("reasons"),
    ):
        table.add_column(header, overflow="fold")
    colours = {SentimentLabel.NEG: "red", SentimentLabel.NEU: "", SentimentLabel.POS: "green"}
    number = 0
    for batch in _batches(inputs, BATCH):
        for body, result in zip(batch, scorer.score_batch(batch), strict=True):
            number += 1
            short = body if len(body) <= 70 else body[:69] + "…"
            table.add_row(
                str(number),
                Text(terminal_safe(short)),
                Text(result.label.value, style=colours[result.label])
                if result.label is not None
                else Text(_("unscored"), style="dim"),
                f"{result.score:+.2f}",
                result.lang,
                Text(terminal_safe(", ".join(result.reasons))),
            )
    width = None if sys.stdout.isatty() else 200
    Console(highlight=False, soft_wrap=False, width=width).print(table)


@group("sentiment", help=N_("Sentiment model: retraining on your own labelled posts."))
def sentiment_group() -> None:
    pass


@sentiment_group.command(
    "train",
    help=N_(
        "Retrain the model on FILE.tsv (id, lang, label, text) plus your corrections.\n\n"
        "Same format as the shared data: a header line then id<TAB>lang<TAB>label<TAB>text, with lang fr/en "
        "and label neg/neu/pos. The new model adds to the bundled one (unless --from-scratch); a language "
        "with fewer than 30 lines keeps the bundled model. Restart the daemon for it to load it."
    ),
)
@click.argument("tsv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=N_(
        "Where to write the model (default: sentiment-model.json.gz in the data folder, $VEILLE_HOME or beside "
        "the SQLite database), which the daemon prefers to the bundled model."
    ),
)
@click.option("--no-labels", is_flag=True, help=N_("Leave out the corrections recorded with `veille label`."))
@click.option(
    "--from-scratch", is_flag=True, help=N_("Train on your data alone, without building on the bundled model.")
)
@config_option
@lang_option
def train(
    tsv: Path, output: Path | None, no_labels: bool, from_scratch: bool, config_file: str | None, ui_lang: str | None
) -> None:
    from veille.core.paths import data_dir
    from veille.scoring.linear import LinearModel
    from veille.scoring.loader import bundled_model_bytes, trained_model_path
    from veille.scoring.training import Example, TrainingDataError, read_tsv, train_model

    config = _optional_config(config_file)
    try:
        examples = read_tsv(tsv)
    except (TrainingDataError, UnicodeDecodeError) as exc:
        fail(f"veille: {text(str(exc))}", 2)
    used_labels: list[int] = []
    engine = None
    if config is not None and not no_labels:
        from veille.store.labels import list_training_rows

        engine = open_database(config)
        corrections = list_training_rows(engine)
        examples.extend(Example(row.lang, row.label, row.text) for row in corrections)
        used_labels = [row.label_id for row in corrections]
    directory = data_dir(config.database_url if config else None)
    target = output or trained_model_path(directory)
    base = LinearModel.from_bytes(bundled_model_bytes())
    card = f"Retrained by `veille sentiment train` on {tsv.name} plus {len(used_labels)} correction(s)" + (
        "." if from_scratch else ", on top of the bundled model (see its MODEL_CARD.txt)."
    )
    try:
        with progress(_("Training the sentiment model on {n} examples").format(n=len(examples)), None):
            model, report = train_model(examples, base=base, card=card, on_top=not from_scratch)
    except TrainingDataError as exc:
        fail(f"veille: {text(str(exc))}", 2)
    model.meta = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "file": tsv.name,
        "corrections": len(used_labels),
    }
    model.save(target)
    if engine is not None and used_labels:
        from veille.store.labels import mark_used

        mark_used(engine, used_labels, now=datetime.now(UTC))
    for code, line in report.items():
        click.echo(f"{code}: {text(line)}")
    count = len(used_labels)
    click.echo(
        ngettext(
            "Model written to {path} ({n} correction included). Restart the daemon to use it.",
            "Model written to {path} ({n} corrections included). Restart the daemon to use it.",
            count,
        ).format(path=target, n=count)
    )
    if output is not None and output.resolve() != trained_model_path(directory).resolve():
        click.echo(
            _(
                'Not the default location: add model_path = "{path}" to the [sentiment] section of the config '
                "so that the daemon loads it."
            ).format(path=target)
        )


@command(help=N_("Correct a hit's sentiment; the next `veille sentiment train` takes it into account."))
@click.argument("hit_id", type=int)
@click.argument("value", metavar="neg|neu|pos", type=click.Choice([label.value for label in SentimentLabel]))
@config_option
@lang_option
def label(hit_id: int, value: str, config_file: str | None, ui_lang: str | None) -> None:
    from veille.store.labels import UnknownHit, record_label

    config = load_or_exit(config_file)
    engine = open_database(config)
    try:
        record_label(engine, hit_id, SentimentLabel(value), now=datetime.now(UTC))
    except UnknownHit:
        fail(_("No hit #{id}.").format(id=hit_id), 1)
    click.echo(
        _("Hit {id} labelled '{label}'. The next `veille sentiment train` will use it.").format(id=hit_id, label=value)
    )
