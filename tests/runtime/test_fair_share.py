"""Scale-out: live daemons share the sources fairly, one daemon runs each stream consumer.

The share rules on a fake clock (SQLite and PostgreSQL), then three real daemons on PostgreSQL over
local feeds: each takes its share within two lease periods, a killed one's share moves to the others,
and a returning one gets its share back; every feed is fetched by one daemon per round.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.runtime.test_daemon import ROOT, wait_for
from tests.runtime.test_leases import held_by
from tests.support.daemon import config_text, make_config
from tests.support.fake_jetstream import FakeJetstream, post_event
from tests.support.feedgen import feed_items, rss
from tests.support.server import LocalServer, Response
from veille.cli import cli
from veille.core.clock import FakeClock, SystemClock
from veille.runtime.leases import LeaseUnits, SourceLeases, fair_share, lease_units, pick_excess, spread_order
from veille.runtime.pipeline import Pipeline
from veille.store import leases as lease_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import hits, sources

LEASE = timedelta(minutes=2)
HOST = "share-test-host"  # owners of another host: only expiry frees their leases


def test_fair_share_rounds_up_and_weighs_capacity() -> None:
    assert fair_share(300, 1.0, [1.0, 1.0]) == 100
    assert fair_share(301, 1.0, [1.0, 1.0]) == 101  # every unit has a holder
    assert fair_share(300, 2.0, [1.0]) == 200
    assert fair_share(300, 1.0, []) == 300
    assert fair_share(0, 1.0, [1.0]) == 0


def test_claims_and_hand_overs_keep_hosts_spread() -> None:
    spread = {1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "c"}
    assert spread_order([1, 2, 3, 4, 5, 6], held=[], spread=spread) == [1, 4, 6, 2, 5, 3]
    assert spread_order([2, 3, 5, 6], held=[1, 4], spread=spread)[0] == 6  # host c: none held yet
    assert sorted(pick_excess([1, 2, 3, 4], 2, spread)) == [2, 3]  # from host a, which it holds most of
    assert pick_excess([1, 2], 0, spread) == []


def test_a_stream_group_is_one_unit_led_by_its_lowest_id() -> None:
    units = lease_units({"s1": (7, "h"), "s2": (3, "h"), "j1": (9, "j"), "j2": (4, "j")}, [["j1", "j2"]])
    assert sorted(units.ids) == [3, 4, 7]
    assert units.followers == {4: [9]}


def make_ids(tmp_path: Path, db_url: str, count: int) -> list[int]:
    config = make_config(tmp_path, db_url, {"resto": [f"https://h{n % 4}.example.org/f{n}" for n in range(count)]})
    engine = make_engine(db_url)
    upgrade(engine)
    pipeline = Pipeline(config, engine, FakeClock(), http=None)
    pipeline.load()
    engine.dispose()
    return sorted(r.ref.id for r in pipeline.runtimes.values())


def counts(db_url: str) -> Counter[str]:
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        owners = [owner for (owner,) in conn.execute(select(sources.c.lease_owner)) if owner]
    engine.dispose()
    return Counter(owners)


def test_live_daemons_even_out_their_shares_and_take_a_dead_ones(tmp_path: Path, db_url: str) -> None:
    """a alone holds all 30; b and c arrive and within two renewals each holds 10; c stops renewing
    (killed): once its leases run out a and b hold 15 each; c comes back: 10 each again. A unit being
    polled is never handed over."""
    clock = FakeClock()
    ids = make_ids(tmp_path, db_url, 30)
    units = LeaseUnits(ids=ids, spread={i: f"h{i % 4}" for i in ids})
    engine = make_engine(db_url)
    daemons = {n: SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:{n}:x") for n in "abc"}

    def renew(*names: str, busy: tuple[int, ...] = ()) -> None:
        for name in names:
            daemons[name].publish(daemons[name].take(units, busy=busy))
        clock.advance(LEASE.total_seconds() / 3)

    renew("a")
    assert counts(db_url) == {f"{HOST}:a:x": 30}
    renew("b", "c")  # they see a; a still holds everything
    renew("a", "b", "c")  # a hands over 20 (it saw b and c), b and c claim theirs
    renew("a", "b", "c")
    assert sorted(counts(db_url).values()) == [10, 10, 10]
    assert len(set(ids) - set().union(*(d.held for d in daemons.values()))) == 0

    for _ in range(4):  # c is dead: no renewal; after a lease its heartbeat and leases are gone
        renew("a", "b")
    assert sorted(counts(db_url)[f"{HOST}:{n}:x"] for n in "ab") == [15, 15]

    renew("c")  # c returns with nothing
    renew("a", "b", "c")
    renew("a", "b", "c")
    assert sorted(counts(db_url).values()) == [10, 10, 10]

    busy = tuple(sorted(daemons["a"].held))[:10]  # a's polls in flight: when a must shrink, none of these go
    daemons["d"] = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:d:x")
    renew("d")
    renew("a", busy=busy)
    assert set(busy) <= daemons["a"].held and len(daemons["a"].held) == 10  # share 8: nothing idle to give back
    engine.dispose()


def test_a_daemon_with_other_sources_does_not_shrink_the_others_shares(tmp_path: Path, db_url: str) -> None:
    """A config being rolled out: a lists 3 sources, b lists 6. b does not count a in its share, so the
    3 sources only b lists always have a holder."""
    clock = FakeClock()
    ids = make_ids(tmp_path, db_url, 6)
    engine = make_engine(db_url)
    a = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:a:x")
    b = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:b:x")
    a.publish(a.take(ids[:3]))
    for _ in range(3):
        b.publish(b.take(ids))
        a.publish(a.take(ids[:3]))
    assert a.held == frozenset(ids[:3]) and b.held == frozenset(ids[3:])
    engine.dispose()


def test_veille_daemons_lists_the_live_daemons(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their share by capacity, the sources each holds, a silent one marked so; in French by default."""
    ids = make_ids(tmp_path, db_url, 6)
    engine = make_engine(db_url)
    clock = SystemClock()
    for name, capacity in (("a", 1.0), ("b", 2.0)):
        leases = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:{name}:x", capacity=capacity)
        leases.publish(leases.take(ids))
    with write_tx(engine) as conn:  # c ran yesterday and was killed
        lease_store.heartbeat(
            conn,
            f"{HOST}:c:x",
            host=HOST,
            pid=1,
            version="0.0.9",
            capacity=1.0,
            now=clock.now() - timedelta(days=1),
            held=0,
            units_hash="",
        )
    engine.dispose()
    config = tmp_path / "config.toml"
    config.write_text(config_text(db_url, {"resto": ["https://example.org/f0"]}), encoding="utf-8")
    monkeypatch.setenv("VEILLE_LANG", "fr")
    result = CliRunner().invoke(cli, ["daemons", "--config", str(config), "--format", "json"], catch_exceptions=False)
    rows = {row["owner"]: row for row in json.loads(result.output)}
    assert rows[f"{HOST}:a:x"]["share"] == pytest.approx(1 / 3, abs=0.01) and rows[f"{HOST}:a:x"]["live"]
    assert rows[f"{HOST}:b:x"]["share"] == pytest.approx(2 / 3, abs=0.01)
    assert rows[f"{HOST}:a:x"]["held"] + rows[f"{HOST}:b:x"]["held"] == 6
    assert not rows[f"{HOST}:c:x"]["live"] and rows[f"{HOST}:c:x"]["share"] == 0
    table = CliRunner().invoke(cli, ["daemons", "--config", str(config)], catch_exceptions=False).output
    assert "en marche" in table and "muet" in table and "running" not in table
    listed = CliRunner().invoke(cli, ["sources", "--config", str(config), "--format", "json"], catch_exceptions=False)
    holders = Counter(row["lease_owner"] for row in json.loads(listed.output))  # each source says who polls it
    assert holders == {owner: row["held"] for owner, row in rows.items() if row["held"]}


