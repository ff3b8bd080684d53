"""Bot commands and buttons over real HTTP against the fake Bot API: H1-H8, B6, B4 of buttons."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from tests.support.fake_telegram import Failure, FakeTelegram
from veille.core.incidents import Urgency
from veille.notify.base import Notification
from veille.notify.telegram.bot import AlertLine, TelegramBot
from veille.notify.telegram.notifier import TelegramNotifier
from veille.notify.telegram.settings import Pacing, TelegramContact, TelegramSettings
from veille.runtime.telegram import StoreBackend
from veille.store.engine import make_engine, write_tx
from veille.store.schema import clients, hits, metadata, sources

ALICE, BOB, EVE = 111, 222, 999
TEAM = -100500
NOW = datetime.now(UTC)


@dataclass
class FakeActions:
    """The alerting service's side of the buttons, recording what it was asked."""

    acked: list[tuple[int, str]] = field(default_factory=list)
    snoozed: list[tuple[int, str, datetime]] = field(default_factory=list)
    muted: list[tuple[str, str, datetime]] = field(default_factory=list)
    incidents: dict[int, str] = field(default_factory=lambda: {42: "acme", 43: "beta"})

    async def ack(self, incident_id: int, contact: str) -> bool:
        first = all(i != incident_id for i, _ in self.acked)
        self.acked.append((incident_id, contact))
        return first

    async def snooze(self, incident_id: int, contact: str, until: datetime) -> bool:
        self.snoozed.append((incident_id, contact, until))
        return True

    async def mute(self, client_id: str, contact: str, until: datetime) -> bool:
        self.muted.append((client_id, contact, until))
        return True


class Backend(StoreBackend):
    """Real hit/status queries; incidents from the fake service (the alerting tables are not ours)."""

    def __init__(self, engine: Engine, actions: FakeActions) -> None:
        super().__init__(engine, actions)
        self.fake = actions
        self.hit_queries: list[list[str]] = []

    async def hits(self, client_ids: Sequence[str], since: datetime, limit: int) -> list:  # type: ignore[override]
        self.hit_queries.append(list(client_ids))
        return await super().hits(client_ids, since, limit)

    async def alerts(self, client_ids: Sequence[str]) -> list[AlertLine]:
        return [
            AlertLine(i, c, "open", "high", f"Bad buzz <b>{c}</b>", NOW)
            for i, c in self.fake.incidents.items()
            if c in client_ids
        ]

    async def incident_client(self, incident_id: int) -> str | None:
        return self.fake.incidents.get(incident_id)


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    import veille.store.schema_telegram  # noqa: F401

    eng = make_engine(f"sqlite:///{tmp_path / 'veille.db'}")
    metadata.create_all(eng)
    with write_tx(eng) as conn:
        for client in ("acme", "beta"):
            conn.execute(insert(clients).values(id=client, name=client.upper(), updated_at=NOW))
            source_id = conn.execute(
                insert(sources).values(
                    key=f"{client}/rss",
                    client_id=client,
                    kind="rss",
                    target="https://ex.org/feed",
                    every_seconds=60,
                    enabled=True,
                    in_config=True,
                    status="failing" if client == "beta" else "ok",
                    failing_since=NOW if client == "beta" else None,
                    last_error_kind="http_5xx",
                    consecutive_errors=0,
                    hits_count=0,
                )
            ).inserted_primary_key[0]
            for i in range(3):
                conn.execute(
                    insert(hits).values(
                        source_id=source_id,
                        client_id=client,
                        external_id=f"{client}-{i}",
                        text_hash=f"t{client}{i}",
                        content_hash=f"c{client}{i}",
                        content_changes=0,
                        kind="rss",
                        url="javascript:alert(1)" if i else "https://ex.org/a?b=1&c=2",
                        title="",
                        text=f"{client} post {i} <script>",
                        author="@x",
                        direct=False,
                        published_at=NOW,
                        fetched_at=NOW - timedelta(minutes=i),
                        sentiment_label="neg",
                        sentiment_score=-0.8,
                    )
                )
    yield eng
    eng.dispose()


