"""Choose and load the configured scorer once, at daemon start.

Which model the default scorer uses, first found wins:
1. `[sentiment] model_path` when it names a model file;
2. `<data dir>/sentiment-model.json.gz`, written by `veille sentiment train`;
3. the model bundled in the package (see the model card in `veille.scoring.default`).

The data directory is `$VEILLE_HOME` when set, else the SQLite database's folder, else
`$XDG_DATA_HOME/veille` (`~/.local/share/veille`).
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from veille.scoring.base import Scorer, ScorerLoadError
from veille.scoring.settings import SentimentSettings

if TYPE_CHECKING:
    from veille.scoring.linear import LinearModel

log = logging.getLogger(__name__)

TRAINED_MODEL_NAME = "sentiment-model.json.gz"
BUNDLED_MODEL = ("model", "default.json.gz")


def trained_model_path(directory: Path) -> Path:
    return directory / TRAINED_MODEL_NAME


def bundled_model_bytes() -> bytes:
    return resources.files("veille.scoring").joinpath(*BUNDLED_MODEL).read_bytes()


def load_linear_model(settings: SentimentSettings, directory: Path | None) -> tuple[LinearModel, str]:
    """The model the default scorer would use, and where it came from (a path or "bundled")."""
    from veille.scoring.linear import LinearModel, ModelFileError

    candidates: list[Path] = []
    if settings.model_path:
        candidates.append(Path(settings.model_path).expanduser())
    if directory is not None:
        candidates.append(trained_model_path(directory))
    for index, path in enumerate(candidates):
        explicit = index == 0 and bool(settings.model_path)
        if not path.is_file():
            if explicit:
                raise ScorerLoadError(f"sentiment.model_path: {path} is not a file")
            continue
        try:
            return LinearModel.load(path), str(path)
        except ModelFileError as exc:
            if explicit:
                raise ScorerLoadError(f"sentiment.model_path: {exc}") from exc
            # A damaged retrained model must not stop the daemon: say so and use the bundled one.
            log.warning("sentiment.trained_model_unusable", extra={"path": str(path), "error": str(exc)})
    try:
        return LinearModel.from_bytes(bundled_model_bytes()), "bundled"
    except (OSError, ModelFileError) as exc:
        raise ScorerLoadError(f"the bundled sentiment model is missing or damaged ({exc}); reinstall veille") from exc


def load_scorer(settings: SentimentSettings, *, data_dir: Path | None = None) -> Scorer:
    """Build the configured scorer. Call once at start; `score_batch` is then safe in a worker thread.

    `data_dir` defaults to `$VEILLE_HOME` when set (pass `veille.core.paths.data_dir(config.database_url)`
    so that a model retrained next to the database is found).
    """
    if settings.scorer == "transformer":
        from veille.scoring.transformer import TransformerScorer

        if not settings.model_path:
            raise ScorerLoadError('sentiment.model_path is required when scorer = "transformer"')
        return TransformerScorer.load(Path(settings.model_path).expanduser())
    from veille.scoring.default import DefaultScorer

    directory = data_dir
    if directory is None and os.environ.get("VEILLE_HOME"):
        directory = Path(os.environ["VEILLE_HOME"]).expanduser()
    model, origin = load_linear_model(settings, directory)
    return DefaultScorer(model, origin=origin)
