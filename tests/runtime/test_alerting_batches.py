"""The alerting tick at many clients: a batch of clients per write transaction, so that no transaction
holds the write lock long and other writers interleave; every incident is still advanced once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.support.alerting import DAY, hit, make_db
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.notify.fake import FakeNotifier
from veille.runtime import alerting
from veille.runtime.alerting import AlertingService
from veille.store import alerts as store
from veille.store.engine import read_conn, write_stats, write_tx

CLIENTS = 45


def many_clients_config() -> str:
    lines = ['timezone = "Europe/Paris"', "[alerting]", 'group_wait = "0s"', ""]
    for c in range(CLIENTS):
        lines.append(f'[[clients]]\nid = "c{c}"\nname = "Client {c}"\nkeywords = ["marque{c}"]')
        lines.append(f'  [[clients.sources]]\n  kind = "rss"\n  url = "https://example.org/{c}.xml"\n')
    lines.append('[[contacts]]\nid = "cm"\nname = "Camille"\nchannel = "telegram"\naddress = "chat"\nclients = ["*"]')
    return "\n".join(lines)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_db(db_url)


def test_a_tick_over_many_clients_writes_in_batches_and_notifies_each_incident_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerting, "TICK_BATCH", 20)
    clock = FakeClock(DAY)
    service = AlertingService(
        parse_config(many_clients_config(), environ={}), engine, clock, {"telegram": FakeNotifier("telegram")}
    )
    with write_tx(engine) as conn:
        service.on_new_hits(
            conn,
            [hit(clock, f"Intoxication chez marque{c}, urgences, plainte", client=f"c{c}") for c in range(CLIENTS)],
        )
    stats = write_stats(engine)
    before = stats.count
    service.tick()
    assert stats.count - before == 4  # 45 clients: three batches of at most 20, then the upkeep
    with read_conn(engine) as conn:
        opened = [row for row in store.outbox_rows(conn) if row.kind == "opened"]
    assert sorted(row.client_id for row in opened) == sorted(f"c{c}" for c in range(CLIENTS))
    service.tick()
    with read_conn(engine) as conn:
        assert len([row for row in store.outbox_rows(conn) if row.kind == "opened"]) == CLIENTS


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
