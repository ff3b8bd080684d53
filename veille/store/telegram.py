"""Storage for the Telegram channel: routes, persisted waits, messages with buttons, callback tokens.

Every function is one short transaction (`write_tx` = BEGIN IMMEDIATE on SQLite). Callers in async
code run them in a thread.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from veille.core.clock import utc
from veille.store.engine import read_conn, write_tx
from veille.store.hits import original_only
from veille.store.schema import hits, outbox, sources
from veille.store.schema_telegram import (
    telegram_callbacks,
    telegram_messages,
    telegram_routes,
    telegram_state,
)

RETRY_UNTIL = "retry_until"
AUTH_FAILED = "auth_failed"
ROUTE_OK = "ok"
ROUTE_GONE = "gone"


@dataclass(frozen=True, slots=True)
class Route:
    address: str
    chat_id: str
    state: str

    @property
    def gone(self) -> bool:
        return self.state == ROUTE_GONE


def get_route(engine: Engine, address: str) -> Route:
    """The current route for an address; an address never seen is an ok route to itself."""
    with read_conn(engine) as conn:
        row = conn.execute(select(telegram_routes).where(telegram_routes.c.address == address)).first()
    if row is None:
        return Route(address, address, ROUTE_OK)
    return Route(row.address, row.chat_id, row.state)


def _ensure_route(conn: Connection, address: str, now: datetime) -> None:
    exists = conn.execute(select(telegram_routes.c.address).where(telegram_routes.c.address == address)).first()
    if exists is None:
        conn.execute(insert(telegram_routes).values(address=address, chat_id=address, state=ROUTE_OK, updated_at=now))


def mark_route_gone(engine: Engine, address: str, reason: str, now: datetime) -> bool:
    """Mark a route gone (B3). True only on the transition, so the operator is told once."""
    with write_tx(engine) as conn:
        _ensure_route(conn, address, now)
        result = conn.execute(
            update(telegram_routes)
            .where(telegram_routes.c.address == address, telegram_routes.c.state != ROUTE_GONE)
            .values(state=ROUTE_GONE, reason=reason[:200], gone_at=now, updated_at=now)
        )
        return result.rowcount == 1


def restore_route(engine: Engine, address: str, now: datetime) -> bool:
    """The contact talked to the bot again: send to it again. True if it was gone."""
    with write_tx(engine) as conn:
        result = conn.execute(
            update(telegram_routes)
            .where(telegram_routes.c.address == address, telegram_routes.c.state == ROUTE_GONE)
            .values(state=ROUTE_OK, reason=None, gone_at=None, updated_at=now)
        )
        return result.rowcount == 1


def move_route(engine: Engine, address: str, new_chat_id: str, now: datetime) -> None:
    """A group became a supergroup (B4): later sends to `address` go to `new_chat_id`."""
    with write_tx(engine) as conn:
        _ensure_route(conn, address, now)
        conn.execute(
            update(telegram_routes)
            .where(telegram_routes.c.address == address)
            .values(chat_id=new_chat_id, moved_at=now, updated_at=now)
        )
        # Anything already pointing at the old chat id follows too.
        conn.execute(
            update(telegram_routes)
            .where(telegram_routes.c.chat_id == address)
            .values(chat_id=new_chat_id, moved_at=now, updated_at=now)
        )


def list_routes(engine: Engine) -> list[Route]:
    with read_conn(engine) as conn:
        rows = conn.execute(select(telegram_routes).order_by(telegram_routes.c.address)).all()
    return [Route(r.address, r.chat_id, r.state) for r in rows]


def get_state(engine: Engine, key: str) -> tuple[datetime | None, str | None]:
    with read_conn(engine) as conn:
        row = conn.execute(select(telegram_state).where(telegram_state.c.key == key)).first()
    return (row.until, row.value) if row is not None else (None, None)


def set_state(engine: Engine, key: str, until: datetime | None, value: str | None, now: datetime) -> None:
    """Store a wait; a shorter wait never replaces a longer one already stored."""
    with write_tx(engine) as conn:
        row = conn.execute(select(telegram_state).where(telegram_state.c.key == key)).first()
        if row is None:
            conn.execute(insert(telegram_state).values(key=key, until=until, value=value, updated_at=now))
            return
        keep = row.until if (until is not None and row.until is not None and utc(row.until) > until) else until
        conn.execute(
            update(telegram_state).where(telegram_state.c.key == key).values(until=keep, value=value, updated_at=now)
        )


def clear_state(engine: Engine, key: str, now: datetime) -> None:
    with write_tx(engine) as conn:
        conn.execute(
            update(telegram_state).where(telegram_state.c.key == key).values(until=None, value=None, updated_at=now)
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    row_id: int
    chat_id: str
    message_id: str | None
    incident_id: int | None
    client_id: str | None
    tag: str
    lang: str
    html: str
    parse_mode: str | None
    handled_by: str | None
    handled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Button:
    action: str  # ack | snooze | mute | show | answered | no_reply (the reply inbox)
    incident_id: int | None
    client_id: str | None


def create_message(
    engine: Engine,
    *,
    chat_id: str,
    incident_id: int | None,
    client_id: str | None,
    tag: str,
    lang: str,
    buttons: list[Button],
    expires_at: datetime,
    now: datetime,
) -> tuple[int, list[str]]:
    """Store a message before sending it, with one fresh token per button: (row id, tokens in order)."""
    with write_tx(engine) as conn:
        row_id = conn.execute(
            insert(telegram_messages)
            .values(
                chat_id=chat_id,
                incident_id=incident_id,
                client_id=client_id,
                tag=tag,
                lang=lang,
                html="",
                created_at=now,
            )
            .returning(telegram_messages.c.id)
        ).scalar_one()
        tokens = []
        for button in buttons:
            token = secrets.token_urlsafe(24)  # 32 chars, well under the 64-byte callback_data limit
            conn.execute(
                insert(telegram_callbacks).values(
                    token=token,
                    message_row=row_id,
                    action=button.action,
                    incident_id=button.incident_id,
                    client_id=button.client_id,
                    chat_id=chat_id,
                    expires_at=expires_at,
                )
            )
            tokens.append(token)
    return int(row_id), tokens


def set_message_sent(
    engine: Engine, row_id: int, *, chat_id: str, message_id: str, text: str, parse_mode: str | None
) -> None:
    with write_tx(engine) as conn:
        conn.execute(
            update(telegram_messages)
            .where(telegram_messages.c.id == row_id)
            .values(chat_id=chat_id, message_id=message_id, html=text, parse_mode=parse_mode)
        )
        conn.execute(
            update(telegram_callbacks).where(telegram_callbacks.c.message_row == row_id).values(chat_id=chat_id)
        )


@dataclass(frozen=True, slots=True)
class Callback:
    token: str
    action: str
    incident_id: int | None
    client_id: str | None
    chat_id: str
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None
    message: StoredMessage


def get_callback(engine: Engine, token: str) -> Callback | None:
    with read_conn(engine) as conn:
        row = (
            conn.execute(
                select(telegram_callbacks, telegram_messages)
                .join(telegram_messages, telegram_messages.c.id == telegram_callbacks.c.message_row)
                .where(telegram_callbacks.c.token == token)
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    message = StoredMessage(
        row["message_row"],
        row[telegram_messages.c.chat_id],
        row["message_id"],
        row[telegram_messages.c.incident_id],
        row[telegram_messages.c.client_id],
        row["tag"],
        row["lang"],
        row["html"],
        row["parse_mode"],
        row["handled_by"],
        row["handled_at"],
    )
    return Callback(
        row["token"],
        row["action"],
        row[telegram_callbacks.c.incident_id],
        row[telegram_callbacks.c.client_id],
        row[telegram_callbacks.c.chat_id],
        row["expires_at"],
        row["used_at"],
        row["used_by"],
        message,
    )


def claim_callback(engine: Engine, token: str, user: str, now: datetime) -> bool:
    """Use a token once: True for the first press only (a double tap or replay gets False)."""
    with write_tx(engine) as conn:
        result = conn.execute(
            update(telegram_callbacks)
            .where(
                telegram_callbacks.c.token == token,
                telegram_callbacks.c.used_at.is_(None),
                telegram_callbacks.c.expires_at > now,
            )
            .values(used_at=now, used_by=user[:40])
        )
        return result.rowcount == 1


def mark_message_handled(engine: Engine, row_id: int, *, who: str, text: str, now: datetime) -> None:
    """Record who pressed and the message's new text (footers accumulate: snooze, then ack)."""
    with write_tx(engine) as conn:
        conn.execute(
            update(telegram_messages)
            .where(telegram_messages.c.id == row_id)
            .values(handled_by=who[:200], handled_at=now, html=text)
        )


