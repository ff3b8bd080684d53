"""Word lists the rule layer reads: polarity lexicons, SMS spellings, emojis, idioms, grammar words.

The tables live as small text files in `veille/scoring/lexicons/` (see README.txt there for their
provenance and licences). They are read once per process by `load_resources()`, never at import.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# Grammar words are part of the rules rather than data: they are few and change with the code.
NEGATORS_FR = frozenset(
    {"pas", "jamais", "rien", "aucun", "aucune", "sans", "ni", "personne", "nullement", "guère", "non", "ne", "n'"}
)
NEGATORS_EN = frozenset(
    {"not", "no", "never", "without", "nor", "none", "nobody", "nothing", "neither", "cannot", "hardly", "barely"}
)
BOOSTERS = {
    # French
    "très": 0.3,
    "trop": 0.35,
    "vraiment": 0.3,
    "tellement": 0.35,
    "grave": 0.3,
    "super": 0.3,
    "hyper": 0.3,
    "carrément": 0.3,
    "vachement": 0.3,
    "totalement": 0.3,
    "complètement": 0.3,
    "absolument": 0.3,
    "extrêmement": 0.4,
    "énormément": 0.35,
    "franchement": 0.2,
    "si": 0.15,
    "aussi": 0.1,
    "archi": 0.3,
    "méga": 0.3,
    "ultra": 0.3,
    "tout": 0.1,
    "beaucoup": 0.25,
    "particulièrement": 0.25,
    "un peu": -0.3,
    "peu": -0.4,
    "assez": -0.15,
    "plutôt": -0.2,
    "moyennement": -0.4,
    "presque": -0.2,
    # English
    "very": 0.3,
    "really": 0.3,
    "so": 0.3,
    "too": 0.2,
    "extremely": 0.4,
    "totally": 0.3,
    "absolutely": 0.3,
    "completely": 0.3,
    "incredibly": 0.35,
    "most": 0.2,
    "such": 0.15,
    "truly": 0.3,
    "kinda": -0.3,
    "slightly": -0.4,
    "somewhat": -0.3,
    "barely": -0.4,
    "little": -0.3,
    "fairly": -0.2,
}
# A contrast word ends a clause; what follows it weighs more (VADER does the same for "but").
CONTRAST = frozenset(
    {
        "mais",
        "pourtant",
        "cependant",
        "toutefois",
        "néanmoins",
        "sauf",
        "but",
        "however",
        "yet",
        "though",
        "although",
        "nevertheless",
    }
)
IRONY_MARKERS = frozenset({"#ironie", "#sarcasme", "#irony", "#sarcasm", "#not", "🙃"})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS_FR = _words("""
    le la les un une des du de et est à au aux en dans pour pas que qui sur avec ce cette ces son sa ses
    mais ou où je tu il elle nous vous ils elles on ne plus très sont été être avoir ont fait faire
    comme tout tous toute par sans aussi bien moi toi lui leur mon ma mes ton ta tes notre votre y
    c'est j'ai d'un d'une l' d' c' j' qu' n' m' s' t' ça cela quand encore déjà ici là oui non merci
    aujourd'hui demain hier chez faut vais va avait était sera peut doit alors donc car rien trop
    quoi pourquoi comment avant après depuis contre entre vers selon sous leurs nos vos cet ceux
    celle celui dont même autres autre fois jour nouveau nouvelle bonjour salut quel quelle quels quelles
    jsui chui yavè g gétai kan tro dla oué bcp pk koi mdr ptdr jsp tkt
""")
STOPWORDS_EN = _words("""
    the a an and is are was were be been to of in on at for with that this it its i you he she we they
    my your his her our their not no but or if so do does did have has had will would can could just
    what when who how all about from by up out me him them there here than then too very don't it's
    i'm can't won't didn't doesn't isn't lol omg
    get got going go see watch day today tomorrow tonight night new one first last next best good great
    love like want need know think make time people year years after before over still back only
    really every via vs should must may might being into why which where while because these those
    us am let let's i'll you're we're they're that's what's im dont cant
""")


@dataclass(frozen=True, slots=True)
class Resources:
    """Every table the rule layer needs, read once per process."""

    sms: dict[str, str]  # SMS spelling -> standard words ("jsui" -> "je suis")
    lexicons: dict[str, dict[str, float]]  # lang -> word -> valence (-4..+4)
    folded: dict[str, dict[str, float]]  # lang -> accent-free word -> valence (for "degoute", "decu")
    emoji: dict[str, float]  # emoji (no variation selector) -> valence
    emoticons: dict[str, float]  # ":-)" -> valence, matched case-sensitively
    idioms: dict[str, list[tuple[tuple[str, ...], float]]]  # first word -> [(words, valence)] longest first


def fold(word: str) -> str:
    """Remove accents: customers often type "decu" for "déçu"."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _read(name: str) -> list[str]:
    data = resources.files("veille.scoring").joinpath("lexicons", name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return [line for line in data.decode("utf-8").splitlines() if line and not line.startswith("#")]


def _pairs(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in _read(name):
        key, _, value = line.partition("\t")
        rows.append((key.strip(), value.strip()))
    return rows


def _vader_fr() -> dict[str, float]:
    table: dict[str, float] = {}
    for line in _read("vader_fr_lexicon.txt.gz"):
        word, sep, value = line.rpartition("->")
        if sep:
            table[word] = float(value)
    return table


def _vader_en() -> dict[str, float]:
    table: dict[str, float] = {}
    for line in _read("vader_en_lexicon.txt.gz"):
        parts = line.split("\t")
        if len(parts) >= 2:
            table[parts[0]] = float(parts[1])
    return table


def _apply_overrides(table: dict[str, float], name: str) -> None:
    for word, value in _pairs(name):
        if value == "-":
            table.pop(word, None)
        else:
            table[word] = float(value)


def _folded(table: dict[str, float]) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for word, value in table.items():
        grouped.setdefault(fold(word), []).append(value)
    return {word: sum(values) / len(values) for word, values in grouped.items()}


@lru_cache(maxsize=1)
def load_resources() -> Resources:
    """Read the packaged tables (about 20 ms). Cached: every scorer in the process shares them."""
    fr = _vader_fr()
    _apply_overrides(fr, "fr_extra.tsv")
    en = _vader_en()
    _apply_overrides(en, "en_extra.tsv")
    emoji: dict[str, float] = {}
    emoticons: dict[str, float] = {}
    for key, value in _pairs("emoji.tsv"):
        target = emoticons if key.isascii() else emoji
        target[key] = float(value)
    idioms: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for phrase, value in _pairs("idioms.tsv"):
        words = tuple(phrase.split())
        idioms.setdefault(words[0], []).append((words, float(value)))
    for entries in idioms.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    # Multi-word lexicon entries are never reached by a word-at-a-time lookup; idioms cover them.
    lexicons = {
        "fr": {k: v for k, v in fr.items() if " " not in k},
        "en": {k: v for k, v in en.items() if " " not in k},
    }
    return Resources(
        sms=dict(_pairs("sms_fr.tsv")),
        lexicons=lexicons,
        folded={lang: _folded(table) for lang, table in lexicons.items()},
        emoji=emoji,
        emoticons=emoticons,
        idioms=idioms,
    )
