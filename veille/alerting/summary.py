"""What an incident is about, without any remote service. Pure.

The words and word pairs of the incident's posts that stand out against the client's usual posts (the
previous 30 days) are found by a log-odds ratio with its z-score (Haldane-smoothed, per post rather than per
word so that one long post does not dominate); words are stemmed (Snowball, French or English by the post's
stop words) so that "malade" and "malades" count together, and shown in the form the posts use most. Stop
words and the client's own name and keywords never stand out. The most engaged post and the posts that share
the most standing-out vocabulary with the others represent the incident.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from veille.alerting.risk import CrisisWords
from veille.core.incidents import Summary
from veille.core.matching import fold

if TYPE_CHECKING:
    import snowballstemmer

BACKGROUND_DAYS = 30
MAX_TERMS = 4  # words shown in the summary line
MAX_POSTS = 3  # representative posts
MIN_Z = 1.0  # a term must stand out at least this much (z-score of its log-odds ratio)

_NOISE = re.compile(r"https?://\S+|@\w+|\d\w*", re.UNICODE)
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*", re.UNICODE)
_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu)['’]", re.IGNORECASE)

# Function words that never say what an incident is about (whitespace-separated).
_FRENCH_STOP_WORDS = """
    a à afin ai aie aient aies ait alors as au aucun aucune aujourd auquel aussi autre autres aux auxquelles
    auxquels avaient avais avait avant avec avez aviez avions avoir avons ayant ayez ayons bon c ça car ce ceci
    cela celle celles celui cependant certain certaine certaines certains ces cet cette ceux chaque chez ci
    comme comment d dans de des depuis donc dont du elle elles en encore entre es est et étaient étais était
    étant été êtes étiez étions être eu eue eues eurent eus eux fait faire fais font fut hier ici il ils j je
    jamais la là le les leur leurs lui m ma mais me même mes moi mon n ne ni non nos notre nous on ont ou où
    par parce pas peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui quoi sa sans se sera
    ses si sien soi soir soit son sont sous suis sur t ta te tes toi ton tous tout toute toutes très trop tu
    un une vers voici voilà vos votre vous y déjà bien fois rien tant tel telle après pendant selon toujours
    vraiment moins beaucoup juste alors quelqu quelque quelques chose choses cest"""
_ENGLISH_STOP_WORDS = """
    a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself yourselves yesterday
    today tonight got get im ive dont didnt cant wont"""
_FRENCH_STOP = frozenset(_FRENCH_STOP_WORDS.split())
_ENGLISH_STOP = frozenset(_ENGLISH_STOP_WORDS.split())
_STOP = _FRENCH_STOP | _ENGLISH_STOP
MIN_LETTERS = 3


@lru_cache(maxsize=2)
def _stemmer(lang: str) -> snowballstemmer.stemmer:
    import snowballstemmer  # on the first summary: not a cost of every start (`veille run --once`, the CLI)

    return snowballstemmer.stemmer(lang)


def load_stemmers() -> None:
    """Build the stemmers now: importing snowballstemmer takes ~50 ms, which the daemon spends before its first
    tick's write transactions rather than in the first burst's summary, while it holds the write lock."""
    for lang in ("french", "english"):
        _stemmer(lang)


@lru_cache(maxsize=65536)
def _stem(word: str, lang: str) -> str:
    return str(_stemmer(lang).stemWord(word))


@dataclass(frozen=True, slots=True)
class Post:
    """One post of an incident, as the summary sees it."""

    hit_id: int
    text: str
    author: str | None = None
    source: str = ""
    engagement: int = 0


@dataclass(slots=True)
class _Terms:
    """The terms of one text: stems of its words and of its adjacent word pairs, each with its surface form."""

    keys: set[str] = field(default_factory=set)
    surface: dict[str, str] = field(default_factory=dict)


def _words(text: str) -> list[str]:
    return [_ELISION.sub("", w) for w in _WORD.findall(_NOISE.sub(" ", text.lower()))]


def own_words(names: Iterable[str]) -> frozenset[str]:
    """The folded words of the client's name and keywords ("Chez Gégé", "@chezgege" -> chez, gege, chezgege)."""
    return frozenset(w for name in names for w in re.findall(r"\w+", fold(name)) if w)


def terms(text: str, own: frozenset[str] = frozenset()) -> _Terms:
    """Unigram and bigram keys of a text (pairs only of words next to each other, none of them dropped)."""
    words = _words(text)
    french = sum(w in _FRENCH_STOP for w in words)
    english = sum(w in _ENGLISH_STOP for w in words)
    lang = "english" if english > french else "french"
    out = _Terms()
    previous: tuple[str, str] | None = None
    for word in words:
        folded = fold(word)
        if len(word) < MIN_LETTERS or word in _STOP or folded in _STOP or folded in own:
            previous = None
            continue
        key = _stem(folded, lang)
        out.keys.add(key)
        out.surface.setdefault(key, word)
        if previous is not None:
            pair = f"{previous[0]} {key}"
            out.keys.add(pair)
            out.surface.setdefault(pair, f"{previous[1]} {word}")
        previous = (key, word)
    return out


