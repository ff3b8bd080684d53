"""Restarts lose nothing (issue 14): a real `veille run` gets a customer's Messenger question waiting and its
reminder sent, is SIGKILLed, and restarts; the conversation still waits since the customer's message (not
since the restart), and the reminder is neither sent again nor doubled."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.daemon import console_daemon_config, spawn_veille, wait_for
from tests.support.fake_graph import GraphFake, fb_message
from tests.support.server import LocalServer
from veille.core.incidents import Cause
from veille.store import alerts as alert_store
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn

pytestmark = pytest.mark.slow
PAGE = "111"


def reminders(db_url: str) -> list[alert_store.Delivery]:
    """The outbox rows of the conversation's reminder incident."""
    engine = make_engine(db_url)
    try:
        with read_conn(engine) as conn:
            ids = [i.id for i in alert_store.list_incidents(conn) if i.cause is Cause.REPLY_DUE and i.id is not None]
            return alert_store.outbox_rows(conn, incident_ids=ids) if ids else []
    finally:
        engine.dispose()


def items(db_url: str) -> list[inbox_store.InboxItem]:
    engine = make_engine(db_url)
    try:
        with read_conn(engine) as conn:
            return [i for i in (inbox_store.get(conn, n) for n in range(1, 5)) if i is not None]
    finally:
        engine.dispose()


def test_a_waiting_conversation_survives_sigkill_with_its_original_time(tmp_path: Path, server: LocalServer) -> None:
    fake = GraphFake(server, token="page-token")
    fake.add_page(PAGE)
    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    fake.conversation(PAGE, "t_10", fb_message("m_1", "Bonjour, vous livrez ce soir ?", when=asked))
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    # A 10-minute deadline, reminded 9 min 45 s before: the reminder is due as soon as the daemon sees the
    # message, the deadline long after the test.
    config = console_daemon_config(
        tmp_path,
        db_url,
        client_extra="""
  [clients.inbox]
  message = "10m"
  remind_before = "585s"
""",
        sources=f"""
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{PAGE}"
  token_env = "FB_RESTO"
  api_base = "{server.url("").rstrip("/")}"
  every = "1h"
""",
    )
    env = {**os.environ, "FB_RESTO": "page-token", "VEILLE_LANG": "fr"}

    def start(log: Path) -> subprocess.Popen[str]:
        return spawn_veille(["run", "--config", str(config)], log, env)

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    daemon = start(first_log)
    try:
        sent = lambda: [r for r in reminders(db_url) if r.state == "sent"]  # noqa: E731
        assert wait_for(lambda: len(sent()) == 1, 60), first_log.read_text()[-3000:]
        [before] = items(db_url)
        assert before.state is inbox_store.State.WAITING and before.waiting_since == asked
        assert before.reminded_at is not None
        assert "attend une réponse" in first_log.read_text()
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)

        polls = len(fake.edge_calls("conversations"))
        daemon = start(second_log)
        assert wait_for(lambda: len(fake.edge_calls("conversations")) > polls, 60), second_log.read_text()[-3000:]
        # The restarted daemon has read the same message again; let its alerting ticks run a while.
        assert not wait_for(lambda: "attend une réponse" in second_log.read_text(), 8)
        [after] = items(db_url)
        assert (after.id, after.state, after.waiting_since, after.reminded_at) == (
            before.id,
            inbox_store.State.WAITING,
            asked,
            before.reminded_at,
        )
        assert len(reminders(db_url)) == 1  # one reminder in the outbox, sent once
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
