"""`veille replay` and the bench timelines, with a stand-in scorer (tests only; shipped code uses load_scorer)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.alerting import CONFIG
from tests.support.paths import REPO_ROOT
from veille.alerting.risk import fold
from veille.config import parse_config
from veille.core.models import SentimentLabel, SentimentResult
from veille.runtime.replay import ReplayError, parse_lines, read_timeline, replay

BENCH = REPO_ROOT / "bench" / "scenarios"
NEGATIVE = (
    "intoxication",
    "honte",
    "malade",
    "scandale",
    "boycott",
    "plainte",
    "dangereux",
    "lent",
    "cher",
    "tiede",
    "inadmissible",
    "inexistant",
    "rembours",
    "arnaque",
    "deconseille",
    "respect",
    "jamais",
    "rien",
    "attends",
    "douteuse",
    "cafard",
    "degoutant",
    "fuyez",
)
FIRST_AUTHORS = ("foodie_lyon", "marie_l", "le_progres", "el_viajero")  # the post each waking scenario is about
POSITIVE = ("super", "merci", "meilleur", "parfait", "top", "recommande", "bon", "gagnez", "offre")


class StandInScorer:
    """A keyword scorer: enough to drive detection in tests, never used by shipped code."""

    name = "stand-in"

    def score_batch(self, texts: Sequence[str]) -> list[SentimentResult]:
        out = []
        for text in texts:
            folded = fold(text)
            neg = sum(w in folded for w in NEGATIVE)
            pos = sum(w in folded for w in POSITIVE)
            if neg > pos:
                out.append(SentimentResult(SentimentLabel.NEG, -min(0.95, 0.5 + 0.15 * neg), "fr"))
            elif pos > neg:
                out.append(SentimentResult(SentimentLabel.POS, min(0.95, 0.5 + 0.15 * pos), "fr"))
            else:
                out.append(SentimentResult(SentimentLabel.NEU, 0.0, "fr"))
        return out


def config():  # type: ignore[no-untyped-def]
    return parse_config(CONFIG.format(channel="console", extra='no_data_after = "24h"'), environ={})


def test_parse_lines_reports_the_bad_line() -> None:
    good = '{"ts": "2026-11-20T02:13:00+01:00", "client": "resto", "text": "x", "url": "u"}'
    assert parse_lines([good])[0].ts.isoformat() == "2026-11-20T01:13:00+00:00"
    for bad, message in [
        ("{", "not JSON"),
        ('{"client": "resto", "text": "x"}', "ts"),
        ('{"ts": "2026-11-20T02:13:00", "client": "resto", "text": "x"}', "offset"),
        ('{"ts": "2026-11-20T02:13:00+01:00", "client": "resto"}', "text"),
        ('{"ts": "2026-11-20T02:13:00+01:00", "client": "resto", "text": "x", "likes": -1}', "likes"),
    ]:
        with pytest.raises(ReplayError, match=message):
            parse_lines([good, bad], name="t.jsonl")


def test_replay_of_a_night_bad_buzz_wakes_then_escalates(tmp_path: Path) -> None:
    lines = parse_lines(
        [
            '{"ts": "2026-11-20T02:13:00+01:00", "client": "resto", "author": "a", "author_followers": 1200, '
            '"text": "Intoxication chez Gégé, une honte", "url": "u1", "likes": 3, "reposts": 1, "replies": 0}',
            '{"ts": "2026-11-20T02:20:00+01:00", "client": "resto", "url": "u1", "likes": 30, "reposts": 40}',
        ]
    )
    results = replay(config(), lines, StandInScorer(), workdir=tmp_path)
    first, woke = results[0], next(r for r in results if r.wakes)
    # One furious post from a mid-size account: held for the digest at night...
    assert (first.contact, first.kind, first.urgency, first.mode) == ("manager", "opened", "low", "held")
    assert first.at.isoformat() == "2026-11-20T01:14:00+00:00"  # group_wait after the first post
    # ...until it spreads (40 reposts in 7 minutes): then the phone rings, at once.
    assert (woke.contact, woke.kind, woke.urgency) == ("manager", "update", "high")
    assert woke.at.isoformat() == "2026-11-20T01:20:00+00:00"
    assert [r.contact for r in results if r.kind == "escalated"][:1] == ["backup"]
    as_json = woke.as_json(config().tz)
    assert as_json["at"] == "2026-11-20T02:20:00+01:00" and as_json["incident"] == 1 and as_json["wakes"]


@pytest.mark.parametrize(
    ("name", "must_wake"),
    [
        ("bad_buzz", True),
        ("bad_buzz_small_account", True),
        ("quiet_week", False),
        ("viral_positive", False),
        ("spam_bursts", False),
        ("source_outage", False),
        ("angry_regular", False),
        ("press_severe", True),
        ("press_mild", False),
    ],
)
def test_bench_scenarios_meet_the_goal_with_a_stand_in_scorer(name: str, must_wake: bool) -> None:
    lines = read_timeline(BENCH / f"{name}.jsonl")
    results = replay(config(), lines, StandInScorer())
    wakes = [r for r in results if r.wakes]
    if must_wake:
        first_post = next(line.ts for line in lines if line.author in FIRST_AUTHORS)
        assert wakes and (wakes[0].at - first_post).total_seconds() <= 600
    else:
        assert wakes == []


@pytest.fixture(scope="module")
def real_scorer():  # type: ignore[no-untyped-def]
    from veille.scoring import load_scorer

    return load_scorer(config().sentiment)


@pytest.mark.parametrize(
    ("name", "must_wake"),
    [
        ("bad_buzz", True),
        ("bad_buzz_small_account", True),
        ("viral_positive", False),
        ("spam_bursts", False),
        ("quiet_week", False),
        ("press_severe", True),
        ("press_mild", False),
        ("press_severe_es", True),  # issue 16: not scored, rung through its Spanish crisis words
        ("press_mild_de", False),
    ],
)
def test_bench_goals_hold_with_the_real_scorer(real_scorer, name: str, must_wake: bool) -> None:  # type: ignore[no-untyped-def]
    lines = read_timeline(BENCH / f"{name}.jsonl")
    wakes = [r for r in replay(config(), lines, real_scorer) if r.wakes]
    if must_wake:
        first_post = next(line.ts for line in lines if line.author in FIRST_AUTHORS)
        assert wakes and (wakes[0].at - first_post).total_seconds() <= 600
    else:
        assert wakes == []


def test_an_rss_only_clients_severe_article_at_night_rings_within_ten_minutes(tmp_path: Path) -> None:
    """Issue 11: a feed gives no audience figure, yet a press article about food poisoning rings at 23:05."""
    article = (
        '{"ts": "2026-11-20T23:05:00+01:00", "client": "tapis", "source": "rss", "url": "https://presse.example/1", '
        '"text": "Intoxication alimentaire chez Tapis Dupont : douze clients aux urgences, les familles portent '
        'plainte"}'
    )
    results = replay(config(), parse_lines([article]), StandInScorer(), workdir=tmp_path)
    woke = next(r for r in results if r.wakes)
    assert (woke.contact, woke.kind, woke.urgency, woke.cause) == ("manager", "opened", "high", "buzz")
    assert woke.at.isoformat() == "2026-11-20T22:06:00+00:00"  # group_wait after the article
    # The same sentence from a source that gives no prior (an unknown kind) opens only a low-urgency incident.
    bare = replay(config(), parse_lines([article.replace('"rss"', '"other"')]), StandInScorer(), workdir=tmp_path)
    assert bare and not any(r.wakes for r in bare) and {r.urgency for r in bare} == {"low"}


def test_a_mildly_negative_article_rings_nobody(real_scorer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    review = (
        '{"ts": "2026-11-20T23:05:00+01:00", "client": "tapis", "source": "rss", "url": "https://presse.example/2", '
        '"text": "Tapis Dupont : attente un peu longue, mais séance efficace"}'
    )
    results = replay(config(), parse_lines([review]), real_scorer, workdir=tmp_path)
    assert [r for r in results if r.incident is not None] == []  # only the morning digests


def test_source_outage_scenario_opens_a_silence_incident() -> None:
    results = replay(config(), read_timeline(BENCH / "source_outage.jsonl"), StandInScorer())
    assert any("silence" in r.title or "Aucune donnée" in r.title for r in results)


def test_cli_replay_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veille.cli import alerts as cli_alerts
    from veille.cli import cli

    (tmp_path / "config.toml").write_text(CONFIG.format(channel="console", extra=""), encoding="utf-8")
    monkeypatch.setattr(cli_alerts, "_load_scorer", lambda _config: StandInScorer())
    result = CliRunner().invoke(
        cli, ["replay", str(BENCH / "bad_buzz.jsonl"), "--config", str(tmp_path / "config.toml"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert objects and {"at", "client", "contact", "urgency", "wakes", "incident"} <= set(objects[0])
    assert any("intoxication" in (o["summary"] or "") for o in objects)  # each notification says what it is about
    assert any(o["wakes"] for o in objects)
    table = CliRunner().invoke(
        cli, ["replay", str(BENCH / "bad_buzz.jsonl"), "--config", str(tmp_path / "config.toml")]
    )
    assert table.exit_code == 0 and "réveillé le téléphone" in table.output


@pytest.mark.parametrize(
    ("name", "cause"),
    [("bad_buzz", {"intoxication", "malade", "urgences"}), ("bad_buzz_small_account", {"cafard"})],
)
def test_the_bad_buzz_summaries_name_their_real_cause(real_scorer, name: str, cause: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: the alert says what people are angry about (against the client's usual posts of the day)."""
    results = [r for r in replay(config(), read_timeline(BENCH / f"{name}.jsonl"), real_scorer) if r.incident]
    woke = next(r for r in results if r.wakes)
    assert woke.summary is not None
    head = woke.summary.split(" : ")[0].split(" · ")
    assert cause & set(head), woke.summary
    assert not {"chez", "gégé", "gege", "chezgege"} & set(head)  # the client's own name never stands out
    last = [r for r in results if r.summary][-1].summary
    assert last is not None and cause & set(last.split(" : ")[0].split(" · ")), last
    if name == "bad_buzz":  # it grows with the echoes: every angry voice is counted
        assert "15 posts, 15 auteurs, 1 source" in last


