"""The dashboard's users: create or change a password hash, look a user up, list, remove."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from veille.store.schema_web import web_users


@dataclass(frozen=True, slots=True)
class WebUser:
    name: str
    password_hash: str
    clients: tuple[str, ...] | None  # None: the clients of the contact with the same id


def get_user(conn: Connection, name: str) -> WebUser | None:
    row = conn.execute(select(web_users).where(web_users.c.name == name)).first()
    return _user(row) if row is not None else None


def list_users(conn: Connection) -> list[WebUser]:
    return [_user(r) for r in conn.execute(select(web_users).order_by(web_users.c.name))]


def set_password(
    conn: Connection, name: str, password_hash: str, clients: Sequence[str] | None, now: datetime, *, keep_clients: bool
) -> bool:
    """Create the user or change its hash (and its clients unless `keep_clients`). True if created."""
    if get_user(conn, name) is None:
        conn.execute(
            insert(web_users).values(
                name=name,
                password_hash=password_hash,
                clients=list(clients) if clients is not None else None,
                created_at=now,
                updated_at=now,
            )
        )
        return True
    values: dict[str, object] = {"password_hash": password_hash, "updated_at": now}
    if not keep_clients:
        values["clients"] = list(clients) if clients is not None else None
    conn.execute(update(web_users).where(web_users.c.name == name).values(**values))
    return False


def remove_user(conn: Connection, name: str) -> bool:
    return conn.execute(delete(web_users).where(web_users.c.name == name)).rowcount > 0


def _user(row: Row[Any]) -> WebUser:
    clients = row.clients
    return WebUser(row.name, row.password_hash, tuple(clients) if clients is not None else None)
