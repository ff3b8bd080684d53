"""G7: two daemons on one database. Each source is polled by the holder of its lease; a dead
daemon's sources are taken over once its leases expire (at once after a clean stop)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.daemon import make_config
from tests.support.feedgen import feed_items, rss
from tests.support.server import LocalServer, Request, Response
from veille.clock import FakeClock
from veille.config import Config, HttpConfig
from veille.http import HttpClient
from veille.leases import SourceLeases, dead_owners
from veille.pipeline import Pipeline
from veille.store import leases as lease_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.schema import sources

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


def test_concurrent_claims_on_postgresql_never_share_and_never_wait(tmp_path: Path, pg_url: str,
                                                                     clock: FakeClock) -> None:
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
    import os
    import socket

    host = socket.gethostname()[:30]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    me = f"{host}:{os.getpid()}:mine"
    owners_seen = {me, f"{host}:{dead_pid}:old", f"{host}:{os.getpid()}:prevlife", f"{host}:{os.getppid()}:live",
                   f"elsewhere:{dead_pid}:x", "garbage"}
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


async def test_a_takeover_polls_from_the_stored_state_not_a_stale_copy(
        tmp_path: Path, db_url: str, server: LocalServer, http: HttpClient, clock: FakeClock) -> None:
    """b loaded its sources before a polled them; when it takes over it must send a's ETag (a 304),
    not re-read the feed from its own stale copy, and wait for the source's interval after a's poll."""
    server.route("/f0", etag_feed(rss(feed_items(0, 10))))  # type: ignore[arg-type]
    config = feeds_config(tmp_path, db_url, 1, server)
    pipelines = []
    for name in ("a", "b"):
        pipeline = Pipeline(config, make_engine(db_url), clock, http, rng=random.Random(1))
        pipeline.load()
        pipeline.leases = SourceLeases(pipeline.engine, clock, lease=LEASE, owner=f"{HOST}:{name}:x")
        await pipeline.start()
        pipelines.append(pipeline)
    a, b = pipelines
    key = next(iter(a.runtimes))

    def renew(pipeline: Pipeline, *, takeover: bool) -> list[str]:
        """What the daemon's lease job does every lease/3."""
        assert pipeline.leases is not None
        lease_round = pipeline.leases.take([r.ref.id for r in pipeline.runtimes.values()])
        adopted = pipeline.adopt(lease_round.acquired, takeover=takeover)
        pipeline.leases.publish(lease_round)
        return adopted

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
