"""`[sentiment]`: which scorer runs on new hits, and where its model lives.

[sentiment]
scorer = "default"          # "default" (bundled, offline) or "transformer" (extra, local model)
model_path = "..."          # transformer: a local model directory (required; never a hub name)
                            # default: optional, a model file made by `veille sentiment train`
batch_size = 256
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from veille.core.configreader import Reader
from veille.core.i18n import N_

SCORERS = ("default", "transformer")


@dataclass(frozen=True, slots=True)
class SentimentSettings:
    scorer: str = "default"
    batch_size: int = 256
    model_path: str | None = None


def parse_sentiment(root: Reader) -> SentimentSettings:
    section = root.table("sentiment")
    if section is None:
        return SentimentSettings()
    scorer = section.str("scorer", "default", choices=SCORERS)
    model_path = section.str("model_path", None)
    settings = SentimentSettings(
        scorer=scorer,
        batch_size=section.int("batch_size", 256, min=1, max=10_000),
        model_path=model_path,
    )
    if scorer == "transformer":
        if not model_path:
            section.add(
                "model_path",
                N_('is required when scorer = "transformer"'),
                N_('give the local directory of a downloaded model, e.g. model_path = "/opt/models/xlm-t"'),
            )
        elif not Path(model_path).expanduser().is_dir():
            section.add(
                "model_path",
                N_("{model_path!r} is not a local directory").format(model_path=model_path),
                N_("models are never downloaded at run time: download it once and give its directory"),
            )
        if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
            section.add(
                "scorer",
                N_("the transformer scorer needs the optional packages transformers and torch"),
                N_("install them with: pip install 'veille[transformer]'"),
            )
    section.finish()
    return settings