def test_replay_runs_the_reply_inbox(tmp_path: Path) -> None:
    """A message at 20:45, a reproach at 21:14, the page's answer at 08:10: the reminder goes out by day
    (silent), the overdue incident is held for the night, and the answer resolves both."""
    timeline = [
        {
            "ts": "2026-11-20T20:45:00+01:00",
            "client": "resto",
            "source": "facebook",
            "kind": "message",
            "thread": "t_10",
            "author": "Léa",
            "text": "Vous pouvez envoyer la guirlande par la poste ?",
        },
        {
            "ts": "2026-11-20T21:14:00+01:00",
            "client": "resto",
            "source": "facebook",
            "kind": "message",
            "thread": "t_10",
            "author": "Léa",
            "text": "vous auriez au moins pu répondre",
        },
        {
            "ts": "2026-11-20T21:20:00+01:00",
            "client": "resto",
            "source": "facebook",
            "kind": "comment",
            "thread": "c_1",
            "author": "Paul",
            "text": "merci !! ❤",
        },
        {
            "ts": "2026-11-21T08:10:00+01:00",
            "client": "resto",
            "source": "facebook",
            "kind": "message",
            "thread": "t_10",
            "author": "Chez Gégé",
            "from_client": True,
            "text": "Bonjour Léa, oui !",
        },
    ]
    lines = parse_lines(json.dumps(line) for line in timeline)
    extra = '\n  [clients.inbox]\n  message = "2h"\n  remind_before = "1h"\n'
    text = CONFIG.format(channel="console", extra='digest_at = "07:30"')
    config = parse_config(
        text.replace('crisis_words = ["gégé pue"]\n', 'crisis_words = ["gégé pue"]\n' + extra), environ={}
    )
    out = replay(config, lines, StandInScorer(), workdir=tmp_path)
    replies = [
        (s.cause, s.kind, s.mode, s.at.astimezone(config.tz).strftime("%H:%M"))
        for s in out
        if s.contact == "manager" and s.cause in ("reply_due", "reply")
    ]
    assert replies == [
        ("reply_due", "opened", "silent", "21:46"),  # an hour before the 22:45 deadline, after group_wait
        ("reply", "opened", "held", "22:46"),  # overdue at night: held for the 07:30 digest
        ("reply_due", "resolved", "silent", "08:10"),  # the page answered: both resolve, silently
        ("reply", "resolved", "silent", "08:10"),
    ]
    assert all(s.cause != "reply" or s.urgency == "low" for s in out)
    with pytest.raises(ReplayError, match="'kind' must be one of"):
        parse_lines([json.dumps({**timeline[0], "kind": "tweet"})])