def settings_for(fake: FakeTelegram) -> TelegramSettings:
    return TelegramSettings(
        api_base_url=fake.base_url,
        request_timeout=3.0,
        allowed_chats=(TEAM,),
        contacts=(TelegramContact("alice", ALICE, ALICE, ("acme",)), TelegramContact("bob", BOB, BOB, ("*",))),
        command_rate_per_minute=20,
        pacing=Pacing(per_chat_interval=0.0),
    )


@dataclass
class Harness:
    fake: FakeTelegram
    notifier: TelegramNotifier
    bot: TelegramBot
    actions: FakeActions
    backend: Backend
    slept: list[float]

    async def poll(self) -> int:
        return await self.bot.poll_once()

    def replies(self, chat: int) -> list[str]:
        return [str(c.params["text"]) for c in self.fake.sent_to(chat)]


@pytest.fixture
async def h(fake: FakeTelegram, engine: Engine) -> AsyncIterator[Harness]:
    settings = settings_for(fake)
    notifier = TelegramNotifier(settings, fake.token, engine=engine)
    await notifier.start()
    actions = FakeActions()
    backend = Backend(engine, actions)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    bot = TelegramBot(
        settings, notifier, backend, client_ids=["acme", "beta"], engine=engine, sleep=sleep, poll_timeout=0
    )
    yield Harness(fake, notifier, bot, actions, backend, slept)
    await notifier.aclose()


async def test_hits_for_an_allowed_contact(h: Harness) -> None:
    h.fake.push_message(ALICE, ALICE, "/hits")
    await h.poll()
    [reply] = h.replies(ALICE)
    assert "acme post 0 &lt;script&gt;" in reply and "beta" not in reply
    assert '<a href="https://ex.org/a?b=1&amp;c=2">' in reply
    assert "javascript" not in reply  # B9 in replies too
    h.fake.push_message(BOB, BOB, "/hits beta 2h")
    await h.poll()
    assert "beta post 0" in h.replies(BOB)[-1]


async def test_h1_stranger_gets_no_data_and_refusals_are_logged_with_ids_only(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="veille.telegram.bot")
    for _ in range(5):
        h.fake.push_message(EVE, EVE, "/hits acme secret-words")
    await h.poll()
    assert h.fake.sent_to(EVE) == []
    assert h.backend.hit_queries == []  # no query for client data
    refusals = [r for r in caplog.records if r.message.startswith("bot.refused")]
    assert len(refusals) == 1  # rate-limited
    assert refusals[0].chat == EVE and refusals[0].user == EVE
    assert refusals[0].message == f"bot.refused chat={EVE} user={EVE} what=command"
    assert "secret-words" not in caplog.text


async def test_h2_chat_and_user_are_both_checked(h: Harness) -> None:
    h.fake.push_message(-100777, ALICE, "/hits")  # allowed user, foreign group
    h.fake.push_message(TEAM, EVE, "/hits")  # allowed group, stranger
    await h.poll()
    assert h.fake.sent_to(-100777) == [] and h.fake.sent_to(TEAM) == []
    assert h.backend.hit_queries == []
    h.fake.push_message(TEAM, ALICE, "/hits")  # allowed user in the allowed group
    await h.poll()
    assert len(h.fake.sent_to(TEAM)) == 1


async def test_h3_client_scoping(h: Harness) -> None:
    h.fake.push_message(ALICE, ALICE, "/hits beta")
    h.fake.push_message(ALICE, ALICE, "/hits nosuch")
    h.fake.push_message(ALICE, ALICE, "/ack 43")
    h.fake.push_message(ALICE, ALICE, "/mute beta 2h")
    h.fake.push_message(ALICE, ALICE, "/alerts")
    await h.poll()
    replies = h.replies(ALICE)
    assert replies[0] == "Client inconnu ou non autorisé : beta"
    assert replies[1] == "Client inconnu ou non autorisé : nosuch"  # same answer: no enumeration
    assert replies[2] == "Incident inconnu ou non autorisé : 43"
    assert "non autorisé" in replies[3]
    assert "#INC-42" in replies[4] and "#INC-43" not in replies[4]
    assert "&lt;b&gt;acme&lt;/b&gt;" in replies[4]
    assert h.backend.hit_queries == [] and h.actions.acked == [] and h.actions.muted == []


