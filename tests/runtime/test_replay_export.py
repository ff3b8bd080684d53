"""`veille export --format replay`: a client's stored history replays into the incidents the daemon opened.

The "daemon" here is the real store and alerting service driven as the pipeline drives them: a poll every
POLL stores what the source shows (new posts, and the engagement of the ones already seen) and hands the
new hits and the refreshed ones to alerting, which ticks in between. Its history is then exported and
replayed on a fresh database; the incidents must be the same, their first notifications within a poll.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from tests.runtime.test_replay import BENCH, StandInScorer, config
from tests.store.test_store import MATCH, make_source
from tests.support.alerting import make_db
from veille.core.clock import FakeClock
from veille.core.models import Engagement, Item
from veille.runtime.alerting import AlertingService
from veille.runtime.replay import Line, export_timeline, parse_lines, read_timeline, replay
from veille.scoring.own_terms import OwnTerms
from veille.store import alerts as store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.hits import MatchedItem, SourceRef, store_items, stored_versions
from veille.store.migrate import upgrade

POLL = timedelta(minutes=5)
TICK = timedelta(minutes=1)
TAIL = timedelta(hours=3)


def run_daemon(engine: Engine, lines: list[Line]) -> None:
    """Poll the timeline every POLL into the real store and alerting service (a simulated clock)."""
    cfg = config()
    client = cfg.client("resto")
    assert client is not None
    own, scorer = OwnTerms(client.name, client.keywords), StandInScorer()
    source: SourceRef = make_source(engine, "resto/mastodon", kind="mastodon")
    clock = FakeClock(lines[0].ts - timedelta(seconds=1))
    service = AlertingService(cfg, engine, clock, {})
    posts: dict[str, Item] = {}
    pending = list(lines)
    end = lines[-1].ts + TAIL
    next_poll = lines[0].ts
    while clock.now() < end:
        if clock.now() >= next_poll:
            due = [line for line in pending if line.ts <= clock.now()]
            pending = pending[len(due) :]
            fresh, seen = [], []
            for line in due:
                engagement = Engagement(likes=line.likes, reposts=line.reposts, replies=line.replies)
                if line.text is not None:
                    item = Item(
                        external_id=str(line.url),
                        text=line.text,
                        url=line.url,
                        author=line.author,
                        author_followers=line.author_followers,
                        published_at=line.ts,
                        engagement=engagement,
                        direct=line.direct,
                    )
                    posts[str(line.url)] = item
                    fresh.append(item)
                elif line.url in posts:
                    posts[line.url] = replace(posts[line.url], engagement=engagement)
                    seen.append(posts[line.url])
            verdicts = scorer.score_batch([own.without(i.text) for i in fresh])
            matched = [MatchedItem(i, MATCH, v) for i, v in zip(fresh, verdicts, strict=True)]
            refreshed = [MatchedItem(i, MATCH) for i in seen]
            with write_tx(engine) as conn:
                new_hits = store_items(conn, source, matched + refreshed, clock.now())
                service.on_new_hits(conn, new_hits)
                if refreshed:
                    service.on_hits_refreshed(conn, stored_versions(conn, source, refreshed))
            next_poll += POLL
        service.tick()
        clock.advance(TICK.total_seconds())


def first_notifications(results) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
    firsts: dict[str, datetime] = {}
    for r in results:
        if r.cause and r.mode != "held":
            firsts[r.cause] = min(firsts.get(r.cause, r.at), r.at)
    return firsts


@pytest.mark.parametrize("name", ["bad_buzz", "bad_buzz_small_account"])
def test_replaying_an_exported_period_reproduces_the_daemons_incidents(db_url: str, name: str) -> None:
    engine = make_db(db_url)
    lines = [line for line in read_timeline(BENCH / f"{name}.jsonl") if line.client == "resto"]
    run_daemon(engine, lines)
    with read_conn(engine) as conn:
        opened = store.list_incidents(conn, limit=1000)
        sent = [r for r in store.outbox_rows(conn) if r.incident_id is not None]
        exported = list(export_timeline(conn, "resto", lines[0].ts - timedelta(hours=1)))
    causes = {i.id: i.cause.value for i in opened}
    daemon: dict[str, datetime] = {}
    for row in sent:
        cause = causes[row.incident_id]
        daemon[cause] = min(daemon.get(cause, row.created_at), row.created_at)
    assert "buzz" in daemon  # the scenario rang the daemon
    updates = [x for x in exported if "text" not in x]
    assert len(updates) >= 15  # engagement observations: the spread, re-measured at each poll
    timeline = parse_lines(json.dumps(x, ensure_ascii=False) for x in exported)
    results = replay(config(), timeline, StandInScorer(), tail=TAIL)
    replayed = first_notifications(results)
    assert {r.cause for r in results if r.cause} == set(causes.values())
    assert set(replayed) == set(daemon)
    for cause, at in daemon.items():
        assert abs(replayed[cause] - at) <= POLL, (cause, replayed[cause], at)


def test_cli_export_writes_a_timeline_replay_reads(tmp_path: Path) -> None:
    from tests.support.alerting import CONFIG
    from veille.cli import cli

    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG.format(channel="console", extra="").replace(
            'timezone = "Europe/Paris"', f'timezone = "Europe/Paris"\n[database]\nurl = "sqlite:///{tmp_path}/v.db"'
        ),
        encoding="utf-8",
    )
    engine = make_engine(f"sqlite:///{tmp_path}/v.db")
    upgrade(engine)
    source = make_source(engine, "resto/mastodon", kind="mastodon")
    now = datetime.now().astimezone()
    post = Item(
        external_id="p1",
        text="Intoxication chez Gégé",
        title="",
        url="https://m.example/p1",
        author="foodie",
        author_followers=1200,
        published_at=now - timedelta(hours=2, minutes=30),
        engagement=Engagement(likes=1, reposts=0, replies=0),
        direct=True,
    )
    with write_tx(engine) as conn:
        store_items(conn, source, [MatchedItem(post, MATCH)], now - timedelta(hours=2))
        grown = replace(post, engagement=Engagement(likes=40, reposts=12, replies=3))
        store_items(conn, source, [MatchedItem(grown, MATCH)], now - timedelta(hours=1))
    engine.dispose()
    out = tmp_path / "resto.jsonl"
    result = CliRunner().invoke(
        cli,
        ["export", "--config", str(path), "--client", "resto", "--since", "1d", "--format", "replay", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "2 lignes" in result.output
    first, update = read_timeline(out)
    assert (first.text, first.author, first.author_followers, first.direct, first.likes) == (
        "Intoxication chez Gégé",
        "foodie",
        1200,
        True,
        1,
    )
    assert first.published is not None and first.published < first.ts  # published before veille had it
    assert (update.text, update.url, update.likes, update.reposts) == (None, first.url, 40, 12)
    unknown = CliRunner().invoke(cli, ["export", "--config", str(path), "--client", "nobody"])
    assert unknown.exit_code == 2 and "nobody" in unknown.output