@dataclass(frozen=True, slots=True)
class ButtonState:
    token: str
    action: str
    incident_id: int | None
    used_at: datetime | None


def message_buttons(engine: Engine, row_id: int, now: datetime) -> list[ButtonState]:
    """The message's buttons still valid (not expired), in creation order."""
    with read_conn(engine) as conn:
        rows = conn.execute(
            select(telegram_callbacks).where(
                telegram_callbacks.c.message_row == row_id, telegram_callbacks.c.expires_at > now
            )
        ).all()
    order = {"answered": 0, "no_reply": 1, "ack": 2, "snooze": 3, "mute": 4, "show": 5}
    states = [ButtonState(r.token, r.action, r.incident_id, r.used_at) for r in rows]
    return sorted(states, key=lambda b: (b.incident_id or 0, order.get(b.action, 9)))


# -- read-only queries for the bot's commands ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HitRow:
    client_id: str
    kind: str
    author: str | None
    title: str
    text: str
    url: str | None
    sentiment_label: str | None
    sentiment_score: float | None
    fetched_at: datetime


def recent_hits(engine: Engine, client_ids: list[str], since: datetime, limit: int) -> list[HitRow]:
    """Newest first; bound parameters only (arguments come from a chat, H5)."""
    if not client_ids:
        return []
    with read_conn(engine) as conn:
        rows = conn.execute(
            select(
                hits.c.client_id,
                hits.c.kind,
                hits.c.author,
                hits.c.title,
                hits.c.text,
                hits.c.url,
                hits.c.sentiment_label,
                hits.c.sentiment_score,
                hits.c.fetched_at,
            )
            .where(hits.c.client_id.in_(client_ids), hits.c.fetched_at >= since, original_only())
            .order_by(hits.c.fetched_at.desc(), hits.c.id.desc())
            .limit(max(1, min(limit, 1000)))
        ).all()
    return [HitRow(*row) for row in rows]


def failing_sources(engine: Engine, client_ids: list[str]) -> list[tuple[str, str, str]]:
    """(client, source key, last error kind) of sources currently failing."""
    if not client_ids:
        return []
    with read_conn(engine) as conn:
        rows = conn.execute(
            select(sources.c.client_id, sources.c.key, sources.c.last_error_kind)
            .where(
                sources.c.client_id.in_(client_ids), sources.c.failing_since.is_not(None), sources.c.in_config.is_(True)
            )
            .order_by(sources.c.key)
        ).all()
    return [(r.client_id, r.key, r.last_error_kind or "?") for r in rows]


def oldest_pending_alert(engine: Engine) -> datetime | None:
    with read_conn(engine) as conn:
        return conn.execute(
            select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(("pending", "sending")))
        ).scalar()
