"""The outbox dispatcher with the fake and console notifiers (RELIABILITY.md A1-A12)."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from tests.support.alerting import DAY, make_db
from veille.alerting.settings import AlertingSettings, Contact
from veille.core.clock import FakeClock, SystemClock
from veille.core.incidents import Urgency
from veille.notify.base import Notification, NotifyPermanent, NotifyRateLimited, NotifyRetryable
from veille.notify.console import ConsoleNotifier
from veille.notify.fake import FakeNotifier
from veille.notify.render import to_payload
from veille.runtime.outbox import Dispatcher
from veille.store import alerts as store
from veille.store.engine import read_conn, write_tx

OPERATOR = Contact("manager", "Camille", "fake", "chat-manager")
SETTINGS = AlertingSettings(contacts=(OPERATOR,))


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_db(db_url)


def enqueue(
    engine: Engine,
    clock,
    *,
    incident: int | None = 1,
    contact: str = "manager",  # type: ignore[no-untyped-def]
    kind: str = "opened",
    channel: str = "fake",
    n: int = 1,
) -> list[int]:
    ids = []
    with write_tx(engine) as conn:
        for _ in range(n):
            note = Notification(
                outbox_id=0,
                incident_id=incident,
                tag=f"#INC-{incident}",
                kind=kind,
                client_id="resto",
                client_name="Chez Gégé",
                contact=contact,
                urgency=Urgency.HIGH,
                silent=False,
                title="Bad buzz",
                created_at=clock.now(),
            )
            ids.append(
                store.enqueue(
                    conn,
                    incident_id=incident,
                    client_id="resto",
                    contact=contact,
                    channel=channel,
                    address=f"chat-{contact}",
                    kind=kind,
                    urgency="high",
                    silent=False,
                    payload=to_payload(note),
                    now=clock.now(),
                )
            )
    return ids


def row(engine: Engine, outbox_id: int):  # type: ignore[no-untyped-def]
    with read_conn(engine) as conn:
        return next(r for r in store.outbox_rows(conn) if r.id == outbox_id)


def dispatcher(
    engine: Engine,
    clock,
    notifiers,
    settings: AlertingSettings = SETTINGS,  # type: ignore[no-untyped-def]
    owner: str = "relay-1",
) -> Dispatcher:
    return Dispatcher(engine, clock, settings, notifiers, owner=owner, rng=random.Random(7))


async def run_for(d: Dispatcher, clock: FakeClock, seconds: int, step: float = 1.0) -> None:
    for _ in range(int(seconds / step)):
        await d.pump()
        clock.advance(step)


async def test_a1_rate_limited_three_times_then_delivered_once(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    fake.fail_next(3, NotifyRateLimited("429", retry_after=5))
    (oid,) = enqueue(engine, clock)
    await run_for(dispatcher(engine, clock, {"fake": fake}), clock, 40)
    times = [t for _, t in fake.attempts]
    assert len(times) == 4 and fake.delivered(oid) == 1
    assert all((b - a).total_seconds() >= 5 for a, b in itertools.pairwise(times))
    assert (times[-1] - times[0]).total_seconds() >= 15
    final = row(engine, oid)
    assert (final.state, final.attempts, final.message_ids) == ("sent", 4, '["m1"]')


async def test_a2_rate_limit_wait_survives_a_restart(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    fake.fail_next(2, NotifyRateLimited("429", retry_after=5))
    (oid,) = enqueue(engine, clock)
    first = dispatcher(engine, clock, {"fake": fake})
    await first.pump()
    clock.advance(6)
    await first.pump()  # second 429; "SIGKILL" now: the first dispatcher is simply dropped
    stored = row(engine, oid)
    assert stored.state == "pending" and stored.next_attempt_at >= clock.now() + timedelta(seconds=5)
    second = dispatcher(engine, clock, {"fake": fake}, owner="relay-after-restart")
    while clock.now() < stored.next_attempt_at:
        await second.pump()
        assert fake.delivered(oid) == 0
        clock.advance(0.5)
    await second.pump()
    assert fake.delivered(oid) == 1 and row(engine, oid).state == "sent"


async def test_a3_committed_row_is_delivered_after_restart(engine: Engine) -> None:
    clock = FakeClock(DAY)
    (oid,) = enqueue(engine, clock)  # committed; the process "crashed" before any send
    fake = FakeNotifier(clock=clock)
    await dispatcher(engine, clock, {"fake": fake}).pump()
    assert fake.delivered(oid) == 1


async def test_a4_crash_after_accept_resends_once_after_lease_tagged(engine: Engine, caplog) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    (oid,) = enqueue(engine, clock)
    with write_tx(engine) as conn:
        (claimed,) = store.claim(conn, "crashed-relay", clock.now(), SETTINGS.lease, 10, lambda: "t1")
    from veille.notify.render import from_payload

    await fake.send(from_payload(claimed.payload, outbox_id=oid, possible_duplicate=False), claimed.address)
    # ...and the relay dies before mark_sent.
    survivor = dispatcher(engine, clock, {"fake": fake}, owner="relay-2")
    for _ in range(59):
        clock.advance(1)
        await survivor.pump()
    assert fake.delivered(oid) == 1  # no tight loop before the lease expires
    clock.advance(2)
    with caplog.at_level(logging.WARNING, logger="veille.runtime.outbox"):
        await survivor.pump()
    assert fake.delivered(oid) == 2
    first, second = (s.notification for s in fake.sent)
    assert first.tag == second.tag == "#INC-1" and second.possible_duplicate
    assert "outbox_possible_duplicate" in caplog.text
    clock.advance(600)
    await survivor.pump()
    assert fake.delivered(oid) == 2


async def test_a6_two_concurrent_relays_deliver_each_row_once(engine: Engine) -> None:
    clock = SystemClock()
    n = 1000 if engine.dialect.name == "sqlite" else 400
    ids = enqueue(engine, clock, incident=None, n=n)
    fake = FakeNotifier()
    second_engine = make_db(str(engine.url.render_as_string(hide_password=False)))
    relays = [
        dispatcher(engine, clock, {"fake": fake}, owner="a"),
        dispatcher(second_engine, clock, {"fake": fake}, owner="b"),
    ]

    async def drain(d: Dispatcher) -> None:
        while await d.pump(limit=20):
            pass

    await asyncio.gather(*(drain(d) for d in relays))
    delivered = [s.notification.outbox_id for s in fake.sent]
    assert len(delivered) == n and sorted(delivered) == sorted(ids)
    with read_conn(engine) as conn:
        assert store.outbox_counts(conn) == {"sent": n}


async def test_a7_stale_relay_result_is_fenced(engine: Engine) -> None:
    clock = FakeClock(DAY)
    (oid,) = enqueue(engine, clock)
    with write_tx(engine) as conn:
        (stale,) = store.claim(conn, "slow", clock.now(), SETTINGS.lease, 1, lambda: "old-token")
    clock.advance(61)
    with write_tx(engine) as conn:
        (fresh,) = store.claim(conn, "fast", clock.now(), SETTINGS.lease, 1, lambda: "new-token")
        assert fresh.reclaimed and fresh.possible_duplicate
    with write_tx(engine) as conn:
        assert not store.mark_sent(conn, oid, stale.token, clock.now(), ["late"])
        assert not store.mark_dead(conn, oid, stale.token, "late failure")
        assert store.mark_sent(conn, oid, fresh.token, clock.now(), ["m9"])
    final = row(engine, oid)
    assert (final.state, final.message_ids, final.attempts) == ("sent", '["m9"]', 2)


async def test_a8_ambiguous_timeout_resent_at_most_twice_and_logged(engine: Engine, caplog) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    fake.accept_but_hang(1)
    (oid,) = enqueue(engine, clock)
    d = dispatcher(engine, clock, {"fake": fake}, replace(SETTINGS, send_timeout=timedelta(seconds=0.2)))
    with caplog.at_level(logging.WARNING, logger="veille.runtime.outbox"):
        await run_for(d, clock, 60)
    assert fake.delivered(oid) == 2
    assert row(engine, oid).state == "sent" and row(engine, oid).possible_duplicate
    assert fake.sent[1].notification.possible_duplicate
    assert "outbox_ambiguous" in caplog.text


async def test_a9_sustained_5xx_backs_off_exponentially_capped_then_delivers(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    fake.fail_next(10_000, NotifyRetryable("502 bad gateway"))
    (oid,) = enqueue(engine, clock)
    d = dispatcher(engine, clock, {"fake": fake})
    await run_for(d, clock, 600, step=2)  # ten minutes of 5xx
    times = [t for _, t in fake.attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert 5 <= len(times) <= 12
    assert gaps[0] < 10 and all(b >= a * 0.9 for a, b in itertools.pairwise(gaps))  # growing
    with read_conn(engine) as conn:
        assert (clock.now() - store.oldest_pending(conn)).total_seconds() >= 599  # for `veille status`
    fake._failures.clear()  # Telegram recovers
    await run_for(d, clock, 400, step=2)
    assert fake.delivered(oid) == 1 and row(engine, oid).state == "sent"


def test_a9_backoff_is_capped_so_attempts_per_hour_are_bounded() -> None:
    d = Dispatcher(None, FakeClock(DAY), SETTINGS, {}, rng=random.Random(3))  # type: ignore[arg-type]
    delays = [d.retry.delay(n, rng=d.rng) for n in range(1, 60)]
    cap = SETTINGS.retry_cap.total_seconds()
    assert delays[0] >= SETTINGS.retry_base.total_seconds() and max(delays) <= cap
    assert min(delays[10:]) >= cap / 2  # at most 3600 / (cap / 2) = 24 attempts an hour at the cap
    assert len(set(delays[10:])) > 1  # jittered


async def test_a10_poison_message_dead_one_notice_others_flow(engine: Engine, caplog) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    out = io.StringIO()
    console = ConsoleNotifier(out)
    poison, other = enqueue(engine, clock, incident=1)[0], enqueue(engine, clock, incident=2)[0]
    fake.fail_next(1, NotifyPermanent("400 bad request"))
    with caplog.at_level(logging.ERROR, logger="veille.runtime.outbox"):
        await run_for(dispatcher(engine, clock, {"fake": fake, "console": console}), clock, 30)
    assert row(engine, poison).state == "dead" and fake.delivered(other) == 1
    assert caplog.text.count("outbox_dead") == 1
    assert out.getvalue().count(f"#OUT-{poison}") == 1  # one operator notice through the fallback route


async def test_a10_gives_up_after_max_attempts(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    fake.fail_next(100, NotifyRetryable("503"))
    (oid,) = enqueue(engine, clock)
    out = io.StringIO()
    settings = replace(SETTINGS, max_attempts=3)
    await run_for(dispatcher(engine, clock, {"fake": fake, "console": ConsoleNotifier(out)}, settings), clock, 120)
    assert row(engine, oid).state == "dead" and len(fake.attempts) == 3
    assert "#OUT-" in out.getvalue()


async def test_a11_per_incident_order_without_blocking_other_chats(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    opened = enqueue(engine, clock, incident=1, kind="opened")[0]
    update = enqueue(engine, clock, incident=1, kind="update")[0]
    resolved = enqueue(engine, clock, incident=1, kind="resolved")[0]
    elsewhere = enqueue(engine, clock, incident=1, contact="backup", kind="escalated")[0]
    other_incident = enqueue(engine, clock, incident=2)[0]
    fake.fail_next(1, NotifyRateLimited("429", retry_after=30))
    d = dispatcher(engine, clock, {"fake": fake})
    await run_for(d, clock, 10)
    assert [s.notification.outbox_id for s in fake.sent] == [elsewhere, other_incident]
    await run_for(d, clock, 60)
    order = [s.notification.outbox_id for s in fake.sent]
    assert order[2:] == [opened, update, resolved]


async def test_a12_stop_with_50_pending_drains_and_resumes_without_duplicates(engine: Engine) -> None:
    clock = SystemClock()
    ids = enqueue(engine, clock, incident=None, n=50)

    class Slow(FakeNotifier):
        async def send(self, notification, address):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.05)
            return await super().send(notification, address)

    slow = Slow()
    stop = asyncio.Event()
    d = dispatcher(engine, clock, {"fake": slow})
    task = asyncio.create_task(d.run(stop, relays=2, grace=6.0))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, timeout=8)
    with read_conn(engine) as conn:
        states = {r.id: r.state for r in store.outbox_rows(conn)}
    assert set(states.values()) <= {"sent", "pending"} and "pending" in states.values()
    resumed = FakeNotifier()
    await dispatcher(engine, clock, {"fake": resumed}, owner="next-start").pump(limit=100)
    delivered = [s.notification.outbox_id for s in slow.sent + resumed.sent]
    assert sorted(delivered) == sorted(ids)


async def test_a12_hung_send_is_released_within_grace(engine: Engine) -> None:
    clock = SystemClock()
    (oid,) = enqueue(engine, clock)
    hung = FakeNotifier()
    hung.accept_but_hang(1)
    stop = asyncio.Event()
    d = dispatcher(engine, clock, {"fake": hung})
    task = asyncio.create_task(d.run(stop, relays=1, grace=0.5))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, timeout=8)
    released = row(engine, oid)
    assert (released.state, released.possible_duplicate, released.lease_owner) == ("pending", True, None)


async def test_console_notifier_prints_french_and_strips_control_characters() -> None:
    out = io.StringIO()
    note = Notification(
        outbox_id=1,
        incident_id=4,
        tag="#INC-4",
        kind="opened",
        client_id="resto",
        client_name="Chez Gégé",
        contact="manager",
        urgency=Urgency.HIGH,
        silent=False,
        title="Bad buzz possible : Chez Gégé",
        reasons=("risk 0.91\x1b[2J",),
    )
    await ConsoleNotifier(out).send(note, "")
    text = out.getvalue()
    assert "🔔 #INC-4 Bad buzz possible : Chez Gégé [URGENT]" in text and "\x1b" not in text
    assert "veille ack 4" in text
    quiet = io.StringIO()
    await ConsoleNotifier(quiet, show_silent=False).send(replace(note, silent=True), "")
    assert quiet.getvalue() == ""


async def test_finished_rows_are_purged_after_retention_pending_never(engine: Engine) -> None:
    clock = FakeClock(DAY)
    fake = FakeNotifier(clock=clock)
    d = dispatcher(engine, clock, {"fake": fake})
    enqueue(engine, clock, incident=1)
    await d.pump()  # sent
    (waiting,) = enqueue(engine, clock, incident=2)
    fake.fail_next(1, NotifyRateLimited("429", retry_after=10**7))
    await d.pump()  # still pending
    clock.advance(31 * 86400)
    with write_tx(engine) as conn:
        assert store.purge_outbox(conn, clock.now() - timedelta(days=30)) == 1
    with read_conn(engine) as conn:
        assert [r.id for r in store.outbox_rows(conn)] == [waiting]
