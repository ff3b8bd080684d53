"""Telegram storage on SQLite and PostgreSQL: routes, persisted waits, one-shot callback tokens."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from veille.store import telegram as store
from veille.store.engine import make_engine
from veille.store.migrate import upgrade

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)  # through the real migrations, 0003 included
    yield eng
    eng.dispose()


def test_routes_gone_once_restore_and_move(engine: Engine) -> None:
    assert store.get_route(engine, "5") == store.Route("5", "5", "ok")
    assert store.mark_route_gone(engine, "5", "blocked", NOW) is True
    assert store.mark_route_gone(engine, "5", "blocked", NOW) is False  # the operator is told once
    assert store.get_route(engine, "5").gone
    assert store.restore_route(engine, "5", NOW) is True
    store.move_route(engine, "-1", "-1001", NOW)
    store.move_route(engine, "-1001", "-1002", NOW)  # migrated again: the first address follows
    assert store.get_route(engine, "-1").chat_id == "-1002"
    assert [r.address for r in store.list_routes(engine)] == ["-1", "-1001", "5"]


def test_flood_wait_keeps_the_longest(engine: Engine) -> None:
    store.set_state(engine, store.RETRY_UNTIL, NOW + timedelta(seconds=60), None, NOW)
    store.set_state(engine, store.RETRY_UNTIL, NOW + timedelta(seconds=5), None, NOW)
    until, _ = store.get_state(engine, store.RETRY_UNTIL)
    assert until == NOW + timedelta(seconds=60)
    store.clear_state(engine, store.RETRY_UNTIL, NOW)
    assert store.get_state(engine, store.RETRY_UNTIL) == (None, None)


def test_callback_tokens_are_claimed_once_even_concurrently(engine: Engine) -> None:
    row, tokens = store.create_message(
        engine,
        chat_id="5",
        incident_id=42,
        client_id="acme",
        tag="#INC-42",
        lang="fr",
        buttons=[store.Button("ack", 42, "acme"), store.Button("show", 42, "acme")],
        expires_at=NOW + timedelta(days=7),
        now=NOW,
    )
    assert len(set(tokens)) == 2 and all(len(t) <= 64 for t in tokens)
    store.set_message_sent(engine, row, chat_id="5", message_id="77", text="<b>x</b>", parse_mode="HTML")
    callback = store.get_callback(engine, tokens[0])
    assert callback is not None and callback.action == "ack" and callback.message.message_id == "77"
    assert store.get_callback(engine, "forged") is None
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.claim_callback(engine, tokens[0], "u", NOW), range(8)))
    assert results.count(True) == 1
    assert not store.claim_callback(engine, tokens[1], "u", NOW + timedelta(days=8))  # expired
    buttons = store.message_buttons(engine, row, NOW)
    assert [(b.action, b.used_at is not None) for b in buttons] == [("ack", True), ("show", False)]
    store.mark_message_handled(engine, row, who="Alice", text="<b>x</b>\n\nok", now=NOW)
    assert store.get_callback(engine, tokens[1]).message.handled_by == "Alice"  # type: ignore[union-attr]
