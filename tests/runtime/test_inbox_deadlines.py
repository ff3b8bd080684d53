"""Reply deadlines through the real alerting service and database, on a fake clock (issue 14's timeline).

20:45 a customer writes on Messenger, 21:14 a reproach, the daemon restarts, nobody answers: one reminder
(silent, by day), then one overdue incident, held at night for the 07:30 digest; the page's reply at 08:10
closes the conversation, resolves both, and the answer log counts a wait of 11 h 25 min.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from tests.support.alerting import CONFIG, make_db
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.core.i18n import wording
from veille.core.models import Channel, StoredHit
from veille.notify.fake import FakeNotifier
from veille.reports import monthly_report, render
from veille.reports.period import Month
from veille.runtime.alerting import AlertingService
from veille.runtime.inbox import record_hits
from veille.store import alerts as store
from veille.store import inbox as inbox_store
from veille.store.engine import read_conn, write_tx
from veille.store.schema import clients

EVENING = datetime(2026, 11, 20, 19, 45, tzinfo=UTC)  # 20:45 in Paris
INBOX = """
  [clients.inbox]
  message = "2h"
  remind_before = "1h"
"""


def message(hit_id: int, at: datetime, text: str, *, own: bool = False) -> StoredHit:
    return StoredHit(
        id=hit_id,
        client_id="resto",
        source_key="resto/fb",
        kind="facebook",
        external_id=f"m_{hit_id}",
        text=text,
        title="",
        url=None,
        author="Chez Gégé" if own else "Léa Martin",
        author_followers=None,
        direct=True,
        published_at=at,
        fetched_at=at,
        channel=Channel.MESSAGE,
        conversation="t_10",
        from_client=own,
    )


def run(engine: Engine, clock: FakeClock, service: AlertingService, until: datetime, step: int = 300) -> None:
    while clock.now() < until:
        clock.advance(step)
        service.tick()


def test_a_message_unanswered_overnight(db_url: str) -> None:
    engine = make_db(db_url)
    text = CONFIG.format(channel="telegram", extra='digest_at = "07:30"')
    config = parse_config(
        text.replace('crisis_words = ["gégé pue"]\n', 'crisis_words = ["gégé pue"]\n' + INBOX), environ={}
    )
    assert config.client("resto").inbox.delays[Channel.MESSAGE] == timedelta(hours=2)
    clock = FakeClock(EVENING)
    service = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    with write_tx(engine) as conn:
        conn.execute(insert(clients).values(id="resto", name="Chez Gégé", updated_at=EVENING))
        record_hits(conn, [message(1, EVENING, "Vous pouvez envoyer la guirlande par la poste ?")])
    service.tick()
    reproach_at = EVENING + timedelta(minutes=29)  # 21:14
    run(engine, clock, service, reproach_at)
    with write_tx(engine) as conn:
        record_hits(
            conn, [message(2, reproach_at, "Je vois que vous avez lu mon message... vous auriez au moins pu répondre")]
        )
    run(engine, clock, service, EVENING + timedelta(minutes=50))
    # The daemon restarts (a new service on the same database): the wait keeps its original time.
    service = AlertingService(config, engine, clock, {"telegram": FakeNotifier("telegram")})
    with read_conn(engine) as conn:
        (waiting,) = inbox_store.waiting(conn)
    assert waiting.waiting_since == EVENING and waiting.need == "complaint"
    reply_at = EVENING + timedelta(hours=11, minutes=25)  # 08:10 the next morning
    run(engine, clock, service, reply_at)
    with read_conn(engine) as conn:
        before_reply = store.outbox_rows(conn)
        incidents = {i.cause.value: i for i in store.list_incidents(conn)}
    # The reminder at 21:45 (deadline 22:45 minus 1 h), low urgency by day: silent, never ringing.
    reminder = [r for r in before_reply if r.incident_id == incidents["reply_due"].id]
    assert [(r.kind, r.silent) for r in reminder] == [("opened", True)]
    assert reminder[0].created_at == EVENING + timedelta(hours=1, minutes=5)  # first tick after group_wait
    assert reminder[0].payload["title"] == "Un client attend une réponse : Chez Gégé (#1)"
    assert [wording("fr").text(r) for r in reminder[0].payload["reasons"]] == [
        "Léa Martin attend depuis le 20/11 20:45 (message) : « Je vois que vous avez lu mon message... vous auriez au "
        "moins pu répondre »",
        "réponse attendue avant le 20/11 22:45",
    ]
    # The overdue incident at 22:45 is held for the night and goes out in the 07:30 digest.
    overdue = incidents["reply"]
    assert overdue.opened_at == EVENING + timedelta(hours=2) and overdue.urgency.value == "low"
    assert not [r for r in before_reply if r.incident_id == overdue.id]
    digests = [r for r in before_reply if r.kind == "digest"]
    (digest,) = [r for r in digests if r.contact == "manager"]
    assert digest.created_at == EVENING + timedelta(hours=10, minutes=45)  # 07:30 in Paris
    assert any(f"#INC-{overdue.id} Réponse en retard : Chez Gégé (#1)" in line for line in digest.payload["reasons"])
    # It lists what waited overnight, with the customer's (latest) words.
    assert (
        "    #1 message de Léa Martin, depuis le 20/11 20:45 (10h45m) : « Je vois que vous avez lu mon message... "
        "vous auriez au moins pu répondre »" in digest.payload["reasons"]
    )

    with write_tx(engine) as conn:
        record_hits(conn, [message(3, reply_at, "Bonjour Léa, oui bien sûr !", own=True)])
    run(engine, clock, service, reply_at + timedelta(minutes=10))
    with read_conn(engine) as conn:
        states = {i.cause.value: i.status.value for i in store.list_incidents(conn)}
        assert inbox_store.waiting(conn) == []
        answers = inbox_store.answers_between(conn, EVENING, reply_at + timedelta(hours=1))
    assert states == {"reply_due": "resolved", "reply": "resolved"}
    assert answers == [("resto", "message", (11 * 60 + 25) * 60.0, True)]

    # The monthly report counts it: one answer on messages, 11 h 25 min, past its deadline.
    with read_conn(engine) as conn:
        report = monthly_report(
            conn,
            client_id="resto",
            client_name="Chez Gégé",
            month=Month(2026, 11),
            timezone="Europe/Paris",
            now=clock.now(),
            failing_after=timedelta(hours=6),
        )
    engine.dispose()
    (line,) = report.responses
    assert (line.channel, line.answered, line.unanswered, line.rate, line.overdue) == ("message", 1, 0, 1.0, 1)
    assert line.median == timedelta(hours=11, minutes=25)
    french = render([report], "md", "fr")
    assert "Réponses aux clients" in french and "| messages | 1 | 0 | 100,0\u202f% | 11h25m | 1 |" in french
    assert json.loads(render([report], "json", "en"))["responses"][0]["median_response_seconds"] == 41100.0