async def test_ack_mute_status_digest(h: Harness, engine: Engine) -> None:
    for command in ("/ack 42", "/ack #INC-42", "/mute ACME 2h", "/status", "/digest", "/help", "/nope"):
        h.fake.push_message(BOB, BOB, command)
    await h.poll()
    replies = h.replies(BOB)
    assert replies[0] == "✅ #INC-42 pris en charge."
    assert replies[1] == "#INC-42 était déjà pris en charge."
    assert replies[2].startswith("🔕 acme en sourdine jusqu'à")
    assert h.actions.muted[0][0] == "acme" and h.actions.muted[0][1] == "bob"
    assert "beta/rss : erreur du serveur (5xx)" in replies[3] and "Aucune alerte en attente" in replies[3]
    assert "acme : 3 publication(s), 3 négative(s), 1 alerte(s) en cours" in replies[4]
    assert replies[5].startswith("Commandes") and replies[6].startswith("Commandes")


async def test_h5_argument_abuse(h: Harness, engine: Engine) -> None:
    for command in (
        "/hits " + "a" * 10_000,
        "/hits acme';DROP/**/TABLE/**/hits;--",
        "/hits %",
        "/hits acme 99999d",
        "/mute acme forever",
        "/ack 1 2",
        "/hits a b c d e",
        "/ack 99999999999999999",
    ):
        h.fake.push_message(BOB, BOB, command)
    await h.poll()
    replies = h.replies(BOB)
    assert replies[0] == "Argument trop long (max 64 caractères)."
    assert replies[1].startswith("Client inconnu") and replies[2].startswith("Client inconnu")
    assert replies[3].startswith("Durée invalide")
    assert replies[4].startswith("Usage : /mute") and replies[5].startswith("Usage : /ack")
    assert replies[6] == "Trop d'arguments." and replies[7].startswith("Usage : /ack")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(hits)).scalar() == 6


async def test_h6_command_flood_is_limited_per_user(h: Harness) -> None:
    for _ in range(100):
        h.fake.push_message(ALICE, ALICE, "/status")
    h.fake.push_message(BOB, BOB, "/status")
    await h.poll()
    replies = h.replies(ALICE)
    assert len(replies) == 21  # 20 answers, then one notice, then silence
    assert replies[-1].startswith("Trop de commandes")
    assert len(h.replies(BOB)) == 1  # per user, not global


async def test_h7_odd_updates_do_not_crash(h: Harness) -> None:
    h.fake.push_message(ALICE, ALICE, "/hits", key="edited_message")
    h.fake.push_message(-100900, None, "/hits", chat_type="channel", key="channel_post")
    h.fake.push_message(TEAM, None, "/hits")  # no from_user
    h.fake.push_message(ALICE, ALICE, "just text")
    h.fake.push_update(
        {
            "my_chat_member": {
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "x"},
                "date": 0,
                "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "b"}},
                "new_chat_member": {
                    "status": "kicked",
                    "until_date": 0,
                    "user": {"id": 1, "is_bot": True, "first_name": "b"},
                },
            }
        }
    )
    h.fake.push_message(ALICE, ALICE, "/alerts@veille_test_bot")
    h.fake.push_message(ALICE, ALICE, "/alerts@other_bot")
    assert await h.poll() == 7
    assert len(h.fake.calls_to("sendMessage")) == 1  # only the addressed /alerts


async def test_h8_start_enrols_nobody(h: Harness, engine: Engine) -> None:
    h.fake.push_message(EVE, EVE, "/start")
    h.fake.push_message(EVE, EVE, "/start")
    await h.poll()
    [reply] = h.replies(EVE)
    assert "privé" in reply and str(EVE) in reply  # only their own ids, to hand to the admin
    h.fake.push_message(EVE, EVE, "/hits")
    await h.poll()
    assert len(h.replies(EVE)) == 1
    assert EVE not in h.bot.settings.allowed_user_ids
    assert h.backend.hit_queries == []


