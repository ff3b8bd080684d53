"""End to end: a customer's message waits -> the daemon's own wiring sends its reminder, then its overdue
incident, to the fake Bot API with "Répondu" / "Pas besoin de réponse" -> a press in the real update loop
closes the conversation as `veille inbox done|no-reply` does (who and when recorded), any later press says
who closed it, and the next tick resolves both incidents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.daemon import config_text
from tests.support.fake_telegram import Call, FakeTelegram
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.core.models import Channel, StoredHit
from veille.notify.telegram.bot import TelegramBot
from veille.runtime.alerting import AlertingService
from veille.runtime.inbox import record_hits
from veille.runtime.wiring import build, close_all
from veille.store import alerts as alert_store
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.migrate import upgrade

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 10:00 in Paris: day time, the messages go out (silently)
CHAT = 111
LABELS = {
    "fr": ("Répondu", "Pas besoin de réponse", "#1 a déjà été fermé par camille à 12:05."),
    "en": ("Replied", "No reply needed", "#1 was already closed by camille at 12:05."),
}


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def customer_message(at: datetime) -> StoredHit:
    return StoredHit(
        id=1,
        client_id="resto",
        source_key="resto/fb",
        kind="facebook",
        external_id="m_1",
        text="Bonjour, vous livrez le dimanche ?",
        title="",
        url="https://facebook.example/t_10",
        author="Léa Martin",
        author_followers=None,
        direct=True,
        published_at=at,
        fetched_at=at,
        channel=Channel.MESSAGE,
        conversation="t_10",
        from_client=False,
    )


def buttons(call: Call) -> dict[str, str]:
    rows = call.params.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_reminder_buttons_close_the_conversation_once(
    tmp_path: Path, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    answered, no_reply, already = LABELS[lang]
    monkeypatch.setenv("E2E_TELEGRAM_TOKEN", fake.token)
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    extra = f"""
[alerting]
group_wait = "0s"

[[contacts]]
id = "camille"
name = "Camille"
channel = "telegram"
address = "{CHAT}"
clients = ["resto"]
lang = "{lang}"

[telegram]
token_env = "E2E_TELEGRAM_TOKEN"
api_base_url = "{fake.base_url}"
lang = "{lang}"
"""
    config = parse_config(config_text(db_url, {"resto": ["https://example.org/feed.xml"]}, extra=extra), environ={})
    migrate = make_engine(db_url)
    upgrade(migrate)
    migrate.dispose()
    clock = FakeClock(START)
    components = build(config, clock=clock)
    for starter in components.starters:
        await starter()
    engine = components.engine
    pipeline = components.pipeline
    service = pipeline.hooks
    assert isinstance(service, AlertingService)
    [bot] = [t.__self__ for t in components.background if isinstance(getattr(t, "__self__", None), TelegramBot)]
    await pipeline.start()  # writes the configured clients

    async def run_until(until: datetime) -> None:
        while clock.now() < until:
            clock.advance(60)
            service.tick()
            while await service.dispatcher.pump():
                pass

    try:
        with write_tx(engine) as conn:
            record_hits(conn, [customer_message(START)])
        # Messages: 2 h to answer, reminded 30 min before; by 11:05 both the reminder and the overdue are out.
        await run_until(START + timedelta(hours=2, minutes=5))
        reminder, overdue = fake.sent_to(CHAT)
        assert "vous livrez le dimanche" in reminder.params["text"]
        assert "Bad buzz" not in reminder.params["text"]
        for message in (reminder, overdue):
            assert {answered, no_reply} <= set(buttons(message)), buttons(message)

        # Someone not allow-listed for this client presses: nothing closes.
        fake.push_callback(CHAT, 999, buttons(overdue)[answered], int(overdue.params["message_id"]), "Eve")
        await bot.poll_once()
        with read_conn(engine) as conn:
            assert [i.id for i in inbox_store.waiting(conn)] == [1]

        pressed_at = clock.now()
        fake.push_callback(CHAT, CHAT, buttons(overdue)[answered], int(overdue.params["message_id"]), "Camille")
        await bot.poll_once()
        with read_conn(engine) as conn:
            item = inbox_store.get(conn, 1)
            assert inbox_store.waiting(conn) == []
        assert item is not None
        assert (item.state, item.closed_by, item.closed_at) == (
            inbox_store.State.ANSWERED,
            "telegram:camille",
            pressed_at,
        )
        [edit] = fake.calls_to("editMessageText")
        assert "#1" in edit.params["text"] and "camille" in edit.params["text"]
        assert answered not in buttons(edit) and no_reply not in buttons(edit)  # the closing buttons are gone

        # A later press, of the other button on the other message or of the same one again, closes nothing.
        fake.push_callback(CHAT, CHAT, buttons(reminder)[no_reply], int(reminder.params["message_id"]), "Camille")
        fake.push_callback(CHAT, CHAT, buttons(overdue)[answered], int(overdue.params["message_id"]), "Camille")
        await bot.poll_once()
        popups = [c.params.get("text") for c in fake.calls_to("answerCallbackQuery")]
        assert popups[-2:] == [already, already], popups
        assert popups[0] == ("Bouton expiré ou invalide." if lang == "fr" else "Expired or invalid button.")
        with read_conn(engine) as conn:
            after = inbox_store.get(conn, 1)
            answers = inbox_store.answers_between(conn, START, START + timedelta(days=1))
        assert after == item and len(answers) == 1  # one answer counted, at the first press

        await run_until(clock.now() + timedelta(minutes=2))
        with read_conn(engine) as conn:
            states = {i.cause.value: i.status.value for i in alert_store.list_incidents(conn)}
        assert states == {"reply_due": "resolved", "reply": "resolved"}
    finally:
        await pipeline.stop()
        await close_all(components)
