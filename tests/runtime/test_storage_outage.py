"""G8 in-process: the shared storage status, and a send the database could not record (SQLite and PostgreSQL).

The whole-daemon outage over a cut TCP connection is tests/runtime/test_db_outage.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from tests.runtime.test_outbox import SETTINGS, enqueue, row
from tests.support.alerting import DAY, make_db
from veille.core.backoff import BackoffPolicy
from veille.core.clock import FakeClock
from veille.core.errors import StorageError
from veille.notify.base import Delivery, Notification
from veille.runtime.outbox import Dispatcher
from veille.store.engine import read_conn
from veille.store.outage import STORAGE_RETRY, StorageStatus


def test_one_warning_when_storage_is_lost_and_one_info_when_it_is_back(caplog: pytest.LogCaptureFixture) -> None:
    status = StorageStatus()
    with caplog.at_level(logging.DEBUG, logger="veille.storage"):
        for where in ("writer", "alerting tick", "outbox relay", "writer"):
            status.failed(StorageError("connection refused"), where=where)
        assert not status.ok and status.error == "connection refused"
        status.succeeded()
        status.succeeded()
    levels = [(r.levelname, r.getMessage().split()[0]) for r in caplog.records if r.levelno >= logging.INFO]
    assert levels == [("WARNING", "storage_lost"), ("INFO", "storage_back")]
    assert status.ok and status.error is None


def test_storage_retries_double_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    delays = [STORAGE_RETRY.delay(attempt, rng=rng) for attempt in range(1, 11)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))


async def test_a_waiting_loop_retries_as_soon_as_another_loop_sees_the_database_back() -> None:
    status = StorageStatus()
    status.failed(StorageError("down"), where="writer")
    waiting = asyncio.create_task(status.pause(1, policy=BackoffPolicy(base=3600.0, cap=3600.0)))
    await asyncio.sleep(0)
    assert not waiting.done()
    status.succeeded()
    await asyncio.wait_for(waiting, 5)  # not the hour of its own backoff


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_db(db_url)


class AcceptedThenDatabaseDies:
    """A notifier whose peer accepts the first message, after which the database stops taking writes."""

    channel = "fake"

    def __init__(self, broken: dict[str, bool]) -> None:
        self.broken = broken
        self.sent: list[int] = []

    async def send(self, notification: Notification, address: str) -> Delivery:
        self.sent.append(notification.outbox_id)
        if len(self.sent) == 1:
            self.broken["on"] = True
        return Delivery((f"m{len(self.sent)}",))

    async def aclose(self) -> None:
        return None


async def test_a_send_accepted_during_an_outage_is_recorded_when_it_ends_not_resent(engine: Engine) -> None:
    broken = {"on": False}

    @event.listens_for(engine, "begin")
    def _refuse_writes(connection: Any) -> None:
        if broken["on"] and connection.info.get("veille_begin") == "IMMEDIATE":
            raise OperationalError("BEGIN", {}, Exception("server closed the connection unexpectedly"))

    clock = FakeClock(DAY)
    notifier = AcceptedThenDatabaseDies(broken)
    relay = Dispatcher(engine, clock, SETTINGS, {"fake": notifier}, owner="relay-1", rng=random.Random(7))
    (oid,) = enqueue(engine, clock)
    with pytest.raises(StorageError):  # the relay loop backs off on this (storage_lost, once)
        await relay.pump()
    assert notifier.sent == [oid] and row(engine, oid).state == "sending"

    with pytest.raises(StorageError):  # still down: the accepted send stays queued in memory
        await relay.pump()
    broken["on"] = False
    clock.advance(SETTINGS.lease.total_seconds() * 3)  # the claim's lease is long gone
    assert await relay.pump() == 0
    final = row(engine, oid)
    assert (final.state, final.message_ids, final.possible_duplicate) == ("sent", '["m1"]', False)
    assert notifier.sent == [oid]  # delivered once: the expired lease did not make it go out again
    with read_conn(engine) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM outbox WHERE state = 'sent'").scalar() == 1
