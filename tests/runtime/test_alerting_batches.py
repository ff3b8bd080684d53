"""Write transactions stay short at many clients: the tick commits once a transaction has held the lock for
its time budget, and the hits' transaction leaves the clients it has no time for to the next tick (stored, so
a restart loses none). Statements "take" 1 ms of a fake clock here, so the cuts do not depend on the machine."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from tests.support.alerting import DAY, hit, make_db
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.notify.fake import FakeNotifier
from veille.runtime import alerting
from veille.runtime.alerting import AlertingService
from veille.store import alerts as store
from veille.store.engine import held_for, read_conn, write_tx

CLIENTS = 45
STATEMENT = 0.001  # fake seconds each statement takes


def many_clients_config(clients: int = CLIENTS) -> str:
    lines = ['timezone = "Europe/Paris"', "[alerting]", 'group_wait = "0s"', ""]
    for c in range(clients):
        lines.append(f'[[clients]]\nid = "c{c}"\nname = "Client {c}"\nkeywords = ["marque{c}"]')
        lines.append(f'  [[clients.sources]]\n  kind = "rss"\n  url = "https://example.org/{c}.xml"\n')
    lines.append('[[contacts]]\nid = "cm"\nname = "Camille"\nchannel = "telegram"\naddress = "chat"\nclients = ["*"]')
    return "\n".join(lines)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_db(db_url)


class Held:
    """The fake time each write transaction of the engine held, every statement costing STATEMENT."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.clock = clock
        self.durations: list[float] = []
        self._began: float | None = None
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        if self._began is None:
            self._began = self.clock.monotonic()
        self.clock.advance(STATEMENT)

    def _commit(self, _conn: Any) -> None:
        if self._began is not None:
            self.durations.append(self.clock.monotonic() - self._began)
        self._began = None


def opened(engine: Engine) -> list[str]:
    with read_conn(engine) as conn:
        return sorted(row.client_id or "" for row in store.outbox_rows(conn) if row.kind == "opened")


def test_a_burst_is_opened_in_short_transactions_each_incident_once(engine: Engine) -> None:
    clock = FakeClock(DAY)
    config = parse_config(many_clients_config(), environ={})
    service = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    held = Held(engine, clock)
    before = clock.now()
    with write_tx(engine) as conn:
        service.on_new_hits(
            conn,
            [hit(clock, f"Intoxication chez marque{c}, urgences, plainte", client=f"c{c}") for c in range(CLIENTS)],
        )
    with read_conn(engine) as conn:
        left = store.detections_due(conn)
        first = {i.client_id for i in store.active_incidents(conn)}
    assert first and left and first.isdisjoint(left) and len(first) + len(left) == CLIENTS
    (hits_at,) = {at for at, _ in left.values()}  # each left as of its hits' time
    assert before <= hits_at < clock.now()

    # A restart in between: the detections left to the tick are stored, not kept in memory.
    restarted = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    held.durations.clear()
    restarted.tick()
    assert opened(engine) == sorted(f"c{c}" for c in range(CLIENTS))
    with read_conn(engine) as conn:
        assert store.detections_due(conn) == {}
        incidents = store.active_incidents(conn)
    assert {i.opened_at for i in incidents if i.client_id in left} == {hits_at}  # as of the hits, not the tick
    # Opening one client's incident takes ~25 statements (25 ms here): a transaction commits once it has held
    # the lock for the budget, so none lasts much longer than it (20 clients a transaction took 500 ms).
    assert len(held.durations) > 10
    assert max(held.durations) < 2 * alerting.TICK_BUDGET, held.durations
    restarted.tick()
    assert opened(engine) == sorted(f"c{c}" for c in range(CLIENTS))  # each notified once


def test_the_hits_transaction_opens_every_incident_when_it_has_the_time(engine: Engine) -> None:
    clock = FakeClock(DAY)  # statements take no time: the budget is never reached
    service = AlertingService(
        parse_config(many_clients_config(), environ={}), engine, clock, {"telegram": FakeNotifier("telegram")}
    )
    with write_tx(engine) as conn:
        service.on_new_hits(
            conn,
            [hit(clock, f"Intoxication chez marque{c}, urgences, plainte", client=f"c{c}") for c in range(CLIENTS)],
        )
    with read_conn(engine) as conn:
        assert store.detections_due(conn) == {}
        assert len(store.active_incidents(conn)) == CLIENTS
    assert opened(engine) == sorted(f"c{c}" for c in range(CLIENTS))


