"""TelegramNotifier over real HTTP against the fake Bot API: B1, B3-B8, B11, A8."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.support.fake_telegram import Failure, FakeTelegram
from veille.core.incidents import Urgency
from veille.notify.base import (
    Notification,
    NotifierAuthFailed,
    NotifyPermanent,
    NotifyRateLimited,
    NotifyRetryable,
    RecipientGone,
)
from veille.notify.telegram.notifier import TelegramNotifier
from veille.notify.telegram.settings import Pacing, TelegramSettings
from veille.store import telegram as store
from veille.store.engine import make_engine
from veille.store.schema import metadata

CHAT = 111
GROUP = -100200


def note(incident_id: int = 42, *, silent: bool = False, title: str = "Bad buzz", kind: str = "opened") -> Notification:
    return Notification(
        outbox_id=incident_id,
        incident_id=incident_id,
        tag=f"#INC-{incident_id}",
        kind=kind,
        client_id="acme",
        client_name="ACME",
        contact="alice",
        urgency=Urgency.HIGH,
        silent=silent,
        title=title,
        reasons=("risque 0.9",),
    )


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    import veille.store.schema_telegram  # noqa: F401  (registers the tables on the shared metadata)

    eng = make_engine(f"sqlite:///{tmp_path / 'veille.db'}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def settings_for(fake: FakeTelegram, **pacing: float) -> TelegramSettings:
    return TelegramSettings(api_base_url=fake.base_url, request_timeout=2.0, pacing=Pacing(**pacing))


@pytest.fixture
async def notifier(fake: FakeTelegram, engine: Engine) -> AsyncIterator[TelegramNotifier]:
    n = TelegramNotifier(settings_for(fake, per_chat_interval=0.0), fake.token, engine=engine)
    await n.start()
    yield n
    await n.aclose()


async def test_send_html_with_buttons_and_silent_flag(notifier: TelegramNotifier, fake: FakeTelegram) -> None:
    delivery = await notifier.send(note(silent=True), str(CHAT))
    [call] = fake.sent_to(CHAT)
    assert call.params["parse_mode"] == "HTML"
    assert call.params["disable_notification"] in ("true", True)
    assert delivery.message_ids == (str(call.params["message_id"]),)
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["Je gère", "Rappelle-moi dans 1 h", "Muet 24 h", "Voir les hits"]
    # Opaque random tokens (stored server-side), not "ack:42": nothing to forge, nothing that names the incident.
    tokens = [b["callback_data"] for b in buttons]
    assert all(len(t) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]{16,}", t) for t in tokens) and len(set(tokens)) == 4
    await notifier.send(note(43), str(CHAT))
    assert fake.sent_to(CHAT)[-1].params["disable_notification"] in ("false", False)


async def test_b1_entity_error_resent_once_as_plain_text(notifier: TelegramNotifier, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", Failure.entities())
    await notifier.send(note(), str(CHAT))
    sends = fake.calls_to("sendMessage")
    assert [c.params.get("parse_mode") for c in sends] == ["HTML", None]
    assert len(fake.sent_to(CHAT)) == 1
    fake.fail_next("sendMessage", Failure.entities(), times=2)
    with pytest.raises(NotifyPermanent):
        await notifier.send(note(44), str(CHAT))
    assert len(fake.calls_to("sendMessage")) == 4  # never retried as is


async def test_b3_blocked_marks_route_gone_once(
    notifier: TelegramNotifier, fake: FakeTelegram, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    fake.block_chat(CHAT)
    for _ in range(3):
        with pytest.raises(RecipientGone):
            await notifier.send(note(), str(CHAT))
    assert len(fake.calls_to("sendMessage")) == 1  # no retry, no further attempts
    assert store.get_route(engine, str(CHAT)).gone
    [gone] = [r for r in caplog.records if r.message.startswith("telegram.recipient_gone")]
    assert gone.message == f"telegram.recipient_gone address={CHAT} chat={CHAT}"
    store.restore_route(engine, str(CHAT), notifier._clock.now())
    fake._blocked.clear()
    await notifier.send(note(), str(CHAT))


async def test_b4_migrated_group_is_updated_and_resent_once(
    notifier: TelegramNotifier, fake: FakeTelegram, engine: Engine
) -> None:
    fake.migrate_chat(GROUP, -100999)
    await notifier.send(note(), str(GROUP))
    assert [c.chat_id for c in fake.calls_to("sendMessage")] == [str(GROUP), "-100999"]
    assert store.get_route(engine, str(GROUP)).chat_id == "-100999"
    await notifier.send(note(43), str(GROUP))
    assert fake.calls_to("sendMessage")[-1].chat_id == "-100999"


async def test_b5_bad_token_at_start_and_at_runtime(fake: FakeTelegram, engine: Engine) -> None:
    bad = TelegramNotifier(settings_for(fake), "999:WRONG-secret-token-value", engine=engine)
    with pytest.raises(NotifierAuthFailed) as info:
        await bad.start()
    assert "WRONG-secret" not in str(info.value) and "WRONG-secret" not in repr(info.value)
    assert "WRONG-secret" not in "".join(traceback.format_exception(info.value))
    before = len(fake.calls)
    for _ in range(5):  # paused: no retry storm
        with pytest.raises(NotifierAuthFailed):
            await bad.send(note(), str(CHAT))
    assert len(fake.calls) == before
    assert bad.status()["auth_ok"] is False
    await bad.aclose()


async def test_a_fixed_token_sends_at_once_after_the_restart(fake: FakeTelegram, engine: Engine) -> None:
    """The rejected token's pause is stored; a start whose getMe succeeds clears it instead of reading it back."""
    bad = TelegramNotifier(settings_for(fake), "999:WRONG-secret-token-value", engine=engine)
    with pytest.raises(NotifierAuthFailed):
        await bad.start()
    await bad.aclose()
    assert store.get_state(engine, store.AUTH_FAILED)[0] is not None
    fixed = TelegramNotifier(settings_for(fake, per_chat_interval=0.0), fake.token, engine=engine)
    await fixed.start()
    try:
        assert fixed.status()["auth_ok"] is True
        assert store.get_state(engine, store.AUTH_FAILED)[0] is None
        await fixed.send(note(), str(CHAT))
        assert len(fake.sent_to(CHAT)) == 1
    finally:
        await fixed.aclose()