def fleet_config(tmp_path: Path, name: str, pg_url: str, server: LocalServer, feeds: int) -> Path:
    extra = (
        f'[daemon]\nstartup_spread = "2s"\nlease = "6s"\nconcurrency = 20\nparse_workers = 1\n'
        f'health_file = "{tmp_path / name}-health.json"\n'
    )
    urls = [server.url(f"/f{n}") for n in range(feeds)]
    text = config_text(pg_url, {"resto": urls}, extra=extra, every="30s")
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.pg
def test_three_daemons_on_postgresql_share_300_feeds_and_survive_a_kill(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    feeds = 300
    for n in range(feeds):
        server.route(f"/f{n}", Response(200, rss(feed_items(n, 3)), {"Content-Type": "application/rss+xml"}))
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    processes: dict[str, subprocess.Popen[str]] = {}
    outputs = {name: tmp_path / f"{name}.out" for name in "abc"}

    def start(name: str) -> None:
        config = fleet_config(tmp_path, name, pg_url, server, feeds)
        with outputs[name].open("w") as output:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "veille", "run", "--config", str(config)],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def shares() -> list[int]:
        held = Counter(owner for owner in held_by(pg_url).values() if owner)
        return sorted(held.values())

    def logs() -> str:
        return "\n".join(f"--- {n}\n{p.read_text(encoding='utf-8')[-3000:]}" for n, p in outputs.items() if p.exists())

    def even(count: int) -> bool:
        values = shares()
        return len(values) == count and all(abs(v - feeds / count) <= feeds / count * 0.1 for v in values)

    try:
        for name in "abc":
            start(name)
        started = time.monotonic()
        assert wait_for(lambda: even(3), 2 * 6 + 60), (shares(), logs())  # two lease periods after all are up
        print(f"even shares {time.monotonic() - started:.1f}s after the three starts: {shares()}")
        mark = len(server.requests)
        time.sleep(30)  # one round (every = 30 s)
        fetched = Counter(r.path for r in server.requests[mark:])
        assert max(fetched.values()) <= 2, fetched.most_common(3)  # one daemon per round (two at a round edge)

        processes["c"].send_signal(signal.SIGKILL)
        processes["c"].wait(timeout=10)
        killed = time.monotonic()
        assert wait_for(lambda: even(2), 6 + 4), (shares(), logs())  # within a lease (+ one renewal)
        print(f"c's share moved {time.monotonic() - killed:.1f}s after SIGKILL: {shares()}")
        mark = len(server.requests)
        time.sleep(6 + 30 + 2)  # a lease and a round: every feed is polled again, none missed by more than a lease
        assert {r.path for r in server.requests[mark:]} >= {f"/f{n}" for n in range(feeds)}

        start("c")
        assert wait_for(lambda: even(3), 2 * 6 + 20), (shares(), logs())
        engine = make_engine(pg_url)
        with read_conn(engine) as conn:
            stored = conn.execute(select(hits.c.external_id, hits.c.source_id)).all()
        engine.dispose()
        assert len(stored) == len(set(stored))  # nothing stored twice
        for name in "abc":
            processes[name].send_signal(signal.SIGTERM)
        for name in "abc":
            assert processes[name].wait(timeout=20) == 0, logs()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


