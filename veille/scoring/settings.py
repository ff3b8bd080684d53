"""`[sentiment]`: which scorer runs on new hits."""

from __future__ import annotations

from dataclasses import dataclass

from veille.configreader import Reader


@dataclass(frozen=True, slots=True)
class SentimentSettings:
    scorer: str = "default"
    batch_size: int = 256


def parse_sentiment(root: Reader) -> SentimentSettings:
    section = root.table("sentiment")
    if section is None:
        return SentimentSettings()
    settings = SentimentSettings(
        scorer=section.str("scorer", "default", choices=("default",)),
        batch_size=section.int("batch_size", 256, min=1, max=10_000),
    )
    section.finish()
    return settings
