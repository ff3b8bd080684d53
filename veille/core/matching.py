"""Keyword matching, the same for every source kind.

Each entry of a client's `keywords` list is one alternative (entries are OR-ed):

- `chez gégé`          a phrase: these words, in this order, at word boundaries
- `"chez gégé" pizza`  several tokens in one entry are all required (AND); quotes make a phrase
- `pizza OR pâtes`     explicit alternatives inside one entry
- `#chezgege`          the hashtag only; `@chezgege` the mention only (also `@chezgege@instance`)
- `-recrutement`       an entry that is only exclusions excludes any text containing it;
                       `pizza -recette` excludes inside that entry only

Matching ignores case and accents (`gégé` matches `Gege`) and treats punctuation as a boundary.
A text matching a `@mention` is flagged `direct`: it addresses the client.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

_WS = re.compile(r"[^\S ]\s*| \s+")  # white space to collapse: any run but a lone plain space (the common case)
_TOKEN = re.compile(r'-?"[^"]*"|\S+')


class _FoldTable(dict[int, str]):
    """str.translate table filled on first sight of each character: the scan itself runs in C."""

    _SPECIAL: ClassVar[dict[str, str]] = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = self._SPECIAL.get(char)
        if folded is None:
            decomposed = unicodedata.normalize("NFKD", char)
            folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
        self[code] = folded
        return folded


_FOLD = _FoldTable()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _fold_run(match: re.Match[str]) -> str:
    return match.group().translate(_FOLD)


def fold(text: str) -> str:
    """Lower-case, strip accents, fold ligatures (œ -> oe), collapse white space.

    Only the runs of non-ASCII characters go through the fold table (translating every character of a
    French article cost more than the rest of its matching); `lower` then does the ASCII letters, which
    the table would have lowered alike, and leaves the table's (already lower-case) output as it is."""
    folded = text.lower() if text.isascii() else _NON_ASCII.sub(_fold_run, text).lower()
    return _WS.sub(" ", folded)


class QuerySyntaxError(ValueError):
    pass


def term_pattern(term: str) -> str:
    """Regex for one folded term or phrase, bounded by non-word characters (it searches `fold`ed text)."""
    if term.startswith("#"):
        body = re.escape(term[1:])
        return rf"#{body}(?![a-z0-9_])"
    if term.startswith("@"):
        body = re.escape(term[1:])
        return rf"(?<![a-z0-9_.])@{body}(?![a-z0-9_])"
    words = [re.escape(w) for w in re.split(r"[^a-z0-9]+", term) if w]
    if not words:
        raise QuerySyntaxError(f"{term!r} has no letters or digits")
    return r"(?<![a-z0-9])" + r"[^a-z0-9]+".join(words) + r"(?![a-z0-9])"


@dataclass(frozen=True, slots=True)
class _Alternative:
    required: tuple[re.Pattern[str], ...]
    excluded: tuple[re.Pattern[str], ...]
    direct: bool
    label: str
    terms: tuple[str, ...]  # the required terms, folded
    literal: str  # the longest word of the first required term (see Matcher)


@dataclass(frozen=True, slots=True)
class MatchResult:
    matched: bool
    direct: bool = False
    terms: tuple[str, ...] = ()


def _parse_entry(entry: str) -> tuple[list[_Alternative], list[re.Pattern[str]]]:
    """Return the alternatives of one entry and its global exclusions."""
    text = fold(entry.strip())
    if not text:
        raise QuerySyntaxError("empty keyword")
    if text.count('"') % 2:
        raise QuerySyntaxError(f"unbalanced quote in {entry!r}")
    alternatives: list[_Alternative] = []
    global_excluded: list[re.Pattern[str]] = []
    plain = '"' not in text and " or " not in text and not re.search(r"(?:^|\s)-\S", text)
    parts = [text] if plain else re.split(r"\s+or\s+", text)
    for part in parts:
        required: list[str] = []
        excluded: list[str] = []
        tokens = [part] if plain else _TOKEN.findall(part)
        for raw_token in tokens:
            negative = raw_token.startswith("-") and len(raw_token) > 1
            token = (raw_token[1:] if negative else raw_token).strip('"').strip()
            if not token:
                continue
            (excluded if negative else required).append(token)
        compiled_ex = [re.compile(term_pattern(t)) for t in excluded]
        if not required:
            global_excluded.extend(compiled_ex)
            continue
        alternatives.append(
            _Alternative(
                required=tuple(re.compile(term_pattern(t)) for t in required),
                excluded=tuple(compiled_ex),
                direct=any(t.startswith("@") for t in required),
                label=" ".join(required),
                terms=tuple(required),
                literal=_longest_word(required[0]),
            )
        )
    return alternatives, global_excluded


