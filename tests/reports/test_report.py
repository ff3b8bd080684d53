"""Monthly reports: month bounds in Paris, figures as tables, real SQLite/PostgreSQL reads, four formats, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update

from tests.support.paths import REPO_ROOT
from veille.cli import cli
from veille.cli.report import for_terminal
from veille.core.matching import MatchResult
from veille.core.models import Engagement, Item, SentimentLabel, SentimentResult
from veille.reports import monthly_report, render
from veille.reports.figures import (
    AckSummary,
    Ranked,
    WeekCount,
    ack_summary,
    build_report,
    by_week,
    incident_lines,
    interactions,
    most_negative,
    outages,
    sentiment_shares,
    split_terms,
    top_authors,
    top_engaged,
    top_terms,
)
from veille.reports.layout import safe_url
from veille.reports.markdown import text as markdown_text
from veille.reports.period import Month, previous_month
from veille.reports.tabular import CSV_COLUMNS
from veille.store import alerts as alert_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.hits import MatchedItem, SourceRef, store_items
from veille.store.migrate import upgrade
from veille.store.reports import FailingSource, IncidentFacts, ReportHit
from veille.store.schema import clients, sources
from veille.store.schema_alerts import incidents

PARIS = ZoneInfo("Europe/Paris")
NOVEMBER = Month(2026, 11)
REPORT_NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- months -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "tz", "start", "end"),
    [
        (Month(2026, 11), "Europe/Paris", "2026-10-31T23:00", "2026-11-30T23:00"),
        (Month(2026, 10), "Europe/Paris", "2026-09-30T22:00", "2026-10-31T23:00"),  # DST ends on Oct 25
        (Month(2026, 3), "Europe/Paris", "2026-02-28T23:00", "2026-03-31T22:00"),  # DST starts on Mar 29
        (Month(2026, 12), "Europe/Paris", "2026-11-30T23:00", "2026-12-31T23:00"),
        (Month(2026, 12), "UTC", "2026-12-01T00:00", "2027-01-01T00:00"),
    ],
)
def test_month_bounds_are_local_midnights(month: Month, tz: str, start: str, end: str) -> None:
    assert month.bounds(ZoneInfo(tz)) == (utc(start), utc(end))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-01T08:00", Month(2026, 11)),
        ("2026-11-30T23:30", Month(2026, 11)),  # already December 1st in Paris
        ("2026-11-30T22:30", Month(2026, 10)),  # still November 30th in Paris
        ("2027-01-15T12:00", Month(2026, 12)),
        ("2026-12-31T23:30", Month(2026, 12)),  # January 1st in Paris: December is the previous month
    ],
)
def test_default_month_is_the_previous_one_in_paris(now: str, expected: Month) -> None:
    assert previous_month(utc(now), PARIS) == expected


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-11", "2026/11", "", "novembre", "2026-1"])
def test_bad_month_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)


def test_month_navigation() -> None:
    assert Month.parse(" 2026-01 ") == Month(2026, 1)
    assert Month(2026, 1).previous() == Month(2025, 12) and Month(2025, 12).next() == Month(2026, 1)
    assert (Month(2026, 2).first_day, Month(2026, 2).last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    assert str(Month(2026, 3)) == "2026-03"


# --- pure figures -------------------------------------------------------------------------------


def hit(
    hit_id: int,
    at: str = "2026-11-10T12:00",
    *,
    kind: str = "rss",
    label: str | None = None,
    score: float | None = None,
    author: str | None = None,
    terms: str | None = None,
    engagement: Engagement | None = None,
) -> ReportHit:
    return ReportHit(
        id=hit_id,
        client_id="resto",
        source_key=f"resto/{kind}",
        kind=kind,
        fetched_at=utc(at),
        published_at=utc(at),
        author=author,
        author_name=None,
        title="",
        text=f"hit {hit_id}",
        url=None,
        matched_terms=terms,
        sentiment_label=label,
        sentiment_score=score,
        engagement=engagement,
    )


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (None, 0),
        (Engagement(), 0),
        (Engagement(likes=10, reposts=2, replies=3), 15),
        (Engagement(score=120, replies=4), 124),  # Reddit / Hacker News: points count
        (Engagement(likes=5, views=100_000), 5),  # views are another scale
        (Engagement(score=-3, replies=1), 1),  # a downvoted post has no negative reach
    ],
)
def test_interactions(observed: Engagement | None, expected: int) -> None:
    assert interactions(observed) == expected


def test_weeks_of_november_2026_in_paris() -> None:
    hits = [
        hit(1, "2026-10-31T23:30"),  # Sunday Nov 1st, 00:30 in Paris
        hit(2, "2026-11-02T08:00"),
        hit(3, "2026-11-08T22:30"),  # Sunday 23:30 Paris: still week 2
        hit(4, "2026-11-08T23:30"),  # Monday Nov 9th, 00:30 in Paris
        hit(5, "2026-11-30T22:59"),
    ]
    assert by_week(hits, NOVEMBER, PARIS) == (
        WeekCount(date(2026, 11, 1), date(2026, 11, 1), 1),
        WeekCount(date(2026, 11, 2), date(2026, 11, 8), 2),
        WeekCount(date(2026, 11, 9), date(2026, 11, 15), 1),
        WeekCount(date(2026, 11, 16), date(2026, 11, 22), 0),
        WeekCount(date(2026, 11, 23), date(2026, 11, 29), 0),
        WeekCount(date(2026, 11, 30), date(2026, 11, 30), 1),
    )


@pytest.mark.parametrize(
    ("current", "previous", "expected"),
    [
        (
            {"neg": 2, "neu": 1, "pos": 1},
            {"neg": 1, "pos": 4},
            [("neg", 2, 0.5, 0.2, 30.0), ("neu", 1, 0.25, 0.0, 25.0), ("pos", 1, 0.25, 0.8, -55.0)],
        ),
        (
            {"neg": 1, None: 3},
            {},
            [("neg", 1, 1.0, None, None), ("neu", 0, 0.0, None, None), ("pos", 0, 0.0, None, None)],
        ),
        ({None: 2}, {"pos": 2}, [("neg", 0, 0.0, 0.0, None), ("neu", 0, 0.0, 0.0, None), ("pos", 0, 0.0, 1.0, None)]),
    ],
)
def test_sentiment_shares_and_points(
    current: dict[str | None, int],
    previous: dict[str | None, int],
    expected: list[tuple[str, int, float, float | None, float | None]],
) -> None:
    shares = sentiment_shares(current, previous)
    assert [(s.label, s.count) for s in shares] == [(e[0], e[1]) for e in expected]
    for share, (_, _, value, before, delta) in zip(shares, expected, strict=True):
        assert share.share == pytest.approx(value)
        assert share.previous_share == (pytest.approx(before) if before is not None else None)
        assert share.delta_points == (pytest.approx(delta) if delta is not None else None)


def test_rankings() -> None:
    hits = [
        hit(1, label="neg", score=-0.5, author="alice", terms="chez gege, pizza", engagement=Engagement(likes=3)),
        hit(
            2,
            label="neg",
            score=-0.9,
            author="bob",
            kind="mastodon",
            terms="chez gege",
            engagement=Engagement(likes=40, reposts=5),
        ),
        hit(3, label="pos", score=0.7, author="alice", terms="pizza, pizza", engagement=Engagement(score=45)),
        hit(4, label="neg", score=-0.5, author="alice", engagement=Engagement(likes=10)),
        hit(5, label="neu", author=None, engagement=None),
    ]
    assert [h.id for h in top_engaged(hits, 3)] == [2, 3, 4]  # 45 points tie with 45 likes+reposts: lower id first
    assert [h.id for h in most_negative(hits, 5)] == [2, 4, 1]  # equal scores: the more engaged first
    assert top_authors(hits, 5) == (Ranked("alice (rss)", 3, 2), Ranked("bob (mastodon)", 1, 1))
    assert top_terms(hits, 5) == (Ranked("chez gege", 2, 2), Ranked("pizza", 2, 1))  # a term counts once per hit
    assert split_terms("a, b c, ") == ["a", "b c"] and split_terms(None) == []


def facts(
    incident_id: int,
    opened: str,
    *,
    notified: str | None = None,
    acked: str | None = None,
    resolved: str | None = None,
    cause: str = "buzz",
    subject: str = "",
) -> IncidentFacts:
    return IncidentFacts(
        id=incident_id,
        cause=cause,
        subject=subject,
        title="t",
        urgency="high",
        status="resolved",
        opened_at=utc(opened),
        resolved_at=utc(resolved) if resolved else None,
        hit_count=3,
        first_notified_at=utc(notified) if notified else None,
        first_ack_at=utc(acked) if acked else None,
        acked_by="cm" if acked else None,
    )


def test_time_to_acknowledge_counts_from_the_first_notification() -> None:
    start, end = NOVEMBER.bounds(PARIS)
    lines = incident_lines(
        [
            facts(1, "2026-10-30T10:00", notified="2026-10-30T10:01", acked="2026-11-02T09:00"),  # carried over
            facts(2, "2026-11-05T08:00", notified="2026-11-05T08:05", acked="2026-11-05T08:25"),
            facts(3, "2026-11-06T08:00", acked="2026-11-06T09:00"),  # never notified (quiet): from the opening
            facts(4, "2026-11-07T08:00", notified="2026-11-07T08:01"),  # never acknowledged
            facts(5, "2026-11-08T08:00", notified="2026-11-08T09:00", acked="2026-11-08T08:30"),  # acked before told
        ]
    )
    assert [line.time_to_ack for line in lines] == [
        timedelta(days=2, hours=22, minutes=59),
        timedelta(minutes=20),
        timedelta(hours=1),
        None,
        timedelta(0),
    ]
    assert ack_summary(lines, start, end) == AckSummary(
        opened=4, acknowledged=3, median_time_to_ack=timedelta(minutes=20), max_time_to_ack=timedelta(hours=1)
    )
    assert ack_summary([], start, end) == AckSummary(0, 0, None, None)


def test_outages_from_incidents_and_current_streaks() -> None:
    start, end = NOVEMBER.bounds(PARIS)
    history = [
        facts(1, "2026-11-15T10:00", resolved="2026-11-16T10:00", cause="source", subject="resto/masto"),
        facts(2, "2026-10-31T20:00", resolved="2026-11-01T02:00", cause="source", subject="resto/yt"),
        facts(3, "2026-11-29T06:00", cause="source", subject="resto/rss"),
    ]  # still open: the row is better
    failing = [
        FailingSource("resto/rss", "rss", "failing", utc("2026-11-29T00:00"), "http_5xx", 40),
        FailingSource("resto/x", "x", "backing_off", utc("2026-12-01T05:00"), "timeout", 3),  # too short
        FailingSource("resto/bsky", "bluesky", "failing", utc("2026-12-01T01:00"), "network", 9),
    ]  # December
    found = outages(
        history,
        failing,
        {"resto/masto": "mastodon", "resto/yt": "youtube"},
        start=start,
        end=end,
        now=REPORT_NOW,
        failing_after=SIX_HOURS,
    )
    assert [(o.source_key, o.kind, o.since, o.until, o.duration, o.error_kind) for o in found] == [
        ("resto/yt", "youtube", utc("2026-10-31T14:00"), utc("2026-11-01T02:00"), timedelta(hours=3), None),
        ("resto/masto", "mastodon", utc("2026-11-15T04:00"), utc("2026-11-16T10:00"), timedelta(hours=30), None),
        ("resto/rss", "rss", utc("2026-11-29T00:00"), None, timedelta(days=1, hours=23), "http_5xx"),
    ]
    # Reported during the month: the streak is measured up to now, not to the month's end.
    early = outages([], failing[:1], {}, start=start, end=end, now=utc("2026-11-29T03:00"), failing_after=SIX_HOURS)
    assert early == ()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a?b=1&c=2", "https://example.org/a?b=1&c=2"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        (None, None),
        ('https://x.org/a" onmouseover="x', "https://x.org/a%22%20onmouseover=%22x"),
        ("https://x.org/a)(b<c>|d", "https://x.org/a%29%28b%3Cc%3E%7Cd"),
        ("HTTP://X.ORG/é", "HTTP://X.ORG/%C3%A9"),
    ],
)
def test_safe_url(url: str | None, expected: str | None) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http_5xx et jean_pierre", "http_5xx et jean_pierre"),  # _ between letters: no emphasis, left alone
        ("_souligné_ et __init__", "\\_souligné\\_ et \\_\\_init\\_\\_"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
        ("![pixel](https://t.example/p.gif)", "!\\[pixel\\](https://t.example/p.gif)"),
        ("a | b `code` *gras* ~~barré~~ \\", "a \\| b \\`code\\` \\*gras\\* \\~\\~barré\\~\\~ \\\\"),
        ("ligne 1\nligne 2\x1b[31m\u202e", "ligne 1 ligne 2"),
        ("#INC-4 - 100% déçu !", "#INC-4 - 100% déçu !"),
    ],
)
def test_markdown_cells_are_escaped(value: str, expected: str) -> None:
    assert markdown_text(value) == expected


def test_terminal_output_loses_escapes_but_files_keep_text() -> None:
    text = "a\x1b]0;owned\x07b\x1b[2Jc\nd\x9be"
    assert for_terminal(text, True) == "abc\nde"
    assert for_terminal(text, False) == text


# --- the database scenario (SQLite and PostgreSQL) ---------------------------------------------

NEG = SentimentResult(SentimentLabel.NEG, -0.9, "fr")
WAIT = "Chez Gégé: attente interminable, une heure pour une pizza"  # long enough to be linked as a copy
HOSTILE = "<script>alert(1)</script> \x1b[31mrouge\x1b[0m | [clic](javascript:alert(2)) =1+1"


def _source(conn: object, key: str, kind: str) -> SourceRef:
    source_id = conn.execute(
        sources.insert()
        .values(  # type: ignore[attr-defined]
            key=key,
            client_id="resto",
            kind=kind,
            target=f"https://example.org/{kind}",
            every_seconds=600,
            enabled=True,
            in_config=True,
            status="ok",
            consecutive_errors=0,
            hits_count=0,
        )
        .returning(sources.c.id)
    ).scalar_one()
    return SourceRef(source_id, key, "resto", kind)


def _matched(
    external_id: str,
    text: str,
    label: str | None = None,
    score: float = 0.0,
    *,
    author: str | None = None,
    url: str | None = None,
    engagement: Engagement | None = None,
    title: str = "",
) -> MatchedItem:
    sentiment = SentimentResult(SentimentLabel(label), score, "fr") if label else None
    return MatchedItem(
        Item(external_id, text, title=title, author=author, url=url, engagement=engagement),
        MatchResult(True, False, ("chez gege",)),
        sentiment,
    )


def _incident(
    conn: object,
    cause: str,
    opened: str,
    *,
    subject: str = "",
    resolved: str | None = None,
    acked: str | None = None,
    status: str = "resolved",
    title: str = "Bad buzz",
) -> int:
    at = utc(opened)
    return int(
        conn.execute(
            incidents.insert()
            .values(  # type: ignore[attr-defined]
                key=f"resto:{cause}:{subject}:{opened}",
                client_id="resto",
                cause=cause,
                subject=subject,
                status=status,
                urgency="high",
                firing=False,
                opened_at=at,
                notify_at=at,
                last_evidence_at=at,
                title=title,
                reasons=[],
                hit_count=2,
                top_hits=[],
                score=0.9,
                version=1,
                notified_version=1,
                notified_contacts=[],
                held_for=[],
                level=0,
                loops=0,
                flaps=0,
                acked_by="marc" if acked else None,
                acked_at=utc(acked) if acked else None,
                resolved_at=utc(resolved) if resolved else None,
                updated_at=at,
            )
            .returning(incidents.c.id)
        ).scalar_one()
    )


def seed(engine: Engine) -> None:
    """October: 1 negative, 4 positive. November (Paris): 2 negative, 1 neutral, 1 positive, plus a duplicate."""
    with write_tx(engine) as conn:
        conn.execute(
            clients.insert(),
            [
                {"id": "resto", "name": "Chez Gégé", "updated_at": REPORT_NOW},
                {"id": "tapis", "name": "Tapis Royal", "updated_at": REPORT_NOW},
            ],
        )
        rss = _source(conn, "resto/rss-1", "rss")
        masto = _source(conn, "resto/masto", "mastodon")
    batches = [
        (
            rss,
            "2026-10-10T10:00",
            [_matched("o1", "octobre nul", "neg", -0.5)]
            + [_matched(f"o{n}", f"octobre super {n}", "pos", 0.5) for n in (2, 3, 4)],
        ),
        (rss, "2026-10-31T22:30", [_matched("o5", "octobre, 23 h 30 à Paris", "pos", 0.4)]),
        (
            rss,
            "2026-10-31T23:30",
            [_matched("n1", HOSTILE, "neg", -0.9, author="alice", url="javascript:alert(3)", title='Titre "piégé"')],
        ),
        (
            masto,
            "2026-11-10T12:00",
            [
                _matched(
                    "n2",
                    "Chez Gégé, super soirée",
                    "pos",
                    0.6,
                    author="bob",
                    url="https://masto.example/@bob/1",
                    engagement=Engagement(likes=10, reposts=2),
                )
            ],
        ),
        (
            masto,
            "2026-11-12T12:00",
            [
                _matched(
                    "n2",
                    "Chez Gégé, super soirée",
                    "pos",
                    0.6,
                    author="bob",
                    url="https://masto.example/@bob/1",
                    engagement=Engagement(likes=50, reposts=2),
                )
            ],
        ),
        (
            masto,
            "2026-11-20T09:00",
            [_matched("n3", WAIT, "neg", -0.4, author="alice", engagement=Engagement(likes=3))],
        ),
        (rss, "2026-11-21T09:00", [_matched("n3-copy", WAIT, "neg", -0.4)]),
        (rss, "2026-11-30T22:59", [_matched("n4", 'Chez Gégé ouvre lundi, line1\nline2, "quoted"', "neu")]),
        (rss, "2026-11-30T23:00", [_matched("d1", "décembre déjà", "neg", -0.8)]),  # December 1st in Paris
    ]
    for source, at, items in batches:
        with write_tx(engine) as conn:
            store_items(conn, source, items, utc(at))
    with write_tx(engine) as conn:
        buzz = _incident(conn, "buzz", "2026-11-12T08:00", resolved="2026-11-12T12:00", acked="2026-11-12T08:30")
        alert_store.add_event(conn, utc("2026-11-12T08:01"), "notify", incident_id=buzz, client_id="resto")
        alert_store.add_event(
            conn, utc("2026-11-12T08:21"), "snooze", incident_id=buzz, client_id="resto", contact="lea"
        )
        alert_store.add_event(
            conn, utc("2026-11-12T08:30"), "ack", incident_id=buzz, client_id="resto", contact="marc"
        )  # a later ack overwrote incidents.acked_at/acked_by
        _incident(conn, "volume", "2026-11-25T10:00", status="open", title="Volume <b>x3</b>")
        _incident(
            conn,
            "buzz",
            "2026-10-05T10:00",
            resolved="2026-10-05T12:00",  # October only, no events:
            acked="2026-10-05T10:30",
        )  # the incident row's own ack is used
        _incident(conn, "source", "2026-11-15T10:00", subject="resto/masto", resolved="2026-11-16T10:00")
        conn.execute(
            update(sources)
            .where(sources.c.key == "resto/rss-1")
            .values(
                status="failing",
                failing_since=utc("2026-11-29T00:00"),
                consecutive_errors=40,
                last_error_kind="http_5xx",
            )
        )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    seed(engine)
    yield engine
    engine.dispose()


def report_of(engine: Engine, month: Month = NOVEMBER, client: str = "resto") -> object:
    with read_conn(engine) as conn:
        return monthly_report(
            conn,
            client_id=client,
            client_name="Chez Gégé",
            month=month,
            timezone="Europe/Paris",
            now=REPORT_NOW,
            failing_after=SIX_HOURS,
        )


def test_report_figures_from_the_database(engine: Engine) -> None:
    report = report_of(engine)
    assert [h.text[:20] for h in report.hits] == [
        HOSTILE[:20],
        "Chez Gégé, super soi",
        WAIT[:20],
        "Chez Gégé ouvre lund",
    ]  # no October, no copy, no December
    assert (report.total, report.previous_total, report.unscored) == (4, 5, 0)
    assert [(k.name, k.count, k.negative) for k in report.by_kind] == [("mastodon", 2, 1), ("rss", 2, 1)]
    assert [w.count for w in report.by_week] == [1, 0, 1, 1, 0, 1]
    assert [
        (s.label, s.count, round(s.share, 2), s.previous_share, round(s.delta_points or 0, 1)) for s in report.sentiment
    ] == [("neg", 2, 0.5, 0.2, 30.0), ("neu", 1, 0.25, 0.0, 25.0), ("pos", 1, 0.25, 0.8, -55.0)]
    assert [(h.author, interactions(h.engagement)) for h in report.top_engaged] == [("bob", 52), ("alice", 3)]
    assert [h.sentiment_score for h in report.most_negative] == [-0.9, -0.4]
    assert report.top_authors == (
        Ranked("alice (mastodon)", 1, 1),
        Ranked("alice (rss)", 1, 1),
        Ranked("bob (mastodon)", 1, 0),
    )
    assert report.top_terms == (Ranked("chez gege", 4, 2),)
    assert [(i.cause, i.time_to_ack, i.acked_at, i.acked_by) for i in report.incidents] == [
        ("buzz", timedelta(minutes=20), utc("2026-11-12T08:21"), "lea"),
        ("volume", None, None, None),
    ]
    assert report.acks == AckSummary(2, 1, timedelta(minutes=20), timedelta(minutes=20))
    assert [(o.source_key, o.kind, o.duration) for o in report.outages] == [
        ("resto/masto", "mastodon", timedelta(hours=30)),
        ("resto/rss-1", "rss", timedelta(days=1, hours=23)),
    ]


def test_previous_month_is_october_in_paris(engine: Engine) -> None:
    october = report_of(engine, Month(2026, 10))
    assert (october.total, october.previous_total) == (5, 0)
    assert [(s.label, s.count, s.delta_points) for s in october.sentiment] == [
        ("neg", 1, None),
        ("neu", 0, None),
        ("pos", 4, None),
    ]
    assert [(i.cause, i.acked_at, i.acked_by, i.time_to_ack) for i in october.incidents] == [
        ("buzz", utc("2026-10-05T10:30"), "marc", timedelta(minutes=30))
    ]


def test_markdown_in_french_and_english(engine: Engine) -> None:
    report = report_of(engine)
    fr = render([report], "md", "fr")
    assert fr.startswith("# Rapport mensuel — Chez Gégé — novembre 2026\n")
    for expected in (
        "4 hits, contre 5 le mois précédent (−20,0\u202f%)",
        "50,0\u202f% négatif (+30,0 pts)",
        "## Volume par semaine",
        "| 01/11 | 1 |",
        "| 02/11 – 08/11 | 0 |",
        "## Les plus engageants",
        "[lien](https://masto.example/@bob/1)",
        "#INC-",
        "| 20m | lea |",
        "toujours en panne",
        "2 ouvert(s), 1 pris en charge (délai médian 20m",
    ):
        assert expected in fr, expected
    en = render([report], "md", "en")
    assert en.startswith("# Monthly report — Chez Gégé — November 2026\n")
    for expected in (
        "4 hits, against 5 the previous month (−20.0%)",
        "50.0% negative (+30.0 pts)",
        "## Volume by week",
        "| 11-01 | 1 |",
        "[link](https://masto.example/@bob/1)",
        "still down",
        "2 opened, 1 acknowledged (median time to acknowledge 20m",
    ):
        assert expected in en, expected
    assert "négatif" not in en and "negative (" not in fr


def test_markdown_keeps_hostile_text_inert(engine: Engine) -> None:
    md = render([report_of(engine)], "md", "fr")
    assert "\x1b" not in md
    assert "<script>" not in md and "\\<script\\>" in md
    assert "javascript:" not in md.replace("(javascript:alert(2))", "")  # the hit's own text, escaped below
    assert "\\[clic\\](javascript:alert(2))" in md
    assert "rouge \\| \\[clic\\]" in md  # a pipe in a hit cannot split the table row
    tables: list[list[str]] = []
    for line, before in zip(md.splitlines(), ["", *md.splitlines()], strict=False):
        if line.startswith("|"):
            if not before.startswith("|"):
                tables.append([])
            tables[-1].append(line)
    assert len(tables) >= 8
    for table in tables:
        assert len({len(re.findall(r"(?<!\\)\|", row)) for row in table}) == 1, table


def test_html_escapes_every_value(engine: Engine) -> None:
    page = render([report_of(engine)], "html", "fr")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Volume &lt;b&gt;x3&lt;/b&gt;" in page
    assert "Titre &quot;piégé&quot;" in page
    assert "\x1b" not in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == ["https://masto.example/@bob/1"]  # the javascript: URL is not a link
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<link" not in page and "src=" not in page  # self-contained: nothing loaded from elsewhere
    english = render([report_of(engine)], "html", "en")
    assert '<html lang="en">' in english and "Most engaged" in english


def test_csv_is_one_row_per_hit_and_parses(engine: Engine) -> None:
    text = render([report_of(engine)], "csv", "fr")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [r["seen_at"] for r in rows] == [
        "2026-11-01T00:30:00+01:00",
        "2026-11-10T13:00:00+01:00",
        "2026-11-20T10:00:00+01:00",
        "2026-11-30T23:59:00+01:00",
    ]
    assert rows[3]["text"] == 'Chez Gégé ouvre lundi, line1\nline2, "quoted"'
    assert rows[0]["text"] == HOSTILE  # raw text for the spreadsheet (not a formula: starts with "<")
    assert rows[0]["url"] == "javascript:alert(3)" and rows[0]["sentiment_score"] == "-0.9"
    assert (rows[1]["interactions"], rows[1]["likes"], rows[1]["reposts"], rows[1]["replies"]) == ("52", "50", "2", "")
    assert rows[3]["interactions"] == "0" and rows[3]["likes"] == ""


def test_json_has_the_figures(engine: Engine) -> None:
    data = json.loads(render([report_of(engine)], "json", "en"))
    assert (data["month"], data["hits"], data["previous_hits"], data["empty"]) == ("2026-11", 4, 5, False)
    assert data["start"] == "2026-11-01T00:00:00+01:00" and data["end"] == "2026-12-01T00:00:00+01:00"
    assert data["sentiment"][0] == {
        "label": "neg",
        "hits": 2,
        "share": 0.5,
        "previous_share": 0.2,
        "delta_points": 30.0,
    }
    assert data["acknowledgements"] == {
        "opened": 2,
        "acknowledged": 1,
        "median_time_to_ack_seconds": 1200.0,
        "max_time_to_ack_seconds": 1200.0,
    }
    assert [o["source"] for o in data["outages"]] == ["resto/masto", "resto/rss-1"]
    assert data["top_engaged"][0]["interactions"] == 52


def test_empty_month_says_so(engine: Engine) -> None:
    quiet = report_of(engine, Month(2026, 8))
    assert quiet.quiet
    md = render([quiet], "md", "fr")
    assert "Rien à signaler en août 2026 : aucun hit, aucun incident, aucune source en panne." in md
    assert "|" not in md and "0,0" not in md  # no table of zeros
    assert "Nothing to report for August 2026" in render([quiet], "md", "en")
    assert json.loads(render([quiet], "json", "fr"))["quiet"] is True
    assert render([quiet], "csv", "fr") == ",".join(CSV_COLUMNS) + "\n"
    january = render([report_of(engine, Month(2027, 1))], "md", "fr")  # after December's single hit
    assert "Aucun hit en janvier 2027 (le mois précédent : 1)." in january
    assert "| #INC-" in january and "| pic de volume | ouvert |" in january  # still open: carried over
    assert "Volume par semaine" not in january
    tapis = render([report_of(engine, Month(2026, 11), "tapis")], "md", "fr")
    assert tapis.count("\n- ") == 1 and "Rien à signaler en novembre 2026" in tapis


def test_month_without_hits_but_with_a_source_down_lists_it() -> None:
    start, _ = NOVEMBER.bounds(PARIS)
    report = build_report(
        client_id="tapis",
        client_name="Tapis Royal",
        month=NOVEMBER,
        timezone="Europe/Paris",
        now=REPORT_NOW,
        hits=[],
        previous_labels={"pos": 3},
        incidents=[],
        source_incidents=[],
        failing_now=[FailingSource("tapis/rss", "rss", "gone", start - timedelta(days=3), "gone", 200)],
        source_kinds={},
        failing_after=SIX_HOURS,
    )
    assert not report.quiet and report.total == 0
    md = render([report], "md", "en")
    assert "No hits in November 2026 (previous month: 3)." in md
    assert "Sentiment" not in md and "Volume by week" not in md  # no tables of zeros
    assert "| tapis/rss | rss |" in md and "30d" in md


# --- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def config(engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VEILLE_LANG", raising=False)
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
timezone = "Europe/Paris"
[database]
url = "{db_url}"
[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
[[clients]]
id = "tapis"
name = "Tapis Royal"
keywords = ["tapis royal"]
""",
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_report_markdown_french_by_default(config: Path) -> None:
    result = invoke("report", "--config", str(config), "--client", "resto", "--month", "2026-11")
    assert result.exit_code == 0
    assert result.output.startswith("# Rapport mensuel — Chez Gégé — novembre 2026")
    assert "\x1b" not in result.output and "\\<script\\>" in result.output
    english = invoke("report", "--config", str(config), "--client", "resto", "--month", "2026-11", "--lang", "en")
    assert english.output.startswith("# Monthly report — Chez Gégé — November 2026")