def alert(incident_id: int = 42, client: str = "acme") -> Notification:
    return Notification(
        outbox_id=1,
        incident_id=incident_id,
        tag=f"#INC-{incident_id}",
        kind="opened",
        client_id=client,
        client_name=client.upper(),
        contact="alice",
        urgency=Urgency.HIGH,
        silent=False,
        title="Avis <b>négatifs</b>",
        reasons=("risque 0.93",),
    )


def buttons_of(call: object) -> dict[str, str]:
    markup = call.params["reply_markup"]  # type: ignore[attr-defined]
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


async def test_h4_button_double_tap_acks_once_and_edits_the_message(h: Harness) -> None:
    await h.notifier.send(alert(), str(ALICE))
    [sent] = h.fake.sent_to(ALICE)
    tokens = buttons_of(sent)
    message_id = int(sent.params["message_id"])
    h.fake.push_callback(ALICE, ALICE, tokens["Je gère"], message_id)
    h.fake.push_callback(ALICE, ALICE, tokens["Je gère"], message_id)  # double tap
    await h.poll()
    assert h.actions.acked == [(42, "alice")]
    [edit] = h.fake.calls_to("editMessageText")
    assert "✅ Pris en charge par Alice à" in edit.params["text"]
    assert "Avis &lt;b&gt;négatifs&lt;/b&gt;" in edit.params["text"]
    assert list(buttons_of(edit)) == ["Voir les hits"]
    answers = [c.params.get("text") for c in h.fake.calls_to("answerCallbackQuery")]
    assert answers[1] == "Déjà fait."


async def test_merged_digest_buttons_ack_one_incident_each(h: Harness) -> None:
    results = await asyncio.gather(*(h.notifier.send(alert(i), str(BOB)) for i in range(50, 60)))
    merged = next(c for c in h.fake.sent_to(BOB) if "alertes groupées" in c.params["text"])
    tokens = buttons_of(merged)
    assert len(results) == 10 and len(tokens) >= 4
    first_label = next(iter(tokens))
    incident = int(first_label.split("#INC-")[1])
    h.fake.push_callback(BOB, BOB, tokens[first_label], int(merged.params["message_id"]), "Bob")
    await h.poll()
    assert h.actions.acked == [(incident, "bob")]
    [edit] = h.fake.calls_to("editMessageText")
    assert f"#INC-{incident} ✅ Pris en charge par Bob" in edit.params["text"]
    assert first_label not in buttons_of(edit) and len(buttons_of(edit)) == len(tokens) - 1


async def test_h4_forged_and_foreign_tokens_do_nothing(h: Harness) -> None:
    await h.notifier.send(alert(43, "beta"), str(BOB))
    bob_tokens = buttons_of(h.fake.sent_to(BOB)[0])
    await h.notifier.send(alert(), str(ALICE))
    alice_call = h.fake.sent_to(ALICE)[0]
    h.fake.push_callback(ALICE, ALICE, "forged-token", int(alice_call.params["message_id"]))
    h.fake.push_callback(ALICE, ALICE, bob_tokens["Je gère"], int(alice_call.params["message_id"]))  # other chat
    h.fake.push_callback(ALICE, EVE, buttons_of(alice_call)["Je gère"], int(alice_call.params["message_id"]))
    h.fake.push_callback(ALICE, ALICE, "x" * 200, 1)
    await h.poll()
    assert h.actions.acked == []
    assert h.fake.calls_to("editMessageText") == []
    assert {c.params.get("text") for c in h.fake.calls_to("answerCallbackQuery")} == {"Bouton expiré ou invalide."}


