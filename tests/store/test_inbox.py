"""The reply inbox's rows: open, freshen, answer, reopen, and what a late or out-of-order message changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients

T = datetime(2026, 12, 1, 20, 45, tzinfo=UTC)


def message(minutes: int, *, need: str | None = "question", own: bool = False, text: str = "?") -> inbox_store.Message:
    return inbox_store.Message(
        "shop", "shop/fb", "message", "t_1", T + timedelta(minutes=minutes), own, None if own else need, "Léa", text
    )


def test_a_conversation_waits_until_the_client_answers(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with write_tx(engine) as conn:
        conn.execute(insert(clients).values(id="shop", name="Shop", updated_at=T))
        inbox_store.record(conn, [message(0, text="Vous pouvez envoyer la guirlande par la poste ?")])
        inbox_store.record(conn, [message(29, need="complaint", text="vous auriez au moins pu répondre")])
        inbox_store.record(conn, [message(30, need="question", text="allo ?")])
        (item,) = inbox_store.waiting(conn)
        # Waiting since the first message; the latest one shown; a complaint stays a complaint.
        assert item.waiting_since == T and item.excerpt == "allo ?" and item.need == "complaint"
        inbox_store.record(conn, [message(-5, own=True)])  # an answer older than the question answers nothing
        assert inbox_store.waiting(conn) == [item]
        inbox_store.record(conn, [message(685, own=True)])  # 08:10 the next morning
        assert inbox_store.waiting(conn) == []
        inbox_store.record(conn, [message(600, text="late poll ?")])  # older than the answer: no reopening
        assert inbox_store.waiting(conn) == []
        assert inbox_store.answers_between(conn, T, T + timedelta(days=1)) == [("shop", "message", 685 * 60.0, False)]
        inbox_store.record(conn, [message(700, need=None, text="merci !! ❤")])
        assert inbox_store.waiting(conn) == []
        inbox_store.record(conn, [message(720, text="et pour Noël ?")])
        (reopened,) = inbox_store.waiting(conn)
        assert reopened.id == item.id and reopened.waiting_since == T + timedelta(minutes=720)
    engine.dispose()