class ThreadedJetstream:
    """The local Jetstream on its own event loop in a thread, for tests that run daemon processes."""

    def __init__(self, fake: FakeJetstream) -> None:
        self.fake = fake
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.fake.running():
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> FakeJetstream:
        self._thread.start()
        assert self._ready.wait(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.mark.slow
@pytest.mark.pg
def test_one_daemon_runs_the_jetstream_consumer_and_a_takeover_replays_the_gap(tmp_path: Path, pg_url: str) -> None:
    """Two daemons, one Jetstream URL fed to two clients: one connection at any time. The holder is killed;
    a post sent while no consumer runs is read by the new holder (stored cursor minus the rewind), and
    the posts both holders read are stored once."""
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    fake = FakeJetstream(events=[post_event(1, "super soirée chez gégé hier")], live=True)
    processes: dict[str, subprocess.Popen[str]] = {}
    outputs = {name: tmp_path / f"{name}.out" for name in "ab"}

    def logs() -> str:
        return "\n".join(f"--- {n}\n{p.read_text(encoding='utf-8')[-3000:]}" for n, p in outputs.items() if p.exists())

    def stored(text: str) -> list[tuple[str, int]]:
        engine = make_engine(pg_url)
        with read_conn(engine) as conn:
            rows = conn.execute(select(hits.c.external_id, hits.c.source_id).where(hits.c.text.contains(text))).all()
        engine.dispose()
        return [(external_id, source_id) for external_id, source_id in rows]

    with ThreadedJetstream(fake):
        for name in "ab":
            parts = [
                f'[database]\nurl = "{pg_url}"\n',
                "[http]\nallow_private_addresses = true\n",
                f'[daemon]\nlease = "3s"\nhealth_file = "{tmp_path / name}-health.json"\n',
            ]
            for client, keyword in (("resto", "chez gégé"), ("tapis", "tapis royal")):
                parts.append(
                    f'[[clients]]\nid = "{client}"\nname = "{client}"\nkeywords = ["{keyword}"]\n'
                    f'[[clients.sources]]\nkind = "bluesky-jetstream"\nid = "js"\nurl = "{fake.url}"\n'
                )
            config = tmp_path / f"{name}.toml"
            config.write_text("\n".join(parts), encoding="utf-8")
            with outputs[name].open("w") as output:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "veille", "run", "--config", str(config)],
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            if name == "a":
                assert wait_for(lambda: fake.open_now == 1 and stored("super soirée"), 60), logs()
        try:
            assert wait_for(lambda: "veille started" in outputs["b"].read_text(encoding="utf-8"), 60), logs()
            time.sleep(3)  # b runs its lease job a few times: it never opens a second connection
            assert fake.most_open == 1, logs()
            processes["a"].send_signal(signal.SIGKILL)
            processes["a"].wait(timeout=10)
            assert wait_for(lambda: fake.open_now == 0, 5)
            fake.events.append(post_event(2, "tapis royal: livraison jamais arrivée, arnaque"))  # nobody reads it now
            assert wait_for(lambda: stored("livraison jamais"), 30), logs()  # b took over and read the gap
            assert "this daemon runs its consumer" in outputs["b"].read_text(encoding="utf-8")
            assert fake.most_open == 1
            time.sleep(1)
            for text in ("super soirée", "livraison jamais"):
                rows = stored(text)
                assert len(rows) == 1, (text, rows)  # one client matched each, stored once despite the rewind
            processes["b"].send_signal(signal.SIGTERM)
            assert processes["b"].wait(timeout=20) == 0, logs()
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)


def test_a_killed_daemon_of_this_host_counts_in_no_share(tmp_path: Path, db_url: str) -> None:
    """systemd restarts a killed daemon: the dead one's heartbeat (no leases held) must not halve the new
    one's share until it ages out; it is forgotten at once."""
    host = socket.gethostname()[:30]
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = f"{host}:{int(gone.stdout)}:old"
    clock = FakeClock()
    ids = make_ids(tmp_path, db_url, 24)
    engine = make_engine(db_url)
    with write_tx(engine) as conn:
        lease_store.heartbeat(
            conn,
            dead,
            host=host,
            pid=int(gone.stdout),
            version="x",
            capacity=1.0,
            now=clock.now(),
            held=0,
            units_hash=LeaseUnits(ids=ids).signature(),
        )
    leases = SourceLeases(engine, clock, lease=LEASE, owner=f"{host}:{os.getpid()}:new")
    lease_round = leases.take(ids)
    assert lease_round.share == 24 and len(lease_round.held) == 24
    with read_conn(engine) as conn:
        assert [d.owner for d in lease_store.all_daemons(conn)] == [leases.owner]
    engine.dispose()
