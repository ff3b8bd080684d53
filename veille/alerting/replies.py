"""Does a message addressed to a client need an answer? (the reply inbox's gate)

A community manager answers questions, complaints and reproaches; thanks, praise, emoji-only comments and
tags of friends need none, and must not crowd the inbox. A small rule set on the folded text (lower case,
no accents), French first with SMS spelling, English too: a question mark or a question form, a request, a
complaint or a reproach makes it need an answer; nothing else does. Pure: no I/O.
bench/inbox_eval.py prints its precision and recall on tests/alerting/needs_answer.tsv.
"""

from __future__ import annotations

import re
from enum import StrEnum

from veille.core.matching import fold


class Need(StrEnum):
    """Why a message needs an answer (or `NONE`)."""

    NONE = "none"
    QUESTION = "question"
    REQUEST = "request"
    COMPLAINT = "complaint"


def _words(*patterns: str) -> re.Pattern[str]:
    """One pattern matching any of these phrases as whole words of the folded text."""
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(patterns) + r")(?![a-z0-9])")


# Questions written without a question mark: question words and inverted or SMS question forms.
_QUESTION = _words(
    r"est[ -]?ce qu\w*",
    r"esk",
    r"combien",
    r"cb",
    r"quand(?! meme)",
    r"kan",
    r"qd",
    r"comment (?:on|je|j|faire|ca)",
    r"koman",
    r"pourquoi",
    r"pk",
    r"pq",
    r"pkoi",
    r"a (?:quelle|kel) heure",
    r"quel(?:le)?s? sont",
    r"c'?est (?:quoi|ou|combien)",
    r"c koi",
    r"(?:vous|vs) (?:livrez|faites|avez|etes|ouvrez|fermez|prenez|acceptez|envoyez|recrutez|organisez|vendez)",
    r"(?:avez|pouvez|faites|livrez|acceptez|etes)-vous",
    r"y a[ -]t[ -]il",
    r"ya moyen",
    r"il y a moyen",
    r"(?:je|j) (?:peux|pourrais)",
    r"jpeux",
    r"on peut",
    r"c'?est possible",
    r"est[ -]il possible",
    r"(?:je voudrais|j'?aimerais|je souhaiterais) (?:savoir|un renseignement|des infos|connaitre)",
    r"renseignement",
    r"(?:une|petite) question",
    r"dispo (?:en|le|la|pour|demain|ce)",
    r"c ouvert",
    r"do you",
    r"are you",
    r"can (?:i|you|we)",
    r"could you",
    r"how (?:long|much|do|can)",
    r"when (?:do|will|is|are)",
    r"where (?:is|are|do|can)",
)

# Asking for something: a call back, an invoice, an answer, an exchange.
_REQUEST = _words(
    r"svp",
    r"stp",
    r"s'?il vous pla[iî]t",
    r"merci de (?:me|nous) (?:repondre|rappeler|recontacter|contacter|corriger|rembourser)",
    r"merci de corriger",
    r"(?:pouvez|pourriez)[ -]vous",
    r"vous pouvez (?:me|nous|repondre)",
    r"(?:me|nous) (?:rappeler|recontacter)",
    r"je demande",
    r"je (?:voudrais|veux|souhaite) (?:etre|un echange|un remboursement|annuler)",
    r"je relance",
    r"please",
    r"allo",
    r"y a quelqu'?un",
    r"personne ne (?:repond|decroche)",
)

