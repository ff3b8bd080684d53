"""A review's stars outrank its words: a 1- or 2-star review is negative whatever its text says.

"Très bon accueil, dommage pour l'intoxication" with one star is a complaint the scorer may read as
mixed; a 5-star review is left to the scorer (the text can still be sarcastic or report a problem).
"""

from __future__ import annotations

from veille.core.models import SentimentLabel, SentimentResult

NEGATIVE_STARS = 2  # at or below: negative
STAR_SCORE = {1: -0.9, 2: -0.6}  # the score given when the text read less negative than the stars


def rated(result: SentimentResult | None, stars: int | None) -> SentimentResult | None:
    """The verdict adjusted to a review's star rating; unchanged for anything but a 1- or 2-star review."""
    if stars is None or not 1 <= stars <= NEGATIVE_STARS:
        return result
    floor = STAR_SCORE[stars]
    reason = f"{stars}/5 stars"
    if result is None:
        return SentimentResult(SentimentLabel.NEG, floor, "und", (reason,))
    return SentimentResult(SentimentLabel.NEG, min(result.score, floor), result.lang, (reason, *result.reasons))