def test_the_hits_transaction_counts_what_its_caller_held_the_lock_for(engine: Engine) -> None:
    """The pipeline stores the hits (and sources' state) in the same transaction before the hook: when that took
    the whole budget, the hook opens one client's incident and leaves the others to the tick."""
    clock = FakeClock(DAY)  # statements take no time: only what the caller did counts
    service = AlertingService(
        parse_config(many_clients_config(), environ={}), engine, clock, {"telegram": FakeNotifier("telegram")}
    )
    with write_tx(engine) as conn:
        time.sleep(alerting.TICK_BUDGET)  # the caller's own writes
        service.on_new_hits(
            conn,
            [hit(clock, f"Intoxication chez marque{c}, urgences, plainte", client=f"c{c}") for c in range(CLIENTS)],
        )
    with read_conn(engine) as conn:
        assert len(store.active_incidents(conn)) == 1
        assert len(store.detections_due(conn)) == CLIENTS - 1


def test_buzzing_clients_looks_only_at_the_clients_asked(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = AlertingService(
        parse_config(many_clients_config(), environ={}), engine, clock, {"telegram": FakeNotifier("telegram")}
    )
    with write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock, "Intoxication chez marque1, urgences", client="c1")])
    with read_conn(engine) as conn:
        assert store.buzzing_clients(conn, ["c1", "c2"]) == {"c1"}
        assert store.buzzing_clients(conn, ["c2"]) == set()
        assert store.clients_with_alert_state(conn) == {"c1"}


def test_a_burst_after_quiet_ticks_opens_incidents_within_the_budget(engine: Engine) -> None:
    """The tick sizes a step on the last step's cost per client: after a quiet tick, a step takes many clients,
    and opening an incident costs ~25 statements (25 ms here). Opening stops once the transaction has held the
    lock for the budget; the others open in the next transactions of the same tick (a step sized on quiet
    clients that opened every one of its incidents held the lock for 94 ms)."""
    clock = FakeClock(DAY)
    config = parse_config(many_clients_config(200), environ={})
    service = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    burst = [c.id for c in config.clients]
    held = Held(engine, clock)
    service.tick()  # a quiet tick: its steps grow to TICK_BATCH clients
    with write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock, f"Intoxication chez marque{c[1:]}, urgences", client=c) for c in burst])
    with read_conn(engine) as conn:
        assert len(store.detections_due(conn)) > len(burst) // 2  # most left to the tick
    held.durations.clear()
    service.tick()
    assert opened(engine) == sorted(burst)
    with read_conn(engine) as conn:
        assert store.detections_due(conn) == {}
    assert max(held.durations) < 2 * alerting.TICK_BUDGET, held.durations


BURST = "Intoxication sur la terrasse de marque{c}, serveur agressif, urgences"  # "terrasse": a usual word


def with_usual_posts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, clients: int
) -> tuple[AlertingService, FakeClock, list[tuple[bool, int]]]:
    """A service whose clients each have four usual posts, two days old; then, per read of usual posts for a
    summary: whether it was in a write transaction, and at most how many it read."""
    clock = FakeClock(DAY)
    config = parse_config(many_clients_config(clients), environ={})
    service = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    usual = ("Burger parfait chez marque{c}", "Terrasse au soleil", "Service rapide, burger parfait", "Terrasse")
    for n, text in enumerate(usual):
        with write_tx(engine) as conn:
            service.on_new_hits(conn, [hit(clock, text.format(c=c), client=f"c{c}", score=0.6) for c in range(clients)])
        clock.advance(3 * 3600 + n)
    clock.advance(2 * 86400)
    reads: list[tuple[bool, int]] = []
    post_texts = store.post_texts

    def spy(conn: Any, client_id: str, since: Any, until: Any = None, **kwargs: Any) -> Any:
        if "limit" in kwargs:
            reads.append((held_for(conn) > 0, kwargs["limit"]))
        return post_texts(conn, client_id, since, until, **kwargs)

    monkeypatch.setattr(store, "post_texts", spy)
    return service, clock, reads


