"""G7: two daemons on one database. Each source is polled by the holder of its lease; a dead
daemon's sources are taken over once its leases expire (at once after a clean stop)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.runtime.test_daemon import ROOT, wait_for
from tests.support.daemon import config_text, make_config
from tests.support.feedgen import feed_items, rss
from tests.support.server import LocalServer, Request, Response
from veille.config import Config
from veille.core.clock import FakeClock, SystemClock
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.leases import SourceLeases, dead_owners
from veille.runtime.once import skip_leased
from veille.runtime.pipeline import Pipeline
from veille.store import leases as lease_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import outbox, sources

LEASE = timedelta(minutes=2)
HOST = "lease-test-host"  # owners of another host: only expiry frees their leases


def feeds_config(tmp_path: Path, db_url: str, count: int, server: LocalServer | None = None) -> Config:
    urls = [server.url(f"/f{n}") if server else f"https://example.org/f{n}" for n in range(count)]
    return make_config(tmp_path, db_url, {"resto": urls})


def source_ids(config: Config) -> list[int]:
    engine = make_engine(config.database_url)
    pipeline = Pipeline(config, engine, FakeClock(), http=None)
    pipeline.load()
    engine.dispose()
    return sorted(r.ref.id for r in pipeline.runtimes.values())


def owners(db_url: str) -> dict[int, str | None]:
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        rows = dict(conn.execute(select(sources.c.id, sources.c.lease_owner)).all())
    engine.dispose()
    return rows


def test_claim_renew_expiry_and_release_on_a_fake_clock(tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    ids = source_ids(feeds_config(tmp_path, db_url, 4))
    a, b = f"{HOST}:1:aaaa", f"{HOST}:2:bbbb"
    engine = make_engine(db_url)

    def step(owner: str, *, claim: bool = True) -> set[int]:
        with write_tx(engine) as conn:
            held = lease_store.renew(conn, owner, ids, clock.now(), LEASE)
            return held | (lease_store.claim(conn, owner, ids, clock.now(), LEASE) if claim else set())

    try:
        assert step(a) == set(ids)  # t=0: a takes every free source
        assert step(b) == set()  # b gets none while a's leases run
        clock.advance(40)
        assert step(a) == set(ids)  # t=40: a renews (until t=160)
        clock.advance(100)
        assert step(b) == set()  # t=140: a renewed at 40, still its own
        with read_conn(engine) as conn:
            assert lease_store.held_elsewhere(conn, b, ids, clock.now()) == dict.fromkeys(ids, a)
        clock.advance(21)
        assert step(b) == set(ids)  # t=161: a stopped renewing at 40; b takes over
        assert step(a, claim=False) == set()  # a comes back: its renewal finds them lost
        assert step(a) == set()
        assert set(owners(db_url).values()) == {b}
        with write_tx(engine) as conn:
            assert lease_store.release(conn, b) == len(ids)  # clean stop
        assert set(owners(db_url).values()) == {None}
        assert step(a) == set(ids)  # the other daemon takes them at its next renewal
        with write_tx(engine) as conn:  # an owner known to be dead is taken over at once
            assert lease_store.claim(conn, b, ids[:2], clock.now(), LEASE, dead={a}) == set(ids[:2])
        assert owners(db_url) == {**dict.fromkeys(ids, a), **dict.fromkeys(ids[:2], b)}
    finally:
        engine.dispose()


def test_a_claim_only_takes_the_sources_it_names(tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """A daemon whose config lists fewer sources claims only those; another takes the rest."""
    ids = source_ids(feeds_config(tmp_path, db_url, 4))
    engine = make_engine(db_url)
    try:
        with write_tx(engine) as conn:
            assert lease_store.claim(conn, "h:1:a", ids[:2], clock.now(), LEASE) == set(ids[:2])
            assert lease_store.claim(conn, "h:2:b", ids, clock.now(), LEASE) == set(ids[2:])
    finally:
        engine.dispose()


def test_concurrent_claims_on_postgresql_never_share_and_never_wait(
    tmp_path: Path, pg_url: str, clock: FakeClock
) -> None:
    """A claim in progress (uncommitted) is skipped by the other daemon's claim, not waited for."""
    ids = source_ids(feeds_config(tmp_path, pg_url, 6))
    engine = make_engine(pg_url)
    try:
        with engine.connect() as first, first.begin():
            assert lease_store.claim(first, "h:1:a", ids[:4], clock.now(), LEASE) == set(ids[:4])
            with engine.connect() as second, second.begin():
                second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")  # a wait would fail the test
                assert lease_store.claim(second, "h:2:b", ids, clock.now(), LEASE) == set(ids[4:])
        clock.advance(LEASE.total_seconds() + 1)  # both expired: a second round, again concurrent
        with engine.connect() as first, first.begin():
            taken_a = lease_store.claim(first, "h:1:a", ids, clock.now(), LEASE)
            with engine.connect() as second, second.begin():
                second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                taken_b = lease_store.claim(second, "h:2:b", ids, clock.now(), LEASE)
        assert taken_a == set(ids) and taken_b == set()
        assert set(owners(pg_url).values()) == {"h:1:a"}
    finally:
        engine.dispose()


