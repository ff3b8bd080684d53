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

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

_TOKEN = re.compile(r'-?"[^"]*"|\S+')


class _FoldTable(dict[int, str]):
    """str.translate table filled on first sight of each character: the scan itself runs in C.

    A character folds to its compatibility decomposition without combining marks, lower-cased, with the
    ligatures œ, æ and ß spelt out (also when a decomposition yields them: ǽ -> ae)."""

    _SPECIAL: ClassVar[dict[int, str]] = {ord("œ"): "oe", ord("æ"): "ae", ord("ß"): "ss"}

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).lower().translate(self._SPECIAL)
        self[code] = folded
        return folded


_FOLD = _FoldTable()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# The combining diacritical marks block, except U+034F (the grapheme joiner, combining class 0): what
# NFKD splits off Latin, Greek and Cyrillic letters.
_MARKS = re.compile(r"[\u0300-\u034e\u0350-\u036f]+")
_NEITHER_ASCII_NOR_MARK = re.compile(r"[^\x00-\x7f\u0300-\u034e\u0350-\u036f]")
# What str.split() splits ASCII text on, besides the space (one range: the regex engine scans it fastest).
_ASCII_SPACE = re.compile(r"[\t-\r\x1c-\x1f]")


def _fold_run(match: re.Match[str]) -> str:
    return match.group().translate(_FOLD)


def fold(text: str) -> str:
    """Lower-case, strip accents, fold ligatures (œ -> oe), collapse white space (a run of it becomes one space).

    The result is the fold table's, character by character, but computed in C for the common case: the
    whole text is decomposed at once (NFKD) and the usual marks removed by one regex with no callback;
    only what is still not ASCII then goes through the table (a Python call per run: folding French
    char by char, or accent by accent, cost more than the rest of its matching)."""
    if text.isascii():
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        if _NEITHER_ASCII_NOR_MARK.search(decomposed) is None:  # accented letters only (most French text)
            folded = decomposed.encode("ascii", "ignore").decode("ascii").lower()  # drops the marks, in C
        else:
            decomposed = _MARKS.sub("", decomposed)
            folded = (decomposed if decomposed.isascii() else _NON_ASCII.sub(_fold_run, decomposed)).lower()
    return collapse_spaces(folded)


def collapse_spaces(text: str) -> str:
    """Every run of white space as one space, at the ends too (str.split runs in C: a regex over a whole
    article took longer than folding it). ASCII text spaced by single spaces and line breaks, nearly all of it,
    only has its line breaks turned into spaces: split and join built a string per word."""
    if text.isascii():
        spaced = text.replace("\n", " ")
        if "  " not in spaced and _ASCII_SPACE.search(spaced) is None:  # each run is one character: done
            return spaced
    core = " ".join(text.split())
    if not core:
        return " " if text else ""
    if text[0].isspace():
        core = " " + core
    if text[-1].isspace():
        core += " "
    return core


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
    """Spans of `text` itself where `pattern` (written for folded text) matches, case and accents ignored.

    Positions are those of the fold table's output, white space kept as it is; only the non-ASCII runs
    holding a character whose fold is not one character (œ -> oe, a lone mark -> nothing) need a map back,
    found by bisection."""
    if text.isascii():
        return [m.span() for m in pattern.finditer(text.lower())]
    parts: list[str] = []
    changed: list[tuple[int, int, str]] = []  # (folded start, original start, run) of runs changing length
    last = size = 0
    for run in _NON_ASCII.finditer(text):
        start, end = run.span()
        parts.append(text[last:start].lower())
        size += start - last
        piece = run.group().translate(_FOLD)
        parts.append(piece)
        if len(piece) != end - start or any(len(_FOLD[ord(char)]) != 1 for char in run.group()):
            changed.append((size, start, run.group()))
        size += len(piece)
        last = end
    parts.append(text[last:].lower())
    folded = "".join(parts)
    if not changed:  # one folded character per character: positions are the same
        return [m.span() for m in pattern.finditer(folded)]
    starts = [folded_start for folded_start, _, _ in changed]

    def origin(position: int) -> int:
        index = bisect.bisect_right(starts, position) - 1
        if index < 0:
            return position
        folded_start, start, run = changed[index]
        offset = position - folded_start
        for index_in_run, char in enumerate(run):
            offset -= len(_FOLD[ord(char)])
            if offset < 0:
                return start + index_in_run
        return start + len(run) + offset  # past the run: shifted like the unchanged text after it

    return [(origin(m.start()), origin(m.end() - 1) + 1) for m in pattern.finditer(folded) if m.end() > m.start()]


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
