"""A client's own words never count as sentiment evidence.

Its name, handles and keywords say *who* a post is about, not how it feels: "Tapis Royal ouvre une
boutique à Lyon" is news, although the French lexicon reads "tapis" as -0.9. The caller (the pipeline,
replay, `veille score --client`) passes the client's terms in; they are taken out of the text before any
scorer sees it, so the rules, the bundled model and a transformer all judge only the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

from veille.core.matching import find_folded, keyword_terms, terms_pattern


class OwnTerms:
    """The words to leave out of a client's texts before scoring: its name and its keywords' terms."""

    def __init__(self, name: str, keywords: Iterable[str]) -> None:
        self.terms = tuple(dict.fromkeys([name.strip(), *keyword_terms(keywords)]))
        self._pattern = terms_pattern(self.terms)

    def without(self, text: str) -> str:
        """`text` with every occurrence of the client's terms replaced by a space (case and accents ignored)."""
        if self._pattern is None or not text:
            return text
        spans = find_folded(text, self._pattern)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts.append(text[last:start])
            last = end
        parts.append(text[last:])
        return " ".join(parts).strip()