class Matcher:
    """A compiled keyword list. Build once per client; `match` is called for every item."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = tuple(keywords)
        self._alternatives: list[_Alternative] = []
        self._excluded: list[re.Pattern[str]] = []
        for entry in self.keywords:
            alternatives, excluded = _parse_entry(entry)
            self._alternatives.extend(alternatives)
            self._excluded.extend(excluded)
        # One combined pre-filter: most texts match nothing, so reject them with a single scan.
        firsts = [alt.required[0].pattern for alt in self._alternatives]
        self._prefilter = re.compile("|".join(f"(?:{p})" for p in firsts)) if firsts else None
        # Before it, plain substring tests (in C, several times faster than the lookbehind regex): the
        # longest word of each alternative's first term must appear somewhere for that term to.
        self._literals = tuple({alt.literal for alt in self._alternatives})

    def match(self, text: str) -> MatchResult:
        if self._prefilter is None:
            return MatchResult(False)
        folded = fold(text)
        if not any(literal in folded for literal in self._literals) or not self._prefilter.search(folded):
            return MatchResult(False)
        if any(p.search(folded) for p in self._excluded):
            return MatchResult(False)
        hit_terms = []
        direct = False
        for alt in self._alternatives:
            if all(p.search(folded) for p in alt.required) and not any(p.search(folded) for p in alt.excluded):
                hit_terms.append(alt.label)
                direct = direct or alt.direct
        return MatchResult(bool(hit_terms), direct, tuple(hit_terms))


def keyword_terms(keywords: Iterable[str]) -> tuple[str, ...]:
    """Every term a text about the client contains (folded): the required words, phrases, #tags and
    @handles of each entry, never its exclusions. Invalid entries are skipped (config check reports them)."""
    terms: dict[str, None] = {}
    for entry in keywords:
        try:
            alternatives, _ = _parse_entry(entry)
        except QuerySyntaxError:
            continue
        for alternative in alternatives:
            terms.update(dict.fromkeys(alternative.terms))
    return tuple(terms)


def terms_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One regex finding any of these terms (words, phrases, '#tag', '@handle') in folded text, bounded as
    keyword matching bounds them; longer terms first, so a phrase wins over its first word."""
    patterns: list[str] = []
    for term in sorted({fold(t.strip()) for t in terms}, key=len, reverse=True):
        if not term:
            continue
        try:
            patterns.append(term_pattern(term))
        except QuerySyntaxError:
            continue
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def find_folded(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """Spans of `text` itself where `pattern` (written for folded text) matches, case and accents ignored."""
    folded = text.lower() if text.isascii() else text.translate(_FOLD)
    if len(folded) == len(text):  # one folded character per character: positions are the same
        return [m.span() for m in pattern.finditer(folded)]
    pieces = [char.translate(_FOLD) for char in text]  # a ligature or a decomposition changed the length
    origin = [index for index, piece in enumerate(pieces) for _ in piece]
    joined = "".join(pieces)
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in pattern.finditer(joined) if m.end() > m.start()]


def _longest_word(term: str) -> str:
    """The longest run of letters and digits of a folded term: `term_pattern(term)` matches only text holding it."""
    return max(re.findall(r"[a-z0-9]+", term), key=len, default="")


def validate_keywords(keywords: Iterable[str]) -> list[str]:
    """Return one message per invalid entry (empty list when all are fine)."""
    errors = []
    for index, entry in enumerate(keywords):
        try:
            alternatives, _ = _parse_entry(entry)
        except QuerySyntaxError as exc:
            errors.append(f"[{index}]: {exc}")
            continue
        del alternatives
    return errors