FOREIGN_ARTICLES = {
    "es": "Intoxicación alimentaria en Tapis Dupont: doce clientes en urgencias, las familias presentan una denuncia",
    "de": "Lebensmittelvergiftung bei Tapis Dupont: zwölf Gäste in der Notaufnahme, die Familien erstatten Anzeige",
    "it": "Intossicazione alimentare da Tapis Dupont: dodici clienti al pronto soccorso, le famiglie fanno denuncia",
    "nl": "Voedselvergiftiging bij Tapis Dupont: twaalf gasten naar de spoedeisende hulp, de families doen aangifte",
}


@pytest.mark.parametrize("lang", sorted(FOREIGN_ARTICLES))
def test_a_severe_article_in_a_language_veille_does_not_score_rings_within_ten_minutes(
    real_scorer,  # type: ignore[no-untyped-def]
    lang: str,
    tmp_path: Path,
) -> None:
    """Issue 16: the real scorer leaves the article unscored (never read as French); its crisis words ring."""
    text = FOREIGN_ARTICLES[lang]
    (verdict,) = real_scorer.score_batch([text])
    assert (verdict.label, verdict.lang) == (None, lang)
    line = json.dumps(
        {
            "ts": "2026-11-20T23:05:00+01:00",
            "client": "tapis",
            "source": "rss",
            "url": "https://p.example/1",
            "text": text,
        }
    )
    results = replay(config(), parse_lines([line]), real_scorer, workdir=tmp_path)
    woke = next(r for r in results if r.wakes)
    assert (woke.contact, woke.kind, woke.urgency, woke.cause) == ("manager", "opened", "high", "buzz")
    assert woke.at.isoformat() == "2026-11-20T22:06:00+00:00"