async def test_b6_conflict_on_send_is_retryable(notifier: TelegramNotifier, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", Failure.conflict())
    with pytest.raises(NotifyRetryable):
        await notifier.send(note(), str(CHAT))


async def test_b7_burst_to_one_chat_is_paced_and_merged(fake: FakeTelegram, engine: Engine) -> None:
    n = TelegramNotifier(settings_for(fake, merge_above=2), fake.token, engine=engine)
    results = await asyncio.gather(*(n.send(note(i), str(CHAT)) for i in range(1, 101)))
    burst = fake.sent_to(CHAT)  # 100 alerts merged, not queued for minutes (the first few may go alone)
    assert len(burst) <= 4
    assert any("alertes groupées" in c.params["text"] for c in burst)
    assert {r.message_ids for r in results} == {(str(c.params["message_id"]),) for c in burst}
    await asyncio.gather(n.send(note(200), str(CHAT)), n.send(note(201), str(CHAT)))  # small: not merged
    sends = fake.sent_to(CHAT)
    assert len(sends) == len(burst) + 2
    gaps = [b.at - a.at for a, b in itertools.pairwise(sends)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    await n.aclose()


async def test_b7_group_and_global_limits(fake: FakeTelegram) -> None:
    n = TelegramNotifier(
        settings_for(fake, per_chat_interval=0.0, group_per_minute=5, global_per_second=30, merge_above=100), fake.token
    )
    sends = [n.send(note(i), str(-100 - i % 2)) for i in range(8)] + [n.send(note(i), str(1000 + i)) for i in range(40)]
    tasks = [asyncio.create_task(s) for s in sends]
    await asyncio.sleep(1.6)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    accepted = [c.at for c in fake.accepted]
    for index, at in enumerate(accepted):
        assert len([a for a in accepted[index:] if a - at < 1.0]) <= 30
    for group in ("-100", "-101"):
        assert len(fake.sent_to(group)) <= 5
    await n.aclose()


async def test_b8_global_flood_wait_is_persisted(
    notifier: TelegramNotifier, fake: FakeTelegram, engine: Engine
) -> None:
    fake.fail_next("sendMessage", Failure.flood(30))
    with pytest.raises(NotifyRateLimited) as info:
        await notifier.send(note(), str(CHAT))
    assert info.value.global_ and info.value.retry_after == 30
    count = len(fake.calls)
    with pytest.raises(NotifyRateLimited):
        await notifier.send(note(43), str(CHAT + 1))  # another chat waits too
    restarted = TelegramNotifier(settings_for(fake), fake.token, engine=engine)
    with pytest.raises(NotifyRateLimited) as again:
        await restarted.send(note(44), str(CHAT))  # a restart still waits
    assert 25 < again.value.retry_after <= 30
    assert len(fake.calls) == count
    await restarted.aclose()


async def test_a8_timeout_after_accepting_is_ambiguous(fake: FakeTelegram) -> None:
    settings = TelegramSettings(api_base_url=fake.base_url, request_timeout=1.0)
    n = TelegramNotifier(settings, fake.token)
    fake.hang_next("sendMessage", 2.0)
    with pytest.raises(NotifyRetryable) as info:
        await n.send(note(), str(CHAT))
    assert info.value.ambiguous
    assert len(fake.sent_to(CHAT)) == 1  # Telegram did take it
    await n.aclose()


async def test_5xx_and_connection_refused_are_retryable_not_ambiguous(fake: FakeTelegram) -> None:
    n = TelegramNotifier(settings_for(fake), fake.token)
    fake.fail_next("sendMessage", Failure.server(502))
    with pytest.raises(NotifyRetryable) as info:
        await n.send(note(), str(CHAT))
    assert not info.value.ambiguous
    await n.aclose()
    dead = TelegramNotifier(TelegramSettings(api_base_url="http://127.0.0.1:9/bot", request_timeout=1.0), fake.token)
    with pytest.raises(NotifyRetryable) as refused:
        await dead.send(note(), str(CHAT))
    assert not refused.value.ambiguous
    await dead.aclose()


async def test_telegrams_502_page_is_one_plain_retryable_failure_without_traceback(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """api.telegram.org's front answers nginx's HTML page when the Bot API is down: no traceback per attempt."""
    caplog.set_level(logging.INFO)
    n = TelegramNotifier(settings_for(fake, per_chat_interval=0.0), fake.token)
    await n.start()
    fake.fail_next("sendMessage", Failure.gateway_page(502), times=2)
    fake.fail_next("sendMessage", Failure.gateway_page(504), times=1)
    try:
        for _ in range(3):
            with pytest.raises(NotifyRetryable) as info:
                await n.send(note(), str(CHAT))
            assert not info.value.ambiguous
            assert "<html>" not in str(info.value)
        assert "Bad Gateway" in str(info.value) or "Gateway Timeout" in str(info.value)
        assert [r for r in caplog.records if r.exc_info or r.name.startswith("telegram")] == []
        assert all(len(r.getMessage().splitlines()) == 1 for r in caplog.records)
    finally:
        await n.aclose()


async def test_b11_token_never_in_logs_errors_or_tracebacks(
    fake: FakeTelegram, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    n = TelegramNotifier(settings_for(fake), fake.token, engine=engine)
    httpx_logger = logging.getLogger("httpx")
    httpx_logger.setLevel(logging.DEBUG)  # even if someone turns httpx's URL logging back on
    try:
        await n.start()
        await n.send(note(), str(CHAT))
    finally:
        httpx_logger.setLevel(logging.WARNING)
    assert "HTTP Request: POST" in caplog.text and "/bot***/sendMessage" in caplog.text  # logged, redacted
    fake.fail_next("sendMessage", Failure.server(500))
    errors: list[BaseException] = []
    try:
        await n.send(note(43), str(CHAT))
    except NotifyRetryable as exc:
        errors.append(exc)
    logging.getLogger("httpx").info("HTTP Request: POST %s/%s/sendMessage", fake.base_url, fake.token)
    logging.getLogger("telegram.ext.x").debug("bot is %r", n.bot)
    try:
        raise RuntimeError(f"boom {fake.token}")
    except RuntimeError:
        logging.getLogger("veille.test").exception("crash")
    bad = TelegramNotifier(settings_for(fake), fake.token + "x", engine=None)
    try:
        await bad.start()
    except NotifierAuthFailed as exc:
        errors.append(exc)
    await bad.aclose()
    await n.aclose()
    assert errors and any(fake.token in p for p in fake.requests_seen())  # it was really used
    handler_text = caplog.text + "".join(logging.Formatter("%(message)s").format(r) for r in caplog.records)
    assert fake.token not in handler_text
    assert fake.token[:20] not in handler_text
    for exc in errors:
        assert fake.token not in str(exc) and fake.token not in repr(exc)
        assert fake.token not in "".join(traceback.format_exception(exc))
    assert fake.token not in repr(n)


def test_pacer_timeline_on_a_fake_clock() -> None:
    from veille.core.clock import FakeClock
    from veille.notify.telegram.notifier import Pacer

    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async def run() -> list[float]:
        pacer = Pacer(Pacing(), clock, sleep)
        times = []
        for _ in range(3):
            async with pacer.slot("5"):
                times.append(clock.monotonic())
                clock.advance(0.2)  # the request takes 200 ms: the next one waits 1 s after it ended
        return times

    times = asyncio.run(run())
    assert [round(t - times[0], 3) for t in times] == [0.0, 1.2, 2.4]
    assert time.monotonic() > 0


async def test_j4_telegram_down_at_boot_does_not_stop_the_start() -> None:
    down = TelegramNotifier(
        TelegramSettings(api_base_url="http://127.0.0.1:9/bot", request_timeout=1.0), "123:abcdefabcdef"
    )
    await down.start()  # logged, not raised: polling and storage go on
    with pytest.raises(NotifyRetryable):
        await down.send(note(), str(CHAT))
    await down.aclose()


async def test_busy_database_never_turns_a_delivered_alert_into_a_failure(fake: FakeTelegram, engine: Engine) -> None:
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    broken = {"on": True}

    @event.listens_for(engine, "begin")
    def _refuse_writes(connection) -> None:  # type: ignore[no-untyped-def]
        if broken["on"] and connection.info.get("veille_begin") == "IMMEDIATE":
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    n = TelegramNotifier(settings_for(fake, per_chat_interval=0.0), fake.token, engine=engine)
    delivery = await n.send(note(), str(CHAT))  # buttons cannot be stored: sent without them
    [call] = fake.sent_to(CHAT)
    assert delivery.message_ids and "reply_markup" not in call.params
    fake.fail_next("sendMessage", Failure.flood(5))
    with pytest.raises(NotifyRateLimited):
        await n.send(note(43), str(CHAT))
    with pytest.raises(NotifyRateLimited):  # the wait is still kept in memory
        await n.send(note(44), str(CHAT))
    broken["on"] = False
    await n.aclose()


async def test_h6_alerts_go_before_command_replies() -> None:
    from veille.core.clock import FakeClock
    from veille.notify.telegram.notifier import Pacer

    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    pacer = Pacer(Pacing(), clock, sleep)
    order: list[str] = []

    async def take(name: str, low: bool) -> None:
        async with pacer.slot("5", low=low):
            order.append(name)

    busy = await pacer.acquire("5")  # a message to this chat is in flight
    reply = asyncio.create_task(take("reply", True))  # waiting first...
    await asyncio.sleep(0)
    alert = asyncio.create_task(take("alert", False))  # ...but the alert goes first
    await asyncio.sleep(0)
    pacer.release(busy)
    await asyncio.gather(reply, alert)
    assert order == ["alert", "reply"]


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


_outside = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "<",
                ">",
                "&",
                "&amp;",
                "<b>",
                "</a>",
                "<tg-spoiler>",
                '"',
                "😀",
                "\ud83d",
                "\u202e",
                "javascript:x",
                "\x00",
            ]
        ),
        st.characters(),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=25, deadline=None)
@given(title=_outside, reason=_outside)
def test_b1_random_text_over_http_is_never_refused(shared_fake: FakeTelegram, title: str, reason: str) -> None:
    """Through PTB and HTTP to the fake's Telegram-like HTML check: accepted first time, no fallback."""

    async def go() -> None:
        n = TelegramNotifier(settings_for(shared_fake, per_chat_interval=0.0), shared_fake.token)
        before = len(shared_fake.calls_to("sendMessage"))
        await n.send(
            Notification(
                outbox_id=1,
                incident_id=None,
                tag="#INC-1",
                kind="opened",
                client_id="a",
                client_name=title,
                contact="c",
                urgency=Urgency.LOW,
                silent=True,
                title=title,
                reasons=(reason,),
            ),
            str(CHAT),
        )
        sends = shared_fake.calls_to("sendMessage")[before:]
        assert [c.status for c in sends] == [200] and sends[0].params["parse_mode"] == "HTML"
        await n.aclose()

    asyncio.run(go())


def report_note(number: int) -> Notification:
    from veille.notify.base import Attachment

    return Notification(
        outbox_id=900 + number,
        incident_id=None,
        tag=f"#REPORT-acme-2026-{number:02d}",
        kind="report",
        client_id="acme",
        client_name="ACME",
        contact="alice",
        urgency=Urgency.LOW,
        silent=True,
        title=f"Rapport mensuel — ACME — <mois {number}>",
        reasons=("4 hits, contre 5 le mois précédent (−20,0 %).",),
        attachment=Attachment(f"acme-2026-{number:02d}.html", f"<!DOCTYPE html><p>rapport {number}</p>"),
    )


async def test_a_report_goes_as_a_document_alone_even_in_a_burst(fake: FakeTelegram, engine: Engine) -> None:
    """A file cannot ride in a merged digest: each report is one sendDocument with its summary as caption."""
    n = TelegramNotifier(settings_for(fake, merge_above=2, per_chat_interval=0.0), fake.token, engine=engine)
    sends = [n.send(note(i), str(CHAT)) for i in range(1, 21)] + [n.send(report_note(m), str(CHAT)) for m in (10, 11)]
    results = await asyncio.gather(*sends)
    documents = fake.calls_to("sendDocument")
    assert sorted(c.params["document"].filename for c in documents) == ["acme-2026-10.html", "acme-2026-11.html"]
    assert {c.params["document"].content for c in documents} == {
        b"<!DOCTYPE html><p>rapport 10</p>",
        b"<!DOCTYPE html><p>rapport 11</p>",
    }
    caption = documents[0].params["caption"]
    assert "Rapport mensuel" in caption and "&lt;mois" in caption and "4 hits, contre 5" in caption
    assert all(c.params.get("parse_mode") == "HTML" for c in documents)
    assert {r.message_ids for r in results[-2:]} == {(str(c.params["message_id"]),) for c in documents}
    assert len(fake.calls_to("sendMessage")) < 20  # the alerts themselves were merged
    await n.aclose()


async def test_a_report_caption_rejected_as_html_goes_as_plain_text(
    notifier: TelegramNotifier, fake: FakeTelegram
) -> None:
    fake.fail_next("sendDocument", Failure.entities())
    delivery = await notifier.send(report_note(11), str(CHAT))
    first, second = fake.calls_to("sendDocument")
    assert first.params.get("parse_mode") == "HTML" and second.params.get("parse_mode") is None
    assert "<mois 11>" in second.params["caption"] and delivery.message_ids == (str(second.params["message_id"]),)
