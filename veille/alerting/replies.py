"""Does a message addressed to a client need an answer? (the reply inbox's gate)

A community manager answers questions, complaints and reproaches; thanks, praise, emoji-only comments and
tags of friends need none, and must not crowd the inbox. A small rule set on the folded text (lower case,
no accents), French first with SMS spelling, English too: a question mark or a question form, a request, a
complaint or a reproach makes it need an answer; nothing else does. Pure: no I/O.

The rules are about the language, not about a list of sentences: SMS spellings are first spelt out
("vs livré ?" -> "vous livre ?", "c koi" -> "c'est quoi"), then each sentence is read for the French question
forms (inversion "avez-vous", "puis-je", "y a-t-il"; "est-ce que"; interrogative words; a sentence opening on
"vous <verbe>", "quel", "y a"; a question mark), requests ("pouvez-vous", "j'aimerais <infinitif>", an
imperative "dites-moi", "svp"), and complaints and reproaches (waiting, nothing received, "personne ne",
"zéro réponse", a refund, a wrong or broken article, an expectation not met "alors que c'est écrit", the
sarcastic "bravo le service client"). An exclamation closes a sentence as praise: "quelle équipe !".
bench/inbox_eval.py prints precision and recall on tests/alerting/needs_answer.tsv (tuned) and the held-out
lists needs_answer_heldout.tsv and needs_answer_heldout2.tsv (never tuned on).
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
    r"(?:vous|vs) (?:livrez|ouvrez|fermez|prenez|acceptez|envoyez|recrutez|organisez|vendez)",
    r"(?:avez|pouvez|faites|livrez|acceptez|etes)-vous",
    r"y a[ -]t[ -]il",
    r"ya moyen",
    r"il y a moyen",
    r"(?:je|j) (?:peux|pourrais)(?! (?:pas|plus|dire|vous dire|le dire))",
    r"jpeux",
    r"on peut(?! dire)",
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

# SMS and spoken spellings, spelt out before the rules read the text (folded: lower case, no accents).
_SMS = {
    "vs": "vous",
    "ns": "nous",
    "ya": "y a",
    "y'a": "y a",
    "koi": "quoi",
    "kwa": "quoi",
    "kel": "quel",
    "kelle": "quelle",
    "kels": "quels",
    "kan": "quand",
    "qd": "quand",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pkoi": "pourquoi",
    "pourkoi": "pourquoi",
    "cb": "combien",
    "koman": "comment",
    "cmt": "comment",
    "esk": "est-ce que",
    "eske": "est-ce que",
    "ki": "qui",
    "ke": "que",
    "jai": "j'ai",
    "jsuis": "je suis",
    "chui": "je suis",
    "jsui": "je suis",
    "tjrs": "toujours",
    "tjr": "toujours",
    "tjs": "toujours",
    "toujour": "toujours",
    "rep": "reponse",
    "msg": "message",
    "msgs": "messages",
    "pr": "pour",
    "ds": "dans",
    "qqn": "quelqu'un",
    "qlq": "quelque",
    "bjr": "bonjour",
    "bsr": "bonsoir",
    "slt": "salut",
    "dispo": "disponible",
    "dispos": "disponibles",
    "rdv": "rendez-vous",
    "tt": "tout",
    "mm": "meme",
    "mtn": "maintenant",
    "auj": "aujourd'hui",
    "ajd": "aujourd'hui",
    "c": "c'est",
    "cest": "c'est",
    "svp": "s'il vous plait",
    "stp": "s'il te plait",
    "jpeux": "je peux",
    "jpe": "je peux",
    "jveux": "je veux",
    "jvoudrais": "je voudrais",
    "tkt": "t'inquiete",
}
_SMS_WORD = re.compile(r"(?<![\w'])(?:" + "|".join(sorted(map(re.escape, _SMS), key=len, reverse=True)) + r")(?![\w'])")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*")

# A sentence that opens on one of these asks something, unless it ends on "!" ("quelle équipe !").
_OPENS_A_QUESTION = re.compile(
    r"^\s*(?:(?:bonjour|bonsoir|salut|hello|coucou|re|hi)\b[ ,]*)?(?:"
    r"quel(?:le)?s?\b(?! (?:belle|beau|bel|bonne|bon|super|magnifique|superbe|jolie?|chouette|grande?|incroyable"
    r"|talent|bonheur|plaisir|regal|merveille|chance|joie|dommage|honte|horreur|galere|ambiance|spectacle|delice"
    r"|beaute|classe|reussite|accueil|equipe|travail|boulot|idee|surprise|journee|soiree|moment|vue|histoire)\b)"
    r"|lequel|laquelle|lesquel(?:le)?s"
    r"|y a (?:t il |t'il )?(?:des|du|de la|de l'|encore|un|une|moyen|possibilite|quelqu'un|qqch)\b"
    r"|il y a (?:encore|moyen|possibilite|quelqu'un)\b|reste t il\b"
    r"|(?:vous|tu) (?:avez|as|auriez|aurais) (?:des|du|de la|de l'|encore|un|une|toujours|quelque)\b"
    r"|(?:vous|tu) (?:etes|es|serez|seriez|serais) (?:ouverte?s?|fermee?s?|disponibles?|la|ou|combien|sur place)\b"
    r"|(?:vous )?(?:pouvez|pourriez|savez|sauriez|voudriez|comptez|prevoyez|acceptez|prenez|livrez|vendez"
    r"|proposez|ouvrez|fermez|expediez|envoyez|recrutez|organisez|reprenez|echangez|remboursez|allez|ferez"
    r"|fournissez|servez|gardez|reservez|travaillez|recevez|installez|reparez"
    r"|faites(?! (?:des merveilles|rever|plaisir|du bon|du beau|un (?:travail|super|boulot)|envie))"
    r")\b"
    r"|on (?:peut|pourrait)\b(?! dire)|je (?:peux|pourrais|dois)\b(?! (?:pas|plus|dire|vous dire|le dire))"
    r"|(?:c'est|est) (?:ouverte?|fermee?|possible|disponible|complet)\b"
    r"|possibilite\b"
    r")"
)

# Question forms anywhere in a sentence: inversions, interrogative words in their question uses.
_QUESTION_FORMS = _words(
    r"\w+-t-(?:il|elle|on)",
    r"(?:est|sont|puis|dois|peut|faut|serait|faudrait|reste|existe|vaut|suis|ai|aurai)-(?:il|elle|ils|elles|on|je)",
    r"(?:avez|pouvez|pourriez|faites|livrez|acceptez|etes|savez|auriez|seriez|sauriez|prenez|proposez|vendez"
    r"|comptez|connaissez|ouvrez|fermez|envoyez|expediez|organisez|recrutez|reprenez|allez|serez|ferez|fournissez"
    r"|servez|gardez|echangez|remboursez|prevoyez|travaillez|recevez|voulez|voudriez|conseillez)-vous",
    r"(?:c'est|est|sont|faites|fait|font|dit) quoi",
    r"quoi comme",
    r"(?:a|de|pour|avec|chez) qui",
    r"qui (?:peut|pourrait|s'occupe|gere|dois|faut|contacter|appeler)",
    r"(?:savoir|me dire|nous dire|m'indiquer|nous indiquer|me confirmer|nous confirmer)"
    r" (?:si|quand|combien|comment|ou|quel\w*|pourquoi|a quelle)",
    r"(?:c'est|est|etes|sont|se trouve|se situe|trouver) ou",
    r"ou (?:est|sont|se trouve|se situe|trouver|acheter|commander|peut on|puis je|je peux)",
    r"(?:possible|moyen|possibilite) (?:de|d'|que)",
    r"jusqu'?a quand",
    r"a partir de quand",
    r"comment (?:ca|on|je|j|faire|fait|proceder|marche|se passe|vous|s'inscrire|reserver|commander)",
    r"(?:toujours|encore|reste|restent) (?:disponibles?|en stock|possible)",
    r"en stock",
)

# Requests: an imperative to the client with "moi"/"nous", a wish followed by what to do, asking for help.
_REQUEST_FORMS = _words(
    r"\w+ez-(?:moi|nous)",
    r"(?:j'?aimerais|je voudrais|je souhaiterais|je souhaite|je voulais|je veux|on voudrait|on aimerait|nous "
    r"voudrions|nous souhaitons|nous aimerions) (?!remercier|feliciter|dire merci|vous remercier|vous feliciter"
    r"|saluer|souligner)(?:\w+(?:er|ir|re|oir)\b|un |une |des |du |le |la |les |savoir|reserver|commander)",
    r"merci de (?!votre|vos|ton|tes|la |le |les |l'|m'avoir|nous avoir|ce |cette |rien)\w+",
    r"(?:besoin|demande) (?:d'|de |d )(?:aide|un|une|des|informations?|renseignements?|precisions?|devis|conseil)",
    r"devis",
    r"je (?:cherche|recherche)",
    r"(?:numero|n°|no) de (?:commande|suivi|dossier)",
    r"(?:commande|dossier|facture) (?:n°|no|numero|#)",
    r"(?:en|par) (?:mp|dm|message prive)",
    r"(?:envoyez|ecrivez|repondez)(?:-moi)? en (?:mp|dm|prive)",
)

# Complaints by their form: an expectation not met, nobody answering, nothing got, a wrong or damaged
# article, waiting, being charged, sarcasm.
_COMPLAINT_FORMS = _words(
    r"personne (?:ne|n')",
    r"(?:zero|0|aucune?|jamais de|pas une?) (?:reponses?|retours?|nouvelles?|excuses?|rappel|appel|suivi|geste)",
    r"(?:n'?ai|n'?avons|ai|avons|j'ai|on a) (?:jamais|toujours pas|pas|rien) (?:eu|recu|vu|obtenu|eu de)",
    r"(?:jamais|toujours pas|pas) (?:eu|obtenu) (?:de|d'|ma|mon|mes|le|la|les|aucun)",
    r"(?:la|le|les|une|un|des) mauvaise?s? (?:taille|couleur|commande|article|produit|reference|adresse|piece|modele"
    r"|pointure|plat|livraison|personne|info|information|date|heure|facture)",
    r"(?:pas|plus|toujours pas) (?:celui|celle|ce|ceux|celles) (?:que|qu'|commande)",
    r"(?:pas|plus) (?:ce que|ce qu') (?:j'?ai|nous avons|on a|j ai) commande",
    r"alors (?:que|qu') (?:c'est|c'etait|il est|elle est|vous|votre|le site|la page|c est|j'?ai|on)",
    r"comme (?:promis|convenu|prevu|annonce|indique)(?=.*\b(?:ne|n'|pas|jamais|toujours|personne|rien)\b)",
    r"(?:ne|n'|pas|jamais|personne|rien)\b.*comme (?:promis|convenu|prevu|annonce|indique)",
    r"(?:etait|c'etait|trouve porte|porte) (?:fermee?|close)",
    r"attente (?:interminable|de \d+|de plus|trop|beaucoup)",
    r"\d+ ?(?:min|minutes|h|heures?|jours?|semaines?) d'attente",
    r"(?:trop|tres|bien trop|beaucoup trop) (?:long|longue|lent|lente|cher|chere|sale|bruyant|froid)",
    r"raccroche\w*",
    r"reclamation\w*",
    r"plainte",
    r"litige",
    r"erreur (?:de|dans|sur|sur la|sur ma|sur mon)",
    r"invalide",
    r"refusee?s?",
    r"bloquee?s?",
    r"impossible (?:de|d')",
    r"(?:bug|beug|bugue|buggue)\w*",
    r"fui(?:t|te)?",
    r"coule",
    r"tache(?:e|s)?",
    r"raye(?:e|s)?",
    r"cabosse\w*",
    r"ecrase\w*",
    r"moisi\w*",
    r"perime\w*",
    r"pourri\w*",
    r"defectueu\w+",
    r"en panne",
    r"(?:on|vous|ils|elle|il) (?:m'?a|m'?avez|nous a|nous avez|m'?ont) (?:facture|debite|preleve|compte|fait payer"
    r"|oublie|raccroche|menti|mal|mis dehors|refuse|ignore|ignoree|envoye (?:le|la|les) mauvais)",
    r"(?:paye|payee|facture|debite) (?:deux|2|trois|3) fois",
    r"en double",
    r"(?:j'?ai|on a|nous avons) paye\b.*\b(?:et|mais) (?:recu|eu|toujours|rien|pas|jamais|attendu)",
    r"bravo (?:le|la|les|au|aux) ",
    r"(?:vraiment|tres|super|franchement) (?:decu|decue|decevant|mecontent|mecontente|en colere|enerve|enervee)",
    r"jamais (?:vu|connu) (?:ca|un|une|pareil)",
    r"(?:ou|quand) (?:est|en est) (?:ma|mon|mes|notre|nos) ",
    r"rude",
    r"apolog\w+",
    r"(?:charged|billed) (?:twice|double|two times)",
    r"overcharg\w+",
    r"unacceptable",
    r"awful",
    r"horrible",
    r"disgusting",
    r"never again",
    r"wrong (?:order|size|item|colou?r|address|product)",
    r"(?:is|was|are|were|still) missing",
    r"(?:arrived|came|was|is) (?:late|damaged|broken|cold)",
    r"not (?:happy|satisfied|acceptable|working|received)",
    r"complain\w*",
    r"waste of",
    r"(?:i|we) expect (?:a|an|my|our)",
)

_LETTER = re.compile(r"[a-z]")
_MENTION = re.compile(r"@[\w.]+(?: [A-Z][\w-]+)?")


def spell_out(folded: str) -> str:
    """SMS and spoken spellings of folded text spelt out ("vs livre ?" -> "vous livre ?")."""
    return _SMS_WORD.sub(lambda m: _SMS[m.group(0)], folded.replace("’", "'"))


def needs_answer_reason(text: str, *, tags_friends: bool = True) -> Need:
    """Why this message needs an answer from the client, or `Need.NONE`. `tags_friends`: a leading @mention
    tags a friend, to whom a question is then put (comments under the client's post); False where a post
    opening with @handles addresses those accounts (Mastodon, Bluesky, X)."""
    stripped = _MENTION.sub(" ", text)
    folded = fold(stripped)
    if not _LETTER.search(folded):
        return Need.NONE  # emoji, punctuation, only tags of friends
    calm = spell_out(_HARMLESS.sub(" ", folded))
    if _COMPLAINT.search(calm) or _COMPLAINT_FORMS.search(calm):
        return Need.COMPLAINT
    if "?" in calm or _QUESTION.search(calm) or _QUESTION_FORMS.search(calm) or _opens_a_question(calm):
        return Need.QUESTION if not (tags_friends and _tags_a_friend(text)) else Need.NONE
    if _REQUEST.search(calm) or _REQUEST_FORMS.search(calm):
        return Need.REQUEST
    return Need.NONE


def _opens_a_question(text: str) -> bool:
    """A sentence opening as French questions do without "?" (SMS, spoken style), not exclaimed."""
    return any(
        not sentence.rstrip().endswith("!") and _OPENS_A_QUESTION.match(sentence)
        for sentence in _SENTENCE.findall(text)
    )


def needs_answer(text: str) -> bool:
    """True when the client should answer this message (a question, a request, a complaint, a reproach)."""
    return needs_answer_reason(text) is not Need.NONE


def _tags_a_friend(text: str) -> bool:
    """ "@karine tu connais ?": the question is put to the friend tagged, not to the client."""
    return bool(re.match(r"\s*@[\w.]+", text))
