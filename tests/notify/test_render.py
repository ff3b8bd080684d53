"""An alert speaks the contact's language from title to footer: reasons made in English by the detection
core (and stored so in the outbox) are shown translated, on the console/Apprise text and on Telegram."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from veille.core.incidents import Cause, Incident, Kind, Status, Summary, Urgency, summary_line
from veille.notify.base import HitSummary, Notification
from veille.notify.digest import Awaiting, compose
from veille.notify.render import from_payload, incident_title, render_text, to_payload
from veille.notify.telegram.render import render_notification

REASONS = ("4 negative messages in 1 h, usually none", "risk 0.91", "severe: plainte")


def _alert(lang: str) -> Notification:
    return Notification(
        outbox_id=1,
        incident_id=7,
        tag="#INC-7",
        kind=Kind.ESCALATED,
        client_id="resto",
        client_name="Resto",
        contact="ops",
        urgency=Urgency.HIGH,
        silent=False,
        title=incident_title(Cause.BUZZ, Kind.ESCALATED, "Resto", "", lang),
        reasons=REASONS,
        hits=(HitSummary(1, "rss", "pizza froide", "https://example.org/a", "bob", 1200, "", "neg -0.80", None),),
        lang=lang,
    )


def test_console_text_in_each_language() -> None:
    french, english = render_text(_alert("fr")), render_text(_alert("en"))
    assert "Bad buzz possible : Resto — escalade [URGENT]" in french
    assert "Pourquoi : 4 messages négatifs en 1 h, d'habitude aucun; risque 0.91" in french
    assert "Prendre en charge : veille ack 7" in french
    for english_only in ("negative messages", "usually", "Why", "risk 0.91", "escalated", "Take it", "Project-Id"):
        assert english_only not in french
    assert "Possible bad buzz: Resto — escalated [URGENT]" in english
    assert "Why: 4 negative messages in 1 h, usually none; risk 0.91; severe: plainte" in english


def test_telegram_message_in_each_language() -> None:
    french = "".join(render_notification(_alert("fr")).parts)
    english = "".join(render_notification(_alert("en")).parts)
    assert "Escalade" in french and "urgence haute" in french and "1200 abonnés" in french
    assert "messages négatifs" in french and "grave : plainte" in french and ">Ouvrir</a>" in french
    assert "negative messages" not in french and "followers" not in french
    assert "Escalation" in english and "1200 followers" in english and "negative messages" in english


def test_digest_counts_read_as_words() -> None:
    _, french = compose([], {"resto": (1, 1)}, {"resto": "Resto"}, "fr")
    _, english = compose([], {"resto": (2, 1)}, {"resto": "Resto"}, "en")
    assert french == ("Resto : 1 publication, dont 1 négative",)
    assert english == ("Resto: 2 posts, 1 negative",)


SUMMARY = Summary(("intoxication", "malade", "urgences"), ("intoxication", "malade", "boycott"), 7, 5, 3, (1,))


def test_the_summary_says_what_the_posts_are_about_in_each_language() -> None:
    alert = replace(_alert("fr"), summary=SUMMARY)
    expected = "intoxication · malade · urgences : 7 posts, 5 auteurs, 3 sources (aussi : boycott)"
    assert summary_line(SUMMARY, "fr") == expected
    assert f"En bref : {expected}" in render_text(alert)
    assert expected in "".join(render_notification(alert).parts)
    english = render_text(replace(alert, lang="en"))
    assert "In short: intoxication · malade · urgences: 7 posts, 5 authors, 3 sources (also: boycott)" in english
    one = Summary(("cafard",), ("cafard",), 1, 1, 1)
    assert summary_line(one, "fr") == "cafard : 1 post, 1 auteur, 1 source"
    stored = from_payload(to_payload(alert), outbox_id=1, possible_duplicate=False)
    assert stored.summary == SUMMARY  # the outbox keeps it for a send after a restart
    assert from_payload({**to_payload(alert), "summary": None}, outbox_id=1, possible_duplicate=False).summary is None


def test_the_digest_shows_each_incidents_summary() -> None:
    at = datetime(2026, 11, 20, 2, 13, tzinfo=UTC)
    incident = Incident(
        1, "resto:buzz", "resto", Cause.BUZZ, "", Status.OPEN, Urgency.HIGH, True, at, at, at, summary=SUMMARY
    )
    _, lines = compose([incident], {"resto": (9, 7)}, {"resto": "Resto"}, "fr")
    assert lines[-1] == "    intoxication · malade · urgences : 7 posts, 5 auteurs, 3 sources (aussi : boycott)"


def test_the_digest_lists_what_awaits_an_answer_with_an_excerpt() -> None:
    """What waited overnight, the longest waiting first, with the customer's words (cut), in both languages."""
    now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)  # 07:30 in Paris
    long = "Bonjour, je vois que vous avez lu mon message " * 5
    awaiting = [
        Awaiting(7, "resto", "comment", "Marc", "Vous êtes ouverts dimanche ?", now - timedelta(hours=2)),
        Awaiting(3, "resto", "message", "Léa Martin", long, now - timedelta(hours=10, minutes=45)),
    ]
    paris = ZoneInfo("Europe/Paris")
    _, french = compose([], {}, {"resto": "Resto"}, "fr", awaiting=awaiting, now=now, tz=paris)
    assert french[0] == "Resto : 0 publication, dont 0 négative"
    assert french[1] == "  2 attendent une réponse :"
    assert french[2].startswith("    #3 message de Léa Martin, depuis le 20/11 20:45 (10h45m) : « Bonjour, je vois")
    assert french[2].endswith("… »") and len(french[2]) < 180  # the excerpt is cut
    assert french[3] == "    #7 commentaire de Marc, depuis le 21/11 05:30 (2h) : « Vous êtes ouverts dimanche ? »"
    _, english = compose([], {}, {"resto": "Resto"}, "en", awaiting=awaiting[:1], now=now, tz=paris)
    assert english[1:] == (
        "  1 awaits an answer:",
        "    #7 comment from Marc, since 21/11 05:30 (2h): “Vous êtes ouverts dimanche ?”",
    )
    many = [Awaiting(n, "resto", "post", "A", "?", now - timedelta(minutes=n)) for n in range(1, 12)]
    _, capped = compose([], {}, {"resto": "Resto"}, "fr", awaiting=many, now=now, tz=paris)
    assert capped[-1] == "    … et 3 autres : veille inbox" and len(capped) == 2 + 8 + 1


def test_an_unscored_post_reads_unscored_in_the_readers_language() -> None:
    """Issue 16: a Spanish post has no sentiment; the alert says so in French ("non noté (es)")."""
    spanish = HitSummary(2, "rss", "una estafa", None, "ana", None, "", "unscored (es)", None)
    french = replace(_alert("fr"), hits=(spanish,))
    english = replace(_alert("en"), hits=(spanish,))
    assert "non noté (es)" in render_text(french) and "non noté (es)" in "".join(render_notification(french).parts)
    assert "unscored (es)" in render_text(english) and "unscored (es)" in "".join(render_notification(english).parts)
