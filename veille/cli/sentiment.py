"""Sentiment commands: `veille score`, `veille sentiment train`, `veille label`.

`veille score` is also how a community manager asks "why was this flagged?": every line of output
carries the reasons (words, emojis and rules that weighed most).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click

from veille.cli.common import config_option, fail, load_or_exit, open_database
from veille.config import Config, config_path
from veille.core.i18n import current_lang, tr
from veille.core.models import SentimentLabel, SentimentResult
from veille.scoring.base import Scorer
from veille.scoring.settings import SentimentSettings

BATCH = 256
lang_option = click.option(
    "--lang",
    "ui_lang",
    type=click.Choice(["fr", "en"]),
    default=None,
    help="Langue des messages (défaut : $VEILLE_LANG, sinon la config, sinon fr).",
)


def register(group: click.Group) -> None:
    group.add_command(score)
    group.add_command(sentiment_group)
    group.add_command(label)


def _optional_config(config_file: str | None) -> Config | None:
    """`veille score` works without any config file: then the bundled model is used."""
    path = config_path(config_file)
    if config_file is None and not Path(path).is_file():
        return None
    return load_or_exit(path)


def _scorer(config: Config | None) -> Scorer:
    from veille.core.paths import data_dir
    from veille.scoring import ScorerLoadError, load_scorer

    settings = config.sentiment if config else SentimentSettings()
    try:
        return load_scorer(settings, data_dir=data_dir(config.database_url if config else None))
    except ScorerLoadError as exc:
        fail(f"veille: {exc}", 2)


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
        {"label": result.label.value, "score": result.score, "lang": result.lang, "reasons": list(result.reasons)},
        ensure_ascii=False,
    )


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.File("r", encoding="utf-8", errors="replace", lazy=False),
    default=None,
    help="Un texte par ligne ; « - » pour l'entrée standard.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="json : une ligne JSON par texte, dans l'ordre ; table : pour les humains.",
)
@config_option
@lang_option
def score(
    texts: tuple[str, ...], file: IO[str] | None, output_format: str, config_file: str | None, ui_lang: str | None
) -> None:
    """Score le sentiment de textes : label, score [-1, 1], langue et raisons.

    Exemple : veille score "jsui dégoutè 😥 mais la salade était trop bonne ❤"
    """
    config = _optional_config(config_file)
    lang = ui_lang or current_lang(config.lang if config else None)
    if not texts and file is None:
        fail(
            tr(
                lang,
                "Donnez un ou plusieurs textes, ou --file FICHIER (« - » pour l'entrée standard).",
                "Give one or more texts, or --file FILE ('-' for standard input).",
            ),
            2,
        )
    scorer = _scorer(config)
    if output_format == "json":
        for batch in _batches(_inputs(texts, file), BATCH):
            for result in scorer.score_batch(batch):
                click.echo(result_json(result))
        return
    _table(scorer, _inputs(texts, file), lang)


def _table(scorer: Scorer, inputs: Iterable[str], lang: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from veille.core.textsafe import terminal_safe

    table = Table(show_lines=False)
    for header in (
        "#",
        tr(lang, "texte", "text"),
        "label",
        "score",
        tr(lang, "langue", "lang"),
        tr(lang, "raisons", "reasons"),
    ):
        table.add_column(header, overflow="fold")
    colours = {SentimentLabel.NEG: "red", SentimentLabel.NEU: "", SentimentLabel.POS: "green"}
    number = 0
    for batch in _batches(inputs, BATCH):
        for text, result in zip(batch, scorer.score_batch(batch), strict=True):
            number += 1
            short = text if len(text) <= 70 else text[:69] + "…"
            table.add_row(
                str(number),
                Text(terminal_safe(short)),
                Text(result.label.value, style=colours[result.label]),
                f"{result.score:+.2f}",
                result.lang,
                Text(terminal_safe(", ".join(result.reasons))),
            )
    width = None if sys.stdout.isatty() else 200
    Console(highlight=False, soft_wrap=False, width=width).print(table)


@click.group("sentiment")
def sentiment_group() -> None:
    """Modèle de sentiment : réentraînement sur vos propres posts annotés."""


@sentiment_group.command("train")
@click.argument("tsv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Où écrire le modèle (défaut : sentiment-model.json.gz dans le dossier de données, "
    "$VEILLE_HOME ou à côté de la base SQLite), que le démon préfère au modèle livré.",
)
@click.option("--no-labels", is_flag=True, help="N'ajoute pas les corrections enregistrées avec `veille label`.")
@click.option(
    "--from-scratch", is_flag=True, help="Entraîne sur vos seules données, sans s'appuyer sur le modèle livré."
)
@config_option
@lang_option
def train(
    tsv: Path, output: Path | None, no_labels: bool, from_scratch: bool, config_file: str | None, ui_lang: str | None
) -> None:
    """Réentraîne le modèle sur FICHIER.tsv (id, lang, label, texte) plus vos corrections.

    Même format que les données partagées : une ligne d'en-tête puis
    id<TAB>lang<TAB>label<TAB>texte, avec lang fr/en et label neg/neu/pos. Le nouveau modèle
    s'ajoute au modèle livré (sauf --from-scratch) ; une langue avec moins de 30 lignes garde
    le modèle livré. Redémarrez le démon pour qu'il le charge.
    """
    from veille.core.paths import data_dir
    from veille.scoring.linear import LinearModel
    from veille.scoring.loader import bundled_model_bytes, trained_model_path
    from veille.scoring.training import Example, TrainingDataError, read_tsv, train_model

    config = _optional_config(config_file)
    lang = ui_lang or current_lang(config.lang if config else None)
    try:
        examples = read_tsv(tsv)
    except (TrainingDataError, UnicodeDecodeError) as exc:
        fail(f"veille: {exc}", 2)
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
        model, report = train_model(examples, base=base, card=card, on_top=not from_scratch)
    except TrainingDataError as exc:
        fail(f"veille: {exc}", 2)
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
        click.echo(f"{code}: {line}")
    click.echo(
        tr(
            lang,
            f"Modèle écrit dans {target} ({len(used_labels)} correction(s) incluse(s)). "
            "Redémarrez le démon pour l'utiliser.",
            f"Model written to {target} ({len(used_labels)} correction(s) included). Restart the daemon to use it.",
        )
    )
    if output is not None and output.resolve() != trained_model_path(directory).resolve():
        click.echo(
            tr(
                lang,
                f"Ce n'est pas l'emplacement par défaut : ajoutez model_path = \"{target}\" "
                "dans la section [sentiment] de la configuration pour que le démon le charge.",
                f'Not the default location: add model_path = "{target}" to the [sentiment] section '
                "of the config so that the daemon loads it.",
            )
        )


@click.command()
@click.argument("hit_id", type=int)
@click.argument("value", metavar="neg|neu|pos", type=click.Choice([label.value for label in SentimentLabel]))
@config_option
@lang_option
def label(hit_id: int, value: str, config_file: str | None, ui_lang: str | None) -> None:
    """Corrige le sentiment d'un hit ; le prochain `veille sentiment train` en tiendra compte."""
    from veille.store.labels import UnknownHit, record_label

    config = load_or_exit(config_file)
    lang = ui_lang or current_lang(config.lang)
    engine = open_database(config)
    try:
        record_label(engine, hit_id, SentimentLabel(value), now=datetime.now(UTC))
    except UnknownHit:
        fail(tr(lang, f"Aucun hit n°{hit_id}.", f"No hit #{hit_id}."), 1)
    click.echo(
        tr(
            lang,
            f"Hit {hit_id} annoté « {value} ». Il servira au prochain `veille sentiment train`.",
            f"Hit {hit_id} labelled '{value}'. The next `veille sentiment train` will use it.",
        )
    )
