"""End to end: a bad buzz in a local feed -> real scoring and detection -> exactly one ringing Telegram
message on the fake Bot API -> "Je gère" pressed -> acknowledged -> nothing more rings before the
repeat interval."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.daemon import config_text
from tests.support.fake_telegram import FakeTelegram
from tests.support.feedgen import ANGRY, rss
from tests.support.server import LocalServer, Response
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.notify.telegram.bot import TelegramBot
from veille.runtime.alerting import AlertingService
from veille.runtime.wiring import build, close_all
from veille.store import alerts as alert_store
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import hits

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 10:00 in Paris
CHAT = 111


def items(start: int, count: int, at: datetime) -> list[dict[str, str]]:
    return [
        {
            "title": ANGRY[n % len(ANGRY)][:60],
            "text": ANGRY[n % len(ANGRY)] + f" (#{n})",
            "guid": f"urn:buzz:{n}",
            "link": f"https://news.example.org/buzz/{n}",
            "date": format_datetime(at - timedelta(seconds=30 * (n - start))),
        }
        for n in range(start, start + count)
    ]


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


async def test_bad_buzz_rings_once_button_acks_and_nothing_rings_before_repeat(
    tmp_path: Path, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_TELEGRAM_TOKEN", fake.token)
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    with LocalServer() as feeds:
        feed = {"body": rss(items(0, 6, START))}
        feeds.route("/feed", lambda _r: Response(200, feed["body"], {"Content-Type": "application/rss+xml"}))
        extra = f"""
[alerting]
group_wait = "0s"

[[contacts]]
id = "camille"
name = "Camille"
channel = "telegram"
address = "{CHAT}"
clients = ["resto"]
low_urgency_rings = true

[telegram]
token_env = "E2E_TELEGRAM_TOKEN"
api_base_url = "{fake.base_url}"
"""
        text = config_text(db_url, {"resto": [feeds.url("/feed")]}, extra=extra)
        config = parse_config(text, environ={})
        migrate = make_engine(db_url)
        upgrade(migrate)
        migrate.dispose()
        clock = FakeClock(START)
        components = build(config, clock=clock)  # the daemon's own wiring: real scorer, detection, channels
        for starter in components.starters:
            await starter()  # checks the bot token (getMe)
        engine = components.engine
        pipeline = components.pipeline
        service = pipeline.hooks
        assert isinstance(service, AlertingService)
        [bot] = [
            task.__self__ for task in components.background if isinstance(getattr(task, "__self__", None), TelegramBot)
        ]
        await pipeline.start()
        key = next(iter(pipeline.runtimes))

        async def cycle(seconds: float) -> None:
            clock.advance(seconds)
            service.tick()
            while await service.dispatcher.pump():
                pass

        try:
            await pipeline.poll(key, force=True)
            await pipeline.stop()
            await pipeline.start()
            await cycle(1)
            await cycle(1)
            sent = fake.sent_to(CHAT)
            assert len(sent) == 1, [c.params["text"][:80] for c in sent]
            assert sent[0].params["disable_notification"] in ("false", False)  # it rings
            assert "resto" in sent[0].params["text"] and "#INC-" in sent[0].params["text"]
            buttons = {
                b["text"]: b["callback_data"] for row in sent[0].params["reply_markup"]["inline_keyboard"] for b in row
            }

            fake.push_callback(CHAT, CHAT, buttons["Je gère"], int(sent[0].params["message_id"]), "Camille")
            fake.push_callback(CHAT, CHAT, buttons["Je gère"], int(sent[0].params["message_id"]), "Camille")
            await bot.poll_once()
            with read_conn(engine) as conn:
                [incident] = alert_store.list_incidents(conn, active_only=True)
            assert incident.acked_by == "camille"
            [edit] = fake.calls_to("editMessageText")
            assert "Pris en charge par Camille" in edit.params["text"]

            feed["body"] = rss(items(0, 12, START + timedelta(minutes=5)))  # the buzz goes on
            clock.advance(300)
            await pipeline.poll(key, force=True)
            await pipeline.stop()
            await pipeline.start()
            for _ in range(10):  # ten more minutes of ticks, well inside the 2 h repeat/ack timeout
                await cycle(60)
            ringing = [c for c in fake.sent_to(CHAT) if c.params.get("disable_notification") in ("false", False)]
            assert len(ringing) == 1, [c.params["text"][:60] for c in fake.sent_to(CHAT)]
            with read_conn(engine) as conn:
                assert conn.execute(select(func.count()).select_from(hits)).scalar() == 12  # new evidence came
                [still] = alert_store.list_incidents(conn, active_only=True)
            assert still.id == incident.id and still.acked_by == "camille"
        finally:
            await pipeline.stop()
            await close_all(components)