def test_the_tick_counts_the_usual_posts_before_its_write_transactions_and_summarises_alike(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: the usual posts of an incident the tick opens (a detection the hits' transaction left) are read
    and counted in a read transaction, not while holding the write lock; its summary is the one the hits'
    transaction makes for the same posts."""
    service, clock, reads = with_usual_posts(engine, monkeypatch, 20)
    with write_tx(engine) as conn:  # time to open all ten
        service.on_new_hits(conn, [hit(clock, BURST.format(c=c), client=f"c{c}") for c in range(10)])
    with write_tx(engine) as conn:
        time.sleep(alerting.TICK_BUDGET)  # no time left: one opened here, the nine others left to the tick
        service.on_new_hits(conn, [hit(clock, BURST.format(c=c), client=f"c{c}") for c in range(10, 20)])
    with read_conn(engine) as conn:
        assert len(store.detections_due(conn)) == 9
    assert len(reads) == 11 and all(in_write for in_write, _ in reads)  # four posts each: few enough
    reads.clear()
    service.tick()
    assert len(reads) == 9 and not any(in_write for in_write, _ in reads)
    with read_conn(engine) as conn:
        summaries = {i.client_id: i.summary for i in store.active_incidents(conn)}
    said = {(s.terms, s.crisis_words, s.posts, s.authors) for s in summaries.values() if s is not None}
    assert len(summaries) == 20 and len(said) == 1  # the same for all: each left its own name out
    ((terms, *_),) = said
    assert "serveur" in terms and "terrasse" not in terms  # a usual word: the usual posts were counted


def test_usual_posts_too_many_to_count_under_the_lock_are_counted_by_the_tick_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More usual posts than a write transaction may count (COUNTED_IN_LOCK, 3 here, for four): the hits'
    transaction leaves the detection to the tick, which counts them in a read transaction, then opens the
    incident as of the hits' time and notifies it."""
    monkeypatch.setattr(alerting, "COUNTED_IN_LOCK", 3)
    service, clock, reads = with_usual_posts(engine, monkeypatch, 2)
    hits_at = service.now()
    with write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock, BURST.format(c=c), client=f"c{c}") for c in range(2)])
    with read_conn(engine) as conn:
        assert store.active_incidents(conn) == []
        assert {c: at for c, (at, _) in store.detections_due(conn).items()} == {"c0": hits_at, "c1": hits_at}
    assert reads == [(True, 4)]  # a look at no more than COUNTED_IN_LOCK + 1 of them; the other client waits
    reads.clear()
    clock.advance(1)
    service.tick()
    assert reads and not any(in_write for in_write, _ in reads)
    with read_conn(engine) as conn:
        assert store.detections_due(conn) == {}
        incidents = store.active_incidents(conn)
    assert len(incidents) == 2 and {i.opened_at for i in incidents} == {hits_at}
    for incident in incidents:
        assert incident.summary is not None and "serveur" in incident.summary.terms
        assert "terrasse" not in incident.summary.terms
    assert opened(engine) == ["c0", "c1"]


def test_a_one_shot_run_opens_what_it_left_for_its_usual_posts_before_exiting(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`veille run --once` runs no tick after its hits: ending its groups counts the usual posts first, then
    opens the incidents whose detection the hits' transaction left, so that their alerts go out in this run."""
    monkeypatch.setattr(alerting, "COUNTED_IN_LOCK", 3)
    service, clock, reads = with_usual_posts(engine, monkeypatch, 2)
    with write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock, BURST.format(c=c), client=f"c{c}") for c in range(2)])
    reads.clear()
    service._end_groups()
    assert reads and not any(in_write for in_write, _ in reads)
    with read_conn(engine) as conn:
        assert store.detections_due(conn) == {}
    assert opened(engine) == ["c0", "c1"]


@pytest.mark.pg
def test_the_clients_locks_are_taken_in_one_statement(pg_url: str) -> None:
    """PostgreSQL: a transaction serialises its clients' alerting with one advisory lock each, all taken in one
    round trip; another daemon cannot take them until it ends, and takes the others."""
    engine = make_db(pg_url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with write_tx(engine) as conn, engine.connect() as other:
        statements.clear()
        store.lock_clients(conn, ["c2", "c1", "c3", "c1"])
        assert len(statements) == 1
        try_lock = [select(func.pg_try_advisory_xact_lock(store.client_lock_key(c))) for c in ("c1", "c2", "c3", "c4")]
        assert [other.execute(q).scalar() for q in try_lock] == [False, False, False, True]
        other.rollback()
    with engine.connect() as other:
        assert other.execute(try_lock[0]).scalar() is True
    engine.dispose()


def test_a_connection_lost_mid_transaction_forgets_the_windows_instead_of_raising(tmp_path: Any) -> None:
    """PostgreSQL going away during a tick's read: the rollback of the dead connection must not raise
    PendingRollbackError (a traceback in the daemon's log, seen in CI); the kept windows are read again."""
    from sqlalchemy import create_engine

    from veille.runtime.alerting import HitWindows, SteadyClock

    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    windows = HitWindows(engine, SteadyClock(FakeClock()))
    windows._rows["resto"] = {}
    with pytest.raises(RuntimeError), engine.connect() as conn, conn.begin():
        windows._touch(conn, "other")
        conn.invalidate()  # what SQLAlchemy does on a disconnect error
        raise RuntimeError("server closed the connection unexpectedly")
    assert windows._rows == {}
    engine.dispose()