async def test_snooze_then_mute_then_show_buttons(h: Harness) -> None:
    await h.notifier.send(alert(), str(ALICE))
    sent = h.fake.sent_to(ALICE)[0]
    tokens = buttons_of(sent)
    mid = int(sent.params["message_id"])
    h.fake.push_callback(ALICE, ALICE, tokens["Rappelle-moi dans 1 h"], mid)
    h.fake.push_callback(ALICE, ALICE, tokens["Muet 24 h"], mid)
    h.fake.push_callback(ALICE, ALICE, tokens["Voir les hits"], mid)
    await h.poll()
    assert h.actions.snoozed[0][:2] == (42, "alice")
    assert h.actions.muted[0][:2] == ("acme", "alice")
    edits = h.fake.calls_to("editMessageText")
    assert "⏰ Rappel à" in edits[1].params["text"] and "🔕 acme muet jusqu'à" in edits[1].params["text"]
    assert list(buttons_of(edits[1])) == ["Je gère", "Voir les hits"]
    assert "acme post 0" in h.replies(ALICE)[-1]


async def test_b6_conflict_backs_off_with_one_error_and_alerts_still_go(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="veille.telegram.bot")
    h.fake.conflict_polling(True)
    for _ in range(4):
        await h.poll()
    assert h.slept == [5.0, 10.0, 20.0, 40.0]  # backing off, not fighting the other poller
    assert [r.message.split()[0] for r in caplog.records].count("bot.conflict") == 1
    await h.notifier.send(alert(), str(ALICE))
    assert len(h.fake.sent_to(ALICE)) == 1
    h.fake.conflict_polling(False)
    await h.poll()
    assert h.bot.state.backoff == 0.0


async def test_poll_waits_out_flood_and_survives_bad_token(h: Harness, fake: FakeTelegram) -> None:
    fake.fail_next("getUpdates", Failure.flood(3))
    await h.poll()
    assert h.slept == [3.5]
    before = len(fake.calls_to("getUpdates"))
    await h.poll()  # still inside the persisted flood wait: no request at all (B8)
    assert len(fake.calls_to("getUpdates")) == before and 2.0 < h.slept[-1] <= 3.0
    h.notifier._retry_until = None
    from veille.store import telegram as tg_store

    tg_store.clear_state(h.bot._engine, tg_store.RETRY_UNTIL, NOW)  # type: ignore[arg-type]
    fake.fail_next("getUpdates", Failure.unauthorized())
    await h.poll()
    assert h.slept[-1] == 600.0


async def test_a_gone_route_comes_back_when_its_user_writes(h: Harness, engine: Engine) -> None:
    from veille.store import telegram as tg_store

    tg_store.mark_route_gone(engine, str(ALICE), "blocked", NOW)
    h.fake.push_message(ALICE, ALICE, "/help")
    await h.poll()
    assert not tg_store.get_route(engine, str(ALICE)).gone


async def test_run_loop_stops(h: Harness) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(h.bot.run(stop))
    h.fake.push_message(BOB, BOB, "/status")
    for _ in range(200):
        if h.replies(BOB):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(h.replies(BOB)) == 1


async def test_inbox_lists_what_awaits_an_answer_for_the_contacts_clients(h: Harness, engine: Engine) -> None:
    from veille.store import inbox as inbox_store

    with write_tx(engine) as conn:
        inbox_store.record(
            conn,
            [
                inbox_store.Message(
                    client,
                    f"{client}/fb",
                    "message",
                    f"t_{client}",
                    NOW - timedelta(hours=3),
                    False,
                    "question",
                    "Léa <b>",
                    f"{client}: vous livrez ?",
                    "https://ex.org/t?x=1&y=2",
                )
                for client in ("acme", "beta")
            ],
        )
    h.fake.push_message(ALICE, ALICE, "/inbox")
    await h.poll()
    (reply,) = h.replies(ALICE)
    assert reply.startswith("📥 <b>#1</b> · acme · message de Léa &lt;b&gt;, attend depuis 3h")
    assert "acme: vous livrez ?" in reply and "beta" not in reply  # only the contact's clients
    assert 'href="https://ex.org/t?x=1&amp;y=2"' in reply
    with write_tx(engine) as conn:
        inbox_store.close_by_hand(conn, 1, inbox_store.State.NO_REPLY, "bot", NOW)
    h.fake.push_message(ALICE, ALICE, "/inbox")
    await h.poll()
    assert h.replies(ALICE)[-1] == "Rien n'attend de réponse."