def test_dead_owners_are_processes_of_this_host_that_are_gone() -> None:
    host = socket.gethostname()[:30]
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(gone.stdout)
    me = f"{host}:{os.getpid()}:mine"
    owners_seen = {
        me,
        f"{host}:{dead_pid}:old",
        f"{host}:{os.getpid()}:prevlife",
        f"{host}:{os.getppid()}:live",
        f"elsewhere:{dead_pid}:x",
        "garbage",
    }
    assert dead_owners(owners_seen, me) == {f"{host}:{dead_pid}:old", f"{host}:{os.getpid()}:prevlife"}


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0), clock=clock)
    yield client
    await client.aclose()


def etag_feed(body: str) -> object:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(304, b"", {"ETag": '"v1"'})
        return Response(200, body, {"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    return handler


async def leased_pipelines(config: Config, clock: FakeClock, http: HttpClient) -> list[Pipeline]:
    """Daemons a and b on one database: each pipeline polls what its leases hold."""
    pipelines = []
    for name in ("a", "b"):
        pipeline = Pipeline(config, make_engine(config.database_url), clock, http, rng=random.Random(1))
        pipeline.load()
        pipeline.leases = SourceLeases(pipeline.engine, clock, lease=LEASE, owner=f"{HOST}:{name}:x")
        await pipeline.start()
        pipelines.append(pipeline)
    return pipelines


def renew(pipeline: Pipeline, *, takeover: bool) -> list[str]:
    """What the daemon's lease job does every lease/3."""
    assert pipeline.leases is not None
    lease_round = pipeline.leases.take([r.ref.id for r in pipeline.runtimes.values()])
    adopted = pipeline.adopt(lease_round.acquired, takeover=takeover)
    pipeline.leases.publish(lease_round)
    return adopted


async def test_a_takeover_polls_from_the_stored_state_not_a_stale_copy(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """b loaded its sources before a polled them; when it takes over it must send a's ETag (a 304),
    not re-read the feed from its own stale copy, and wait for the source's interval after a's poll."""
    server.route("/f0", etag_feed(rss(feed_items(0, 10))))  # type: ignore[arg-type]
    config = feeds_config(tmp_path, db_url, 1, server)
    pipelines = await leased_pipelines(config, clock, http)
    a, b = pipelines
    key = next(iter(a.runtimes))
    try:
        assert renew(a, takeover=False) == [key]
        assert renew(b, takeover=False) == []
        assert await b.poll(key, force=True) is None  # not b's: no request
        first = await a.poll(key)
        assert first is not None and first.new_hits > 0
        assert len(server.requests_to("/f0")) == 1
        assert b.runtimes[key].state.etag is None  # b's copy is stale

        clock.advance(LEASE.total_seconds() + 1)  # a froze at t=0 and never renewed
        assert await a.poll(key, force=True) is None  # a's own lease ran out: it stops polling too
        assert renew(b, takeover=True) == [key]
        runtime = b.runtimes[key]
        assert runtime.state.etag == '"v1"'
        every = config.sources[0].every
        assert runtime.next_poll_at == first.started_at + every  # a's last poll + the interval
        assert not b.is_due(runtime) and await b.poll(key) is None
        assert renew(a, takeover=True) == [] and not a.leases.holds(a.runtimes[key].ref.id)  # type: ignore[union-attr]

        clock.advance(every.total_seconds() - LEASE.total_seconds())
        assert renew(b, takeover=True) == []  # renewed, nothing new to adopt
        again = await b.poll(key)
        assert again is not None and again.outcome is not None and again.outcome.not_modified
        assert server.requests_to("/f0")[-1].headers.get("If-None-Match") == '"v1"'
        assert len(server.requests_to("/f0")) == 2
    finally:
        for pipeline in pipelines:
            await pipeline.stop()
            pipeline.engine.dispose()


ANGRY = [
    "Intoxication alimentaire après un repas chez Gégé, honte à eux, scandale !",
    "Chez Gégé : plus jamais, service odieux et nourriture avariée, je porte plainte",
    "Chez Gégé m'a rendu malade, arnaque totale, fuyez, c'est dégueulasse",
]
ALERTS = """
[alerting]
group_wait = "0s"
digest_at = "off"

[[contacts]]
id = "camille"
name = "Camille"
channel = "console"
address = ""
clients = ["resto"]
low_urgency_rings = true
"""


def daemon_config(tmp_path: Path, name: str, db_url: str, server: LocalServer, feeds: int) -> Path:
    extra = f'[daemon]\nstartup_spread = "1s"\nlease = "3s"\nhealth_file = "{tmp_path / name}-health.json"\n' + ALERTS
    text = config_text(db_url, {"resto": [server.url(f"/f{n}") for n in range(feeds)]}, extra=extra, every="30s")
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def held_by(db_url: str) -> dict[str, str | None]:
    """Source key -> the owner of its live lease."""
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        rows = conn.execute(select(sources.c.key, sources.c.lease_owner, sources.c.lease_until)).all()
    engine.dispose()
    now = datetime.now(UTC)
    return {key: owner if until is not None and until > now else None for key, owner, until in rows}


def outbox_rows(db_url: str) -> list[tuple[str, int]]:
    engine = make_engine(db_url)
    with read_conn(engine) as conn:
        rows = [(state, attempts) for state, attempts in conn.execute(select(outbox.c.state, outbox.c.attempts))]
    engine.dispose()
    return rows


@pytest.mark.slow
def test_two_daemons_on_postgresql_split_the_sources_and_one_takes_over_when_the_other_freezes(
    tmp_path: Path, pg_url: str, server: LocalServer
) -> None:
    """a lists f0-f2, b lists f0-f5: b polls only f3-f5 while a runs. a freezes (SIGSTOP): b holds
    all six once a's leases expire (lease + one renewal) and polls f0-f2 when due (a's last poll +
    30 s); a wakes up, finds its leases lost and polls nothing; kill -9 a changes nothing. The alert
    raised by the angry posts of f0 is printed by one daemon only."""
    now = datetime.now(UTC)
    angry = [
        {
            "title": text[:60],
            "text": text,
            "guid": f"urn:buzz:{n}",
            "link": f"https://news.example.org/{n}",
            "date": format_datetime(now - timedelta(minutes=n)),
        }
        for n, text in enumerate(ANGRY)
    ]
    for n in range(6):
        body = rss(feed_items(n, 6) + (angry if n == 0 else []))
        server.route(f"/f{n}", Response(200, body, {"Content-Type": "application/rss+xml"}))
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    configs = {name: daemon_config(tmp_path, name, pg_url, server, feeds) for name, feeds in (("a", 3), ("b", 6))}
    outputs = {name: tmp_path / f"{name}.out" for name in configs}
    processes: dict[str, subprocess.Popen[str]] = {}

    def start(name: str) -> None:
        with outputs[name].open("w") as output:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "veille", "run", "--config", str(configs[name])],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def fetches(n: int) -> list[float]:
        return [r.at for r in server.requests_to(f"/f{n}")]

    def log(name: str) -> str:
        return outputs[name].read_text(encoding="utf-8")

    a_keys = {f"resto/f{n}" for n in range(3)}
    b_keys = {f"resto/f{n}" for n in range(3, 6)}
    try:
        start("a")
        assert wait_for(lambda: {k for k, o in held_by(pg_url).items() if o} == a_keys, 30), log("a")
        [owner_a] = set(held_by(pg_url).values())
        start("b")
        assert wait_for(lambda: all(fetches(n) for n in range(6)), 30), log("b")
        holders = held_by(pg_url)
        assert {holders[k] for k in a_keys} == {owner_a}
        assert len({holders[k] for k in b_keys}) == 1 and holders["resto/f3"] not in (None, owner_a)
        assert wait_for(lambda: outbox_rows(pg_url) and all(s == "sent" for s, _ in outbox_rows(pg_url)), 20), (
            outbox_rows(pg_url),
            log("a"),
            log("b"),
        )
        time.sleep(2)  # both daemons run their lease, alerting and poll jobs meanwhile
        assert [len(fetches(n)) for n in range(6)] == [1] * 6  # each feed fetched by one daemon only

        processes["a"].send_signal(signal.SIGSTOP)  # frozen, not dead: only its leases' expiry frees f0-f2
        frozen = time.monotonic()
        assert wait_for(lambda: set(held_by(pg_url).values()) == {holders["resto/f3"]}, 3 + 1 + 2), held_by(pg_url)
        taken_after = time.monotonic() - frozen
        assert taken_after >= 3 * 5 / 6 - 1  # not before a's lease ran out (a renewed at most 1 s before)
        processes["a"].send_signal(signal.SIGCONT)  # a wakes up: its leases are gone, it must not poll f0-f2
        assert wait_for(lambda: all(len(fetches(n)) >= 2 for n in range(6)), 45), (
            [fetches(n) for n in range(6)],
            log("a"),
            log("b"),
        )
        for n in range(3):  # taken over by b when due: a's poll + 30 s, not at once
            first, second = fetches(n)
            assert second - first >= 29, (n, second - first)
        time.sleep(1)
        assert [len(fetches(n)) for n in range(6)] == [2] * 6  # a, awake again, polled nothing
        assert "lost the lease of 3 sources" in log("a")

        processes["a"].kill()  # kill -9 while b holds everything: nothing moves
        processes["a"].wait(timeout=10)
        time.sleep(1.5)
        assert set(held_by(pg_url).values()) == {holders["resto/f3"]}

        sent = [row for row in outbox_rows(pg_url) if row[0] == "sent"]
        printed = log("a").count("--- camille") + log("b").count("--- camille")
        assert sent and printed == len(sent) and all(attempts == 1 for _, attempts in sent)

        processes["b"].terminate()
        assert processes["b"].wait(timeout=15) == 0, log("b")
        assert set(held_by(pg_url).values()) == {None}  # released at a clean stop
        assert "released 6 source leases" in log("b")
        print(f"takeover {taken_after:.1f}s after SIGSTOP")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_a_holder_frozen_inside_its_lease_transaction_does_not_block_the_takeover(
    tmp_path: Path, pg_url: str, clock: FakeClock
) -> None:
    """PostgreSQL keeps a frozen session's row locks, and claims skip locked rows: the session is
    ended after a lease of idleness in the lease transaction, and the rows are taken over."""
    ids = source_ids(feeds_config(tmp_path, pg_url, 3))
    lease = timedelta(seconds=1)
    engine = make_engine(pg_url)
    try:
        frozen = engine.connect()
        frozen.begin()
        lease_store.limit_idle(frozen, lease)
        assert lease_store.claim(frozen, "h:1:a", ids, clock.now(), lease) == set(ids)  # ...then freezes
        with write_tx(engine) as conn:
            assert lease_store.claim(conn, "h:2:b", ids, clock.now(), lease) == set()  # locked: skipped
        time.sleep(lease.total_seconds() + 0.5)
        with write_tx(engine) as conn:
            assert lease_store.claim(conn, "h:2:b", ids, clock.now(), lease) == set(ids)
        frozen.invalidate()
    finally:
        engine.dispose()


def test_run_once_skips_the_sources_a_live_daemon_holds(tmp_path: Path, db_url: str) -> None:
    """`veille run --once` beside a running daemon: it polls only what no live daemon holds; a lease
    left by a crashed process of this host does not hold it back."""
    config = feeds_config(tmp_path, db_url, 4)
    engine = make_engine(db_url)
    pipeline = Pipeline(config, engine, SystemClock(), http=None)
    pipeline.load()
    keys = sorted(pipeline.runtimes)
    ids = [pipeline.runtimes[k].ref.id for k in keys]
    crashed = f"{socket.gethostname()[:30]}:{os.getpid()}:previous-life"
    try:
        with write_tx(engine) as conn:
            now = SystemClock().now()
            lease_store.claim(conn, f"{HOST}:7:live", ids[:2], now, LEASE)
            lease_store.claim(conn, crashed, ids[2:3], now, LEASE)
        assert skip_leased(engine, pipeline, keys) == keys[2:]
    finally:
        engine.dispose()


def test_a_source_taken_back_after_failed_renewals_is_read_again(tmp_path: Path, db_url: str, clock: FakeClock) -> None:
    """a's renewals fail (database unreachable from a) past its lease; b takes the source, polls it
    (a new ETag) and stops. When a claims it back, a still lists it as held, yet must read it again."""
    from sqlalchemy import update

    ids = source_ids(feeds_config(tmp_path, db_url, 1))
    engine = make_engine(db_url)
    a = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:1:a")
    b = SourceLeases(engine, clock, lease=LEASE, owner=f"{HOST}:2:b")
    try:
        a.publish(first := a.take(ids))
        assert set(first.acquired) == set(ids) and a.holds(ids[0])
        clock.advance(LEASE.total_seconds() + 1)
        assert not a.holds(ids[0])  # a's lease ran out unrenewed: a stops polling it
        b.publish(b.take(ids))
        with write_tx(engine) as conn:  # b's poll
            conn.execute(update(sources).where(sources.c.id == ids[0]).values(etag='"b"'))
        b.release()
        again = a.take(ids)
        assert again.held == frozenset(ids) and again.acquired[ids[0]].state.etag == '"b"'
        clock.advance(10)
        assert a.take(ids).acquired == {}  # a plain renewal reads nothing
    finally:
        engine.dispose()


async def test_a_daemon_that_lost_a_source_mid_poll_does_not_overwrite_the_new_holders_state(
    tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock
) -> None:
    """a freezes during its fetch past its lease; b takes the source over. a's late result stores its
    hits (nobody had them) but not its poll state: the row keeps what its holder b knows (fencing)."""
    config = feeds_config(tmp_path, db_url, 1, server)
    a, b = await leased_pipelines(config, clock, http)
    key = next(iter(a.runtimes))
    body = rss(feed_items(0, 10))

    def frozen_fetch(_: Request) -> Response:
        clock.advance(LEASE.total_seconds() + 1)  # a is frozen meanwhile...
        renew(b, takeover=True)  # ...and b takes the source over
        return Response(200, body, {"ETag": '"a"', "Content-Type": "application/rss+xml"})

    server.route("/f0", frozen_fetch)
    try:
        assert renew(a, takeover=False) == [key]
        late = await a.poll(key)
        assert late is not None and late.new_hits > 0
        with read_conn(a.engine) as conn:
            row = conn.execute(select(sources).where(sources.c.key == key)).one()
        assert row.lease_owner == f"{HOST}:b:x" and row.etag is None and row.last_polled_at is None
    finally:
        for pipeline in (a, b):
            await pipeline.stop()
            pipeline.engine.dispose()
