"""The optional Apprise channel through the real dispatcher, against a loopback JSON endpoint."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine

from tests.support.alerting import DAY, make_db
from tests.support.server import LocalServer, Response
from veille.alerting.settings import AlertingSettings
from veille.core.clock import FakeClock
from veille.core.incidents import Urgency
from veille.notify.apprise import AppriseNotifier
from veille.notify.base import Notification
from veille.notify.render import to_payload
from veille.runtime.outbox import Dispatcher
from veille.store import alerts as store
from veille.store.engine import read_conn, write_tx

pytestmark = pytest.mark.filterwarnings("ignore:.imghdr. is deprecated:DeprecationWarning")
pytest.importorskip("apprise")


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return make_db(sqlite_url)


def enqueue(engine: Engine, clock: FakeClock, address: str) -> int:
    note = Notification(
        outbox_id=0,
        incident_id=3,
        tag="#INC-3",
        kind="opened",
        client_id="resto",
        client_name="Chez Gégé",
        contact="manager",
        urgency=Urgency.HIGH,
        silent=False,
        title="Bad buzz possible : Chez Gégé",
        reasons=("risk 0.91",),
    )
    with write_tx(engine) as conn:
        return store.enqueue(
            conn,
            incident_id=3,
            client_id="resto",
            contact="manager",
            channel="apprise",
            address=address,
            kind="opened",
            urgency="high",
            silent=False,
            payload=to_payload(note),
            now=clock.now(),
        )


def state(engine: Engine, outbox_id: int) -> str:
    with read_conn(engine) as conn:
        return next(r.state for r in store.outbox_rows(conn) if r.id == outbox_id)


async def test_apprise_delivers_retries_and_reads_url_from_environment(engine: Engine, server: LocalServer) -> None:
    answers = iter([Response(500, b"down"), Response(200, b"ok")])
    server.route("/hook", lambda _request: next(answers))
    clock = FakeClock(DAY)
    notifier = AppriseNotifier(environ={"VEILLE_HOOK": f"json://127.0.0.1:{server.port}/hook"})
    dispatcher = Dispatcher(engine, clock, AlertingSettings(), {"apprise": notifier}, rng=random.Random(1))
    oid = enqueue(engine, clock, "env:VEILLE_HOOK")
    await dispatcher.pump()
    assert state(engine, oid) == "pending"  # 500: retried later
    clock.advance(30)
    await dispatcher.pump()
    assert state(engine, oid) == "sent"
    body = server.requests_to("/hook")[-1].json()
    assert body["title"] == "Bad buzz possible : Chez Gégé" and "#INC-3" in body["message"]
    with read_conn(engine) as conn:
        assert "VEILLE_HOOK" in next(r.address for r in store.outbox_rows(conn))  # the URL is never stored


async def test_apprise_unusable_address_is_dead_at_once(engine: Engine) -> None:
    clock = FakeClock(DAY)
    dispatcher = Dispatcher(engine, clock, AlertingSettings(), {"apprise": AppriseNotifier(environ={})})
    bad_scheme, missing_env = enqueue(engine, clock, "nonsense://x"), enqueue(engine, clock, "env:NOPE")
    await dispatcher.pump()
    assert state(engine, bad_scheme) == "dead"
    await dispatcher.pump()
    assert state(engine, missing_env) == "dead"
