"""A real crash (os._exit at a named crash point) between the peer's accept and `mark_sent` (A4)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.alerting import make_db
from tests.support.paths import REPO_ROOT
from veille.alerting.settings import AlertingSettings
from veille.core.clock import SystemClock
from veille.core.incidents import Urgency
from veille.notify.base import Notification
from veille.notify.fake import FakeNotifier
from veille.notify.render import to_payload
from veille.runtime.outbox import Dispatcher
from veille.store import alerts as store
from veille.store.engine import read_conn, write_tx

ROOT = REPO_ROOT

CHILD = textwrap.dedent("""
    import asyncio, sys
    from datetime import timedelta
    from pathlib import Path
    from veille.runtime.outbox import Dispatcher
    from veille.alerting.settings import AlertingSettings
    from veille.core.clock import SystemClock
    from veille.notify.base import Delivery
    from veille.store.engine import make_engine

    class FileNotifier:
        channel = "fake"
        async def send(self, notification, address):
            with open(sys.argv[2], "a") as out:
                out.write(f"{notification.outbox_id} {notification.tag}\\n")
            return Delivery(("m1",))
        async def aclose(self):
            pass

    settings = AlertingSettings(lease=timedelta(seconds=1))
    engine = make_engine(sys.argv[1])
    asyncio.run(Dispatcher(engine, SystemClock(), settings, {"fake": FileNotifier()}).pump())
""")


@pytest.mark.slow
def test_a4_sigkill_after_accept_gives_one_tagged_duplicate(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_db(sqlite_url)
    clock = SystemClock()
    note = Notification(
        outbox_id=0,
        incident_id=42,
        tag="#INC-42",
        kind="opened",
        client_id="resto",
        client_name="Chez Gégé",
        contact="manager",
        urgency=Urgency.HIGH,
        silent=False,
        title="x",
    )
    with write_tx(engine) as conn:
        oid = store.enqueue(
            conn,
            incident_id=42,
            client_id="resto",
            contact="manager",
            channel="fake",
            address="chat",
            kind="opened",
            urgency="high",
            silent=False,
            payload=to_payload(note),
            now=clock.now(),
        )
    delivered = tmp_path / "delivered.txt"
    env = {**os.environ, "VEILLE_TEST_CRASH_AT": "outbox.after_send", "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD, sqlite_url, str(delivered)], env=env, timeout=60, check=False)
    assert child.returncode == 137
    assert delivered.read_text().split() == [str(oid), "#INC-42"]
    with read_conn(engine) as conn:
        assert next(r.state for r in store.outbox_rows(conn)) == "sending"
    fake = FakeNotifier()
    settings = AlertingSettings(lease=timedelta(seconds=1))
    survivor = Dispatcher(engine, clock, settings, {"fake": fake})
    asyncio.run(survivor.pump())
    assert fake.sent == []  # the dead relay's lease still holds
    time.sleep(1.1)
    asyncio.run(survivor.pump())
    (resent,) = fake.sent
    assert resent.notification.tag == "#INC-42" and resent.notification.possible_duplicate
    with read_conn(engine) as conn:
        final = next(r for r in store.outbox_rows(conn))
    assert (final.state, final.possible_duplicate, final.attempts) == ("sent", True, 2)


RELAY = textwrap.dedent("""
    import asyncio, sys
    from veille.runtime.outbox import Dispatcher
    from veille.alerting.settings import AlertingSettings
    from veille.core.clock import SystemClock
    from veille.notify.base import Delivery
    from veille.store.engine import make_engine

    class FileNotifier:
        channel = "fake"
        async def send(self, notification, address):
            with open(sys.argv[2], "a") as out:
                out.write(f"{notification.outbox_id}\\n")
            return Delivery(("m",))
        async def aclose(self):
            pass

    async def main():
        dispatcher = Dispatcher(make_engine(sys.argv[1]), SystemClock(), AlertingSettings(), {"fake": FileNotifier()})
        while await dispatcher.pump(limit=10):
            pass

    asyncio.run(main())
""")


@pytest.mark.slow
@pytest.mark.pg
def test_a6_two_relay_processes_on_postgresql_deliver_each_row_once(pg_url: str, tmp_path: Path) -> None:
    engine = make_db(pg_url)
    clock = SystemClock()
    note = Notification(
        outbox_id=0,
        incident_id=None,
        tag="#N",
        kind="notice",
        client_id=None,
        client_name=None,
        contact="manager",
        urgency=Urgency.LOW,
        silent=False,
        title="x",
    )
    with write_tx(engine) as conn:
        ids = [
            store.enqueue(
                conn,
                incident_id=None,
                client_id=None,
                contact="manager",
                channel="fake",
                address="chat",
                kind="notice",
                urgency="low",
                silent=False,
                payload=to_payload(note),
                now=clock.now(),
            )
            for _ in range(300)
        ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    relays = [subprocess.Popen([sys.executable, "-c", RELAY, pg_url, str(out)], env=env) for out in outs]
    assert [relay.wait(timeout=120) for relay in relays] == [0, 0]
    delivered = [int(x) for out in outs if out.exists() for x in out.read_text().split()]
    assert sorted(delivered) == sorted(ids)  # every row once, no duplicate
    with read_conn(engine) as conn:
        assert store.outbox_counts(conn) == {"sent": 300}
