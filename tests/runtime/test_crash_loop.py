"""G3 "crash loop": the real daemon SIGKILLed 50 times during write bursts.

Each start polls two dozen local feeds that gained items since the last poll, some of them a bad
buzz, so every start writes hits, incidents and outbox rows while the relays deliver to a fake
Bot API. A seeded random delay after the first poll picks the moment of the SIGKILL. After every
kill the SQLite file must pass `integrity_check` and `foreign_key_check`, and nothing committed
before may have gone: no hit, no outbox row, no delivery recorded on a row (`sent` is final).
A clean start at the end must store every item served and deliver every row, each at least once
and more than once only in the window the outbox documents (a kill between Telegram's accept and
`mark_sent`): such rows are resent tagged `possible_duplicate`, and the message says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.support.daemon import config_text, wait_for
from tests.support.fake_telegram import Call, FakeTelegram
from tests.support.feedgen import ANGRY, OTHER, PHRASES, rss
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer, Request, Response
from veille.store.engine import make_engine
from veille.store.migrate import upgrade

ROOT = REPO_ROOT
pytestmark = pytest.mark.slow

CYCLES = 50
SEED = 20261124
CLIENTS = 8  # one buzz incident each: outbox rows for every start
CONTACTS = 2  # a chat each, for CLIENTS // CONTACTS clients: more than 3 rows wait together, so they merge (B7)
FEEDS_PER_CLIENT = 3
NEW_PER_POLL = 3  # items a feed gains at every request: 50 starts stay under [daemon] max_entries
KILL_WINDOW = 0.8  # seconds after a start's first poll: hits and rows commit from ~0.15 s, sends from ~0.5 s
ANSWER_LATE = 0.1  # seconds the fake Bot API holds each accepted message's answer: the A4 window, widened
TOKEN_ENV = "CRASH_LOOP_TELEGRAM_TOKEN"
TAG = re.compile(r"#INC-\d+")


class GrowingFeeds:
    """Feeds that gain NEW_PER_POLL items at every request (until frozen): each start is a write burst.

    A third of the items are angry (risky: the client's buzz incident opens, then updates), a third
    are ordinary mentions, a third do not match at all.
    """

    def __init__(self, server: LocalServer, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()
        self._items: dict[str, list[dict[str, str]]] = {}
        self.frozen = False
        self.polled = threading.Event()  # set at every request
        for client in range(CLIENTS):
            for feed in range(FEEDS_PER_CLIENT):
                path = self.path(client, feed)
                self._items[path] = []
                server.route(path, self._serve)

    @staticmethod
    def path(client: int, feed: int) -> str:
        return f"/c{client}/f{feed}"

    def _serve(self, request: Request) -> Response:
        with self._lock:
            items = self._items[request.path]
            if not self.frozen:
                now = datetime.now(UTC)
                for _ in range(NEW_PER_POLL):
                    items.append(self._item(request.path, len(items), now))
            body = rss(list(reversed(items)))
        self.polled.set()
        return Response(200, body, {"Content-Type": "application/rss+xml"})

    def _item(self, path: str, n: int, now: datetime) -> dict[str, str]:
        pick = self._rng.random()
        if pick < 1 / 3:
            text, matches = self._rng.choice(ANGRY), "1"
        elif pick < 2 / 3:
            text, matches = self._rng.choice(PHRASES).format(name="Chez Gégé"), "1"
        else:
            text, matches = self._rng.choice(OTHER), ""
        return {
            "title": text[:60],
            "text": f"{text} ({path} n°{n})",
            "guid": f"urn:crash-loop:{path}:{n}",
            "link": f"https://news.example.org{path}/{n}",
            "date": format_datetime(now),
            "matches": matches,
        }

    def expected_hits(self) -> set[tuple[str, str]]:
        """(source key, external id) of every matching item served so far."""
        with self._lock:
            return {
                (path.strip("/"), item["guid"])
                for path, items in self._items.items()
                for item in items
                if item["matches"]
            }


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    state: str
    incident_id: int | None
    message_ids: tuple[str, ...]
    sent_at: str | None
    possible_duplicate: bool
    attempts: int


@dataclass(slots=True)
class Snapshot:
    hits: set[tuple[str, str]]
    outbox: dict[int, OutboxRow]


def examine(db: Path, when: str) -> Snapshot:
    """Open the file as any SQLite client would after the crash: sound, constraints kept, then read it."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], f"{when}: {integrity[:5]}"
        violations = conn.execute("PRAGMA foreign_key_check").fetchall()
        assert violations == [], f"{when}: {violations[:5]}"
        pairs = conn.execute("SELECT s.key, h.external_id FROM hits h JOIN sources s ON s.id = h.source_id").fetchall()
        hits = {(key, external_id) for key, external_id in pairs}
        assert len(hits) == len(pairs), f"{when}: a hit was stored twice"
        outbox = {
            row[0]: OutboxRow(row[0], row[1], row[2], tuple(json.loads(row[3] or "[]")), row[4], bool(row[5]), row[6])
            for row in conn.execute(
                "SELECT id, state, incident_id, message_ids, sent_at, possible_duplicate, attempts FROM outbox"
            )
        }
    return Snapshot(hits, outbox)


@dataclass(slots=True)
class History:
    """What every kill left; each new snapshot must keep everything committed before."""

    last: Snapshot = field(default_factory=lambda: Snapshot(set(), {}))
    # (row id, attempt) a kill caught between claim and result: each is at most one send cut off
    # before `mark_sent` (a row still leased at the next kill is the same attempt, not a new send).
    caught: set[tuple[int, int]] = field(default_factory=set)
    kills_after_a_commit: int = 0

    def record(self, now: Snapshot, cycle: int) -> None:
        lost = self.last.hits - now.hits
        assert not lost, f"cycle {cycle}: {len(lost)} committed hits disappeared, e.g. {sorted(lost)[:3]}"
        gone = self.last.outbox.keys() - now.outbox.keys()
        assert not gone, f"cycle {cycle}: committed outbox rows {sorted(gone)} disappeared"
        for row_id, before in self.last.outbox.items():
            if before.state == "sent":
                assert now.outbox[row_id] == before, (
                    f"cycle {cycle}: delivered row changed: {before} -> {now.outbox[row_id]}"
                )
        if now.hits != self.last.hits or now.outbox != self.last.outbox:
            self.kills_after_a_commit += 1
        self.caught |= {(r.id, r.attempts) for r in now.outbox.values() if r.state == "sending"}
        self.last = now


def session_of(pid: int) -> int | None:
    """The session id of a live process (None: gone, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[3])


def session_members(session: int) -> set[int]:
    """Live processes of a session: a daemon started with start_new_session, and its helpers."""
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and session_of(int(p.name)) == session}


@contextlib.contextmanager
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemons appended to the yielded list are killed at the end with their helpers, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            for pid in session_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def launch(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "veille", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def write_config(tmp_path: Path, server: LocalServer, fake: FakeTelegram) -> Path:
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    per_contact = CLIENTS // CONTACTS
    contacts = "".join(
        f'[[contacts]]\nid = "k{k}"\nname = "K{k}"\nchannel = "telegram"\naddress = "{1001 + k}"\n'
        f"clients = {json.dumps([f'c{c}' for c in range(k * per_contact, (k + 1) * per_contact)])}\n\n"
        for k in range(CONTACTS)
    )
    # An RSS item has no reach figures, so the angriest scores a risk of about 0.4: the thresholds
    # are lowered for every angry item to be new evidence (an incident update every other start).
    # lease: the minimum, so rows a kill left in `sending` are taken over within the test.
    extra = f"""
[daemon]
startup_spread = "0s"
parse_workers = 1
health_file = "{tmp_path / "health.json"}"

[alerting]
group_wait = "0s"
group_interval = "2s"
risk_threshold = 0.3
critical_risk = 0.35
lease = "5s"
send_timeout = "4s"
digest_at = "off"

{contacts}
[telegram]
token_env = "{TOKEN_ENV}"
api_base_url = "{fake.base_url}"
commands = false
per_chat_interval = 0.0
"""
    feeds = {f"c{c}": [server.url(GrowingFeeds.path(c, f)) for f in range(FEEDS_PER_CLIENT)] for c in range(CLIENTS)}
    # config_text names a client's sources f0, f1...: the source key "c3/f1" is also the feed's path.
    path = tmp_path / "config.toml"
    path.write_text(config_text(db_url, feeds, extra=extra, every="30s"), encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return path


def kill_in_burst(process: subprocess.Popen[bytes], polled: threading.Event, delay: float, log: Path) -> set[int]:
    """SIGKILL `delay` seconds after the start's first poll (`polled`, cleared before the start).

    Returns the helper processes the daemon had at that moment."""
    while not polled.wait(0.2):
        assert process.poll() is None, log.read_text()[-3000:]
    time.sleep(delay)
    helpers = session_members(process.pid) - {process.pid}
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    return helpers


def drained(db: Path, expected: set[tuple[str, str]]) -> bool:
    """Every item served is stored, every incident notified of its last change, every row delivered."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        stored = conn.execute("SELECT count(*) FROM hits").fetchone()[0]
        behind = conn.execute("SELECT count(*) FROM incidents WHERE version > notified_version").fetchone()[0]
        undelivered = conn.execute("SELECT count(*) FROM outbox WHERE state != 'sent'").fetchone()[0]
    return stored >= len(expected) and behind == 0 and undelivered == 0


def test_g3_fifty_sigkills_during_write_bursts_lose_nothing_committed(tmp_path: Path, server: LocalServer) -> None:
    rng = random.Random(SEED)
    feeds = GrowingFeeds(server, random.Random(SEED + 1))
    db, log = tmp_path / "veille.db", tmp_path / "daemon.log"
    history = History()
    helpers: set[int] = set()
    with FakeTelegram() as fake:
        fake.hang_next("sendMessage", ANSWER_LATE, times=10_000)  # every message of the test
        config = write_config(tmp_path, server, fake)
        env = {TOKEN_ENV: fake.token}
        with daemons() as started:
            for cycle in range(CYCLES):
                feeds.polled.clear()
                started.append(launch(config, log, env))
                helpers |= kill_in_burst(started[-1], feeds.polled, rng.uniform(0, KILL_WINDOW), log)
                history.record(examine(db, f"after kill {cycle}"), cycle)

            # The kills landed in the bursts, and some caught rows between claim and result.
            assert history.kills_after_a_commit >= CYCLES // 2, f"{history.kills_after_a_commit} kills after a commit"
            assert history.caught, "no kill caught a row between claim and result"
            assert helpers, "the daemon's helper processes were never seen"

            feeds.frozen = True
            expected = feeds.expected_hits()
            final = launch(config, log, env)
            started.append(final)
            assert wait_for(lambda: drained(db, expected), 60), log.read_text()[-3000:]
            final.send_signal(signal.SIGTERM)
            assert final.wait(timeout=20) == 0, log.read_text()[-3000:]
            end = examine(db, "after the clean stop")
            history.record(end, CYCLES)

        # Helpers of killed daemons exit when their pipes close: none is left behind.
        sessions = {p.pid for p in started}
        assert wait_for(lambda: not any(session_of(pid) in sessions for pid in helpers), 10)
        assert end.hits == expected
        # Nothing in the log but the daemons' own records: no helper orphaned by a kill died noisily.
        assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")
        check_deliveries(end, history, fake)


def check_deliveries(end: Snapshot, history: History, fake: FakeTelegram) -> None:
    """At least once for every row; a second delivery only in the window the outbox documents (A4)."""
    rows = list(end.outbox.values())
    assert {r.state for r in rows} == {"sent"}
    accepted: dict[str, Call] = {str(c.params["message_id"]): c for c in fake.accepted if c.method == "sendMessage"}
    recorded = {mid for r in rows for mid in r.message_ids}
    assert recorded <= accepted.keys(), "a row was marked sent without Telegram accepting it"
    tagged = [r for r in rows if r.possible_duplicate]
    caught = Counter(row_id for row_id, _attempt in history.caught)
    assert {r.id for r in tagged} <= caught.keys(), "possible_duplicate outside the crash window"
    for row in tagged:
        assert any("doublon possible" in str(accepted[m].params["text"]) for m in row.message_ids)
    # A message Telegram accepted that no row recorded: a send a kill cut off before `mark_sent`. A
    # kill cuts off at most the send of the attempt it caught, and a row it caught is resent tagged;
    # so an incident has at most as many such messages as caught attempts of its tagged rows.
    unrecorded = [accepted[m] for m in accepted.keys() - recorded]
    assert len(unrecorded) <= sum(caught[r.id] for r in tagged)
    cut_off: Counter[str] = Counter()
    for row in tagged:
        cut_off[f"#INC-{row.incident_id}"] += caught[row.id]
    mentions = Counter(tag for call in unrecorded for tag in set(TAG.findall(str(call.params["text"]))))
    assert all(count <= cut_off[tag] for tag, count in mentions.items()), (mentions, cut_off)