# Complaints and reproaches: waiting, not received, refund, broken, disappointed, outraged.
_COMPLAINT = _words(
    r"toujours (?:pas|rien|aucune?)",
    r"tj?r?s (?:pas|rien)",
    r"(?:j'?|j )?attends? (?:toujours|tj?r?s|depuis)",
    r"attendons toujours",
    r"(?:ca fait|depuis) (?:\d+|une|un|deux|trois|quinze|plusieurs) (?:jours?|semaines?|mois|heures?|h)",
    r"(?:sans|pas de|aucune|aucun|jamais de) (?:reponse|retour|nouvelles?|rep)",
    r"(?:ne|n') ?(?:repondez|repond) (?:jamais|pas)",
    r"vous ne repondez",
    r"au moins (?:pu )?(?:repondre|prevenir|repondu)",
    r"auriez pu",
    r"vu mon message",
    r"avez lu mon message",
    r"rembours\w*",
    r"(?:jamais|pas|rien) recu",
    r"toujours rien",
    r"et rien",
    r"inadmissible",
    r"inacceptable",
    r"honteux",
    r"honte",
    r"scandale\w*",
    r"lamentable",
    r"arnaque",
    r"escroc\w*",
    r"decu\w*",
    r"mecontente?",
    r"(?:un|une|gros|petit) (?:souci|probleme)",
    r"probleme (?:de|avec|sur)",
    r"ne (?:marche|fonctionne) (?:pas|plus)",
    r"(?:marche|fonctionne) pas",
    r"plante",
    r"casse",
    r"dechire\w*",
    r"abime\w*",
    r"(?:arrivee?s?|etaient|etait|servie?s?) froide?s?",
    r"en retard",
    r"(?:debite|preleve|facture)e?s? (?:deux|2) fois",
    r"m'?avez (?:debite|oublie|facture)",
    r"(?:ete|suis) (?:prelevee?|debitee?)",
    r"erronee?",
    r"incomplete?",
    r"il manque",
    r"pas conforme",
    r"annulee? sans",
    r"merci pour rien",
    r"nul(?:le)?",
    r"pas (?:top|terrible)",
    r"a fuir",
    r"plus jamais",
    r"jamais je ne",
    r"(?:la|une) (?:\d+|deuxieme|troisieme|3eme|2eme|3e|2e) (?:fois|relance)",
    r"\d+ fois que je",
    r"still waiting",
    r"no (?:answer|reply|response)",
    r"never (?:arrived|received|came)",
    r"refund\w*",
    r"disappointed",
    r"worst",
    r"terrible",
    r"scam",
    r"broken",
)

# Phrases that look like a complaint or a question but close a conversation: "pas de souci", "aucun regret".
_HARMLESS = _words(
    r"pas de (?:souci|soucis|probleme|problemes)",
    r"aucun (?:souci|probleme|regret)",
    r"sans souci",
    r"pas decue?s?(?: du tout)?",
    r"no problem",
    r"rien a dire",
)

_LETTER = re.compile(r"[a-z]")
_MENTION = re.compile(r"@[\w.]+(?: [A-Z][\w-]+)?")


def needs_answer_reason(text: str, *, tags_friends: bool = True) -> Need:
    """Why this message needs an answer from the client, or `Need.NONE`. `tags_friends`: a leading @mention
    tags a friend, to whom a question is then put (comments under the client's post); False where a post
    opening with @handles addresses those accounts (Mastodon, Bluesky, X)."""
    stripped = _MENTION.sub(" ", text)
    folded = fold(stripped)
    if not _LETTER.search(folded):
        return Need.NONE  # emoji, punctuation, only tags of friends
    calm = _HARMLESS.sub(" ", folded)
    if _COMPLAINT.search(calm):
        return Need.COMPLAINT
    if "?" in calm or _QUESTION.search(calm):
        return Need.QUESTION if not (tags_friends and _tags_a_friend(text)) else Need.NONE
    if _REQUEST.search(calm):
        return Need.REQUEST
    return Need.NONE


def needs_answer(text: str) -> bool:
    """True when the client should answer this message (a question, a request, a complaint, a reproach)."""
    return needs_answer_reason(text) is not Need.NONE


def _tags_a_friend(text: str) -> bool:
    """ "@karine tu connais ?": the question is put to the friend tagged, not to the client."""
    return bool(re.match(r"\s*@[\w.]+", text))