def test_cli_lang_follows_veille_lang(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_LANG", "en")
    result = invoke("report", "--config", str(config), "--client", "tapis", "--month", "2026-11")
    assert "Nothing to report for November 2026" in result.output


def test_cli_formats(config: Path) -> None:
    base = ("report", "--config", str(config), "--client", "resto", "--month", "2026-11")
    data = json.loads(invoke(*base, "--format", "json").output)
    assert data["client_id"] == "resto" and data["hits"] == 4
    rows = list(csv.DictReader(io.StringIO(invoke(*base, "--format", "csv").output)))
    assert len(rows) == 4 and {r["client_id"] for r in rows} == {"resto"}
    assert "&lt;script&gt;" in invoke(*base, "--format", "html").output


def test_cli_every_client_into_a_folder(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    result = invoke("report", "--config", str(config), "--month", "2026-11", "--format", "html", "--output", str(out))
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["resto-2026-11.html", "tapis-2026-11.html"]
    assert "Rien à signaler en novembre 2026" in (out / "tapis-2026-11.html").read_text(encoding="utf-8")
    assert "Chez Gégé" in (out / "resto-2026-11.html").read_text(encoding="utf-8")


def test_cli_every_client_to_one_output(config: Path, tmp_path: Path) -> None:
    listing = json.loads(invoke("report", "--config", str(config), "--month", "2026-11", "--format", "json").output)
    assert [r["client_id"] for r in listing] == ["resto", "tapis"]
    target = tmp_path / "all.md"
    result = invoke("report", "--config", str(config), "--month", "2026-11", "--output", str(target))
    assert result.exit_code == 0 and str(target) in result.output
    text = target.read_text(encoding="utf-8")
    assert text.count("# Rapport mensuel") == 2 and "\n---\n" in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_default_month_is_the_previous_one(config: Path) -> None:
    expected = previous_month(datetime.now(UTC), PARIS)
    data = json.loads(invoke("report", "--config", str(config), "--client", "tapis", "--format", "json").output)
    assert data["month"] == str(expected)


def test_cli_errors(config: Path, tmp_path: Path) -> None:
    unknown = CliRunner().invoke(cli, ["report", "--config", str(config), "--client", "nope", "--lang", "en"])
    assert unknown.exit_code == 1 and "unknown client: 'nope'" in unknown.output
    bad = CliRunner().invoke(cli, ["report", "--config", str(config), "--month", "2026-13"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output
    nowhere = CliRunner().invoke(
        cli,
        [
            "report",
            "--config",
            str(config),
            "--client",
            "resto",
            "--month",
            "2026-11",
            "--output",
            str(tmp_path / "missing" / "r.md"),
            "--lang",
            "en",
        ],
    )
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output


def test_cli_on_a_terminal_strips_escapes_that_files_keep(config: Path, db_url: str) -> None:
    """CSV keeps a post's raw text for spreadsheets, but not on a terminal, where ESC sequences would act."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the wiring is the same on PostgreSQL")
    import os
    import pty
    import subprocess
    import sys

    args = ["report", "--config", str(config), "--client", "resto", "--month", "2026-11", "--format", "csv"]
    invoke(*args, "--output", str(config.parent / "r.csv"))
    assert "\x1b[31m" in (config.parent / "r.csv").read_text(encoding="utf-8")  # a file: raw text
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(
        [sys.executable, "-m", "veille", *args], stdout=follower, stderr=subprocess.PIPE, env=env
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0, process.stderr.read() if process.stderr else ""
    os.close(leader)
    output = b"".join(chunks).decode("utf-8")
    assert "<script>alert(1)</script>" in output and "rouge" in output
    assert "\x1b" not in output


def test_the_months_audience_growth(engine: Engine) -> None:
    """'On a gagné 40 fans ce mois-ci': each own account's first and last figure of the month, and the change."""
    from veille.store.audience import Figure, record_figures

    with write_tx(engine) as conn:
        for day, followers, rating in (
            (datetime(2026, 10, 31, 12, tzinfo=UTC), 900, 4.6),
            (datetime(2026, 11, 1, 9, tzinfo=UTC), 1000, 4.5),
            (datetime(2026, 11, 30, 9, tzinfo=UTC), 1040, 4.3),
        ):
            record_figures(
                conn,
                [
                    Figure("resto", "resto/fb", "facebook", "facebook: 1045", "followers", followers),
                    Figure("resto", "resto/places", "google-places", "google-places: ChIJ", "rating", rating),
                ],
                day,
            )
    report = report_of(engine)
    assert [(g.metric, g.first, g.last, round(g.change, 2)) for g in report.audience] == [
        ("followers", 1000, 1040, 40),
        ("rating", 4.5, 4.3, -0.2),
    ]
    french = render([report], "md", "fr")
    assert (
        "Audience des comptes du client" in french
        and "| facebook: 1045 | abonnés | 1\u202f000 (01/11) | 1\u202f040 (30/11) | +40 |" in french
    )
    assert "| note | 4,50 (01/11) | 4,30 (30/11) | −0,20 |" in french
    assert "Audience of the client's own accounts" in render([report], "md", "en")
    data = json.loads(render([report], "json", "en"))
    assert data["audience"][0] == {
        "source": "resto/fb",
        "kind": "facebook",
        "account": "facebook: 1045",
        "metric": "followers",
        "first_day": "2026-11-01",
        "first": 1000.0,
        "last_day": "2026-11-30",
        "last": 1040.0,
        "change": 40.0,
    }
    assert report_of(engine, Month(2026, 8)).audience == ()


# --- charts, incident summaries, answers past their deadline ------------------------------------------


def test_html_report_draws_its_charts_inline(engine: Engine) -> None:
    """Daily hits (one bar per November day), sentiment shares and source kinds as inline SVG: no script,
    nothing loaded from elsewhere, every text escaped; Markdown keeps its tables and draws nothing."""
    from veille.store.audience import Figure, record_figures

    with write_tx(engine) as conn:
        for day, followers in ((1, 1000), (12, 1010), (30, 1040)):
            record_figures(
                conn,
                [Figure("resto", "resto/fb", "facebook", "<b>Gégé</b> page", "followers", followers)],
                datetime(2026, 11, day, 9, tzinfo=UTC),
            )
    page = render([report_of(engine)], "html", "fr")
    charts = re.findall(r"<svg .*?</svg>", page, re.S)
    labels = [re.search(r'aria-label="([^"]*)"', c).group(1) for c in charts]  # type: ignore[union-attr]
    assert labels == [
        "Hits par type de source, les négatifs en rouge",
        "Hits et hits négatifs par jour",
        "Part de chaque sentiment",
        "&lt;b&gt;Gégé&lt;/b&gt; page — abonnés",
    ]
    daily = charts[1]
    assert daily.count("<g>") == 30  # every day of November, quiet days included
    assert "<title>01/11 : 1 hit, 1 négatif</title>" in daily  # the hostile hit seen at 00:30 on the 1st
    assert "<title>30/11 : 1 hit, 0 négatif</title>" in daily and "#d9534f" in daily
    assert "<title>négatif (50,0\u202f%)</title>" in charts[2]
    assert "<polyline" in charts[3] and ">1\u202f040<" in charts[3] and "<b>" not in page
    assert "<script" not in page.lower() and "src=" not in page and "<link" not in page
    assert "xlink:href" not in page and "<image" not in page
    assert "<svg" not in render([report_of(engine)], "md", "fr")


def test_an_incidents_summary_and_posts_are_in_the_report(engine: Engine) -> None:
    """Issue 16: what each incident was about, as its alerts said it, with its most representative posts."""
    from veille.core.incidents import Summary
    from veille.store.schema import hits as hit_rows

    with write_tx(engine) as conn:
        ids = dict(conn.execute(select(hit_rows.c.external_id, hit_rows.c.id)).all())
        summary = Summary(("attente", "pizza froide"), ("honte",), 7, 5, 3, (ids["n3"], ids["n1"]))
        conn.execute(
            update(incidents)
            .where(incidents.c.cause == "buzz", incidents.c.opened_at > utc("2026-11-01T00:00"))
            .values(summary=summary.as_dict())
        )
    report = report_of(engine)
    buzz = report.incidents[0]
    assert buzz.summary == summary and [h.text[:12] for h in buzz.top_posts] == [WAIT[:12], HOSTILE[:12]]
    french = render([report], "md", "fr")
    assert "## De quoi parlaient les incidents" in french
    line = next(row for row in french.splitlines() if "pizza froide" in row)
    assert line.startswith(f"| #INC-{buzz.id} | bad buzz |")
    assert "attente · pizza froide : 7 posts, 5 auteurs, 3 sources (aussi : honte)" in line
    assert "(@alice)" in line and "\\<script\\>" in line
    english = render([report], "md", "en")
    assert "## What the incidents were about" in english and "7 posts, 5 authors, 3 sources" in english
    page = render([report], "html", "en")
    assert "&lt;script&gt;alert(1)" in page and "pizza froide: 7 posts" in page
    data = json.loads(render([report], "json", "en"))
    assert data["incidents"][0]["summary"]["terms"] == ["attente", "pizza froide"]
    assert data["incidents"][1]["summary"] is None
    assert "De quoi parlaient" not in render([report_of(engine, Month(2026, 10))], "md", "fr")  # none summarised


def test_conversations_still_waiting_past_their_deadline_count(engine: Engine) -> None:
    """Issue 14: 'how many waited past their deadline' counts answers given late and conversations that were
    still waiting at the month's end after their deadline; one still within its deadline does not count."""
    from veille.store.schema_inbox import inbox, inbox_answers

    def waiting(conversation: str, since: str, overdue_at: str | None, channel: str = "message") -> dict[str, object]:
        return {
            "client_id": "resto",
            "source_key": "resto/fb",
            "channel": channel,
            "conversation": conversation,
            "state": "waiting",
            "need": "question",
            "excerpt": "vous livrez ?",
            "waiting_since": utc(since),
            "last_message_at": utc(since),
            "overdue_at": utc(overdue_at) if overdue_at else None,
        }

    with write_tx(engine) as conn:
        conn.execute(
            inbox.insert(),
            [
                waiting("late", "2026-11-29T10:00", "2026-11-29T12:00"),
                waiting("fresh", "2026-11-30T22:00", None),  # its deadline falls in December
                waiting("december-late", "2026-11-30T20:00", "2026-12-01T09:00", "comment"),  # late after the month
            ],
        )
        conn.execute(
            inbox_answers.insert(),
            [
                {
                    "item_id": 99,
                    "client_id": "resto",
                    "channel": "message",
                    "waited_since": utc("2026-11-10T10:00"),
                    "answered_at": utc(answered),
                    "overdue": late,
                }
                for answered, late in (("2026-11-10T11:00", False), ("2026-11-10T16:00", True))
            ],
        )
    report = report_of(engine)
    assert [
        (r.channel, r.answered, r.unanswered, r.overdue, r.waiting_overdue, r.past_deadline) for r in report.responses
    ] == [
        ("comment", 0, 1, 0, 0, 0),
        ("message", 2, 2, 1, 1, 2),
        ("", 2, 3, 1, 1, 2),
    ]
    message = report.responses[1]
    assert (message.rate, message.median) == (0.5, timedelta(hours=3, minutes=30))
    english = render([report], "md", "en")
    assert "| messages | 2 | 2 | 50.0% | 3h30m | 2 |" in english and "(1 still waiting)" in english
    data = json.loads(render([report], "json", "en"))["responses"][1]
    assert (data["past_deadline"], data["answered_late"], data["waiting_past_deadline"]) == (2, 1, 1)


def test_svg_charts_escape_their_words() -> None:
    from veille.reports.svg import BarChart, BarRow, LineChart, draw

    hostile = '</title><script>alert(1)</script>"'
    for chart in (
        BarChart(hostile, (BarRow(hostile, 3, 1, hostile),)),
        LineChart(hostile, ((hostile, 1.0), (hostile, 2.0)), hostile, hostile),
    ):
        svg = draw(chart)
        assert "<script" not in svg and "&lt;script&gt;" in svg and '"</title>' not in svg
    empty = draw(BarChart("rien", ()))
    assert empty.startswith("<svg") and "<rect" not in empty


def test_unscored_languages_are_counted_apart(db_url: str) -> None:
    """Issue 16: posts in a language veille does not score stay out of the shares, counted per language."""
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        with write_tx(engine) as conn:
            conn.execute(clients.insert(), [{"id": "resto", "name": "Chez Gégé", "updated_at": REPORT_NOW}])
            rss = _source(conn, "resto/rss-1", "rss")
            match = MatchResult(True, False, ("chez gege",))
            foreign = [("es", "una estafa"), ("es", "muy rico"), ("de", "sehr lecker")]
            items = [
                MatchedItem(Item(f"u{i}", f"Chez Gégé, {text}"), match, SentimentResult.unscored(lang))
                for i, (lang, text) in enumerate(foreign)
            ]
            store_items(conn, rss, [*items, _matched("n1", "Chez Gégé, nul", "neg", -0.7)], utc("2026-11-10T10:00"))
        report = report_of(engine)
        assert (report.total, report.unscored, report.unscored_langs) == (4, 3, (("es", 2), ("de", 1)))
        assert [(s.label, s.count, s.share) for s in report.sentiment] == [
            ("neg", 1, 1.0),
            ("neu", 0, 0.0),
            ("pos", 0, 0.0),
        ]
        assert "Not scored by language: es 2, de 1." in render([report], "md", "en")
        assert "Non notés par langue : es 2, de 1." in render([report], "md", "fr")
        assert json.loads(render([report], "json", "en"))["unscored_languages"] == {"es": 2, "de": 1}
    finally:
        engine.dispose()