class Background:
    """How many of the client's usual posts contain each term (document frequency)."""

    def __init__(self, texts: Iterable[str], own: frozenset[str] = frozenset()) -> None:
        self.documents = 0
        self.counts: Counter[str] = Counter()
        for text in texts:
            self.documents += 1
            self.counts.update(terms(text, own).keys)


def _z(inside: int, posts: int, usual: int, documents: int) -> float:
    """z-score of the log-odds ratio of a term's share of the incident's posts against the usual posts."""
    a, b, c, d = inside + 0.5, posts - inside + 0.5, usual + 0.5, documents - usual + 0.5
    return (math.log(a / b) - math.log(c / d)) / math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def summarise(posts: Sequence[Post], background: Background, crisis: CrisisWords, own: frozenset[str]) -> Summary:
    """The summary of an incident's posts against the client's usual ones."""
    parsed = [terms(p.text, own) for p in posts]
    inside: Counter[str] = Counter()
    surfaces: dict[str, Counter[str]] = {}
    for post_terms in parsed:
        inside.update(post_terms.keys)
        for key, word in post_terms.surface.items():
            surfaces.setdefault(key, Counter())[word] += 1
    found = Counter(w for p in posts for w in dict.fromkeys(crisis.find(p.text)))
    rank = {stem: 1 for w in found for stem in _stems(w)}  # crisis words say the cause, severe ones first
    rank.update((stem, 0) for w in found if w in crisis.severe for stem in _stems(w))
    # A pair stands in for its words only when several posts use it; a word seen once is enough in a small
    # incident (a single post: every one of its words is new) but not in a large one.
    least = 1 if len(posts) < 4 else 2
    scored = []
    for key, count in inside.items():
        pair = " " in key
        if count < (2 if pair else least):
            continue
        z = _z(count, len(posts), background.counts.get(key, 0), background.documents)
        if z >= (0.0 if key in rank else MIN_Z):  # a crisis word needs only be more frequent than usual
            scored.append((rank.get(key, 2), -z, -count, not pair, -len(key), key))
    scored.sort()
    chosen: list[str] = []
    for *_, single, _, key in scored:
        pair = not single
        if len(chosen) == MAX_TERMS:
            break
        if pair:  # the pair replaces the words it is made of; a pair overlapping a chosen one adds nothing
            if any(set(key.split()) & set(c.split()) for c in chosen if " " in c):
                continue
            chosen = [c for c in chosen if c not in key.split()]
        elif any(key in c.split() for c in chosen):
            continue  # already said by a pair
        chosen.append(key)
    shown = tuple(surfaces[k].most_common(1)[0][0] for k in chosen)
    standout = set(chosen)
    return Summary(
        terms=shown,
        crisis_words=tuple(_crisis_surface(w, surfaces) for w, _ in found.most_common()),
        posts=len(posts),
        authors=len({p.author or f"?{p.hit_id}" for p in posts}),
        sources=len({p.source for p in posts}),
        top_hits=_representative(posts, parsed, inside, standout),
    )


def _crisis_surface(word: str, surfaces: dict[str, Counter[str]]) -> str:
    """A crisis word as the posts write it ("hygiène", not its folded "hygiene")."""
    for forms in surfaces.values():
        for form in forms:
            if fold(form) == word:
                return form
    return word


def _stems(word: str) -> set[str]:
    return {_stem(word, "french"), _stem(word, "english")}


def _representative(
    posts: Sequence[Post], parsed: Sequence[_Terms], inside: Counter[str], standout: set[str]
) -> tuple[int, ...]:
    """The most engaged post, then the most central ones (sharing the most terms with the other posts, the
    standing-out terms counted double); one post per distinct text."""

    def centrality(index: int) -> float:
        keys = parsed[index].keys
        return sum((inside[k] - 1) * (2 if k in standout else 1) for k in keys) / math.sqrt(len(keys) or 1)

    order = sorted(range(len(posts)), key=lambda i: (-posts[i].engagement, posts[i].hit_id))
    central = sorted(range(len(posts)), key=lambda i: (-centrality(i), posts[i].hit_id))
    chosen: list[int] = []
    texts: set[str] = set()
    for index in [*order[:1], *central]:
        text = " ".join(_words(posts[index].text))
        if text in texts:
            continue
        texts.add(text)
        chosen.append(posts[index].hit_id)
        if len(chosen) == MAX_POSTS:
            break
    return tuple(chosen)
