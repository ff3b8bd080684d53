"""The Telegram bot's ties to the rest of the daemon: its database queries, the alerting actions its
buttons and commands take, and the channel the daemon starts and stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from veille.config import Config
from veille.core.clock import Clock, SystemClock
from veille.notify.telegram.bot import AlertLine, HitLine, InboxClosing, InboxLine, StatusInfo, TelegramBot
from veille.notify.telegram.notifier import EventLogger, TelegramNotifier
from veille.store import inbox as inbox_store
from veille.store import telegram as store
from veille.store.engine import read_conn, write_tx

log = EventLogger(logging.getLogger("veille.telegram.bot"), {})


class AlertActions(Protocol):
    """What the alerting service must offer the bot (ack, snooze, mute with audit)."""

    async def ack(self, incident_id: int, contact: str) -> bool: ...

    async def snooze(self, incident_id: int, contact: str, until: datetime) -> bool: ...

    async def mute(self, client_id: str, contact: str, until: datetime) -> bool: ...


class StoreBackend:
    """BotBackend over the database (read-only queries) and the alerting service (actions)."""

    def __init__(self, engine: Engine, actions: AlertActions | None = None, *, clock: Clock | None = None) -> None:
        self._engine = engine
        self._actions = actions
        self._clock = clock or SystemClock()

    async def hits(self, client_ids: Sequence[str], since: datetime, limit: int) -> list[HitLine]:
        rows = await asyncio.to_thread(store.recent_hits, self._engine, list(client_ids), since, limit)
        return [
            HitLine(
                r.client_id,
                r.kind,
                r.author,
                (r.title + " — " + r.text) if r.title else r.text,
                r.url,
                f"{r.sentiment_label} {r.sentiment_score:+.2f}"
                if r.sentiment_label and r.sentiment_score is not None
                else r.sentiment_label,
                r.fetched_at,
            )
            for r in rows
        ]

    async def alerts(self, client_ids: Sequence[str]) -> list[AlertLine]:
        return await asyncio.to_thread(self._alerts, list(client_ids))

    async def inbox(self, client_ids: Sequence[str]) -> list[InboxLine]:
        return await asyncio.to_thread(self._inbox, list(client_ids))

    def _inbox(self, client_ids: list[str]) -> list[InboxLine]:
        with read_conn(self._engine) as conn:
            waiting = inbox_store.waiting(conn, client_ids)
        return [
            InboxLine(i.id, i.client_id, i.channel, i.author, i.excerpt, i.url, i.waiting_since) for i in waiting[:50]
        ]

    def _alerts(self, client_ids: list[str]) -> list[AlertLine]:
        from veille.store import alerts  # the alerting work's tables

        with read_conn(self._engine) as conn:
            found = alerts.list_incidents(conn, active_only=True, limit=50)
        return [
            AlertLine(int(i.id or 0), i.client_id, str(i.status), str(i.urgency), i.title, i.opened_at, i.acked_by)
            for i in found
            if i.client_id in client_ids
        ]

    async def incident_client(self, incident_id: int) -> str | None:
        def query() -> str | None:
            from veille.store import alerts

            with read_conn(self._engine) as conn:
                incident = alerts.get_incident(conn, incident_id)
            return incident.client_id if incident is not None else None

        return await asyncio.to_thread(query)

    async def status(self, client_ids: Sequence[str]) -> StatusInfo:
        failing = await asyncio.to_thread(store.failing_sources, self._engine, list(client_ids))
        oldest = await asyncio.to_thread(store.oldest_pending_alert, self._engine)
        return StatusInfo(tuple(failing), oldest)

    def _need_actions(self) -> AlertActions:
        if self._actions is None:
            raise RuntimeError("no alerting service wired into the bot")
        return self._actions

    async def ack(self, incident_id: int, contact: str) -> bool:
        return await self._need_actions().ack(incident_id, contact)

    async def snooze(self, incident_id: int, contact: str, until: datetime) -> bool:
        return await self._need_actions().snooze(incident_id, contact, until)

    async def mute(self, client_id: str, contact: str, until: datetime) -> bool:
        return await self._need_actions().mute(client_id, contact, until)

    async def close_inbox(self, incident_id: int, *, answered: bool, actor: str) -> InboxClosing | None:
        return await asyncio.to_thread(self._close_inbox, incident_id, answered, actor)

    def _close_inbox(self, incident_id: int, answered: bool, actor: str) -> InboxClosing | None:
        """The same closing as `veille inbox done|no-reply`; the next alerting tick resolves the incidents."""
        from veille.core.incidents import Cause
        from veille.store import alerts

        state = inbox_store.State.ANSWERED if answered else inbox_store.State.NO_REPLY
        with write_tx(self._engine) as conn:
            incident = alerts.get_incident(conn, incident_id)
            if incident is None or incident.cause not in (Cause.REPLY, Cause.REPLY_DUE):
                return None
            item_id = int(incident.subject[1:]) if incident.subject[1:].isdigit() else None
            if item_id is None:
                return None
            current = inbox_store.get(conn, item_id)
            if current is None:
                return None
            if current.waiting_since > incident.opened_at:  # a reminder of an earlier wait, since reopened
                return InboxClosing(item_id, False, None, None, reopened=True)
            closed = inbox_store.close_by_hand(conn, item_id, state, actor, self._clock.now())
            item = closed or current
        return InboxClosing(item.id, closed is not None, item.closed_by, item.closed_at)


class AlertingActions:
    """AlertActions over `veille.runtime.actions` (audited, in their own transactions)."""

    def __init__(self, engine: Engine, clock: Clock, alerting_settings: Any) -> None:
        self._engine = engine
        self._clock = clock
        self._settings = alerting_settings

    async def ack(self, incident_id: int, contact: str) -> bool:
        return await asyncio.to_thread(self._ack, incident_id, contact, None)

    async def snooze(self, incident_id: int, contact: str, until: datetime) -> bool:
        return await asyncio.to_thread(self._ack, incident_id, contact, until - self._clock.now())

    def _ack(self, incident_id: int, contact: str, duration: timedelta | None) -> bool:
        from veille.runtime import actions

        try:
            return actions.ack(
                self._engine,
                self._clock,
                self._settings,
                incident_id,
                contact=contact,
                actor=f"telegram:{contact}",
                duration=duration,
            )
        except actions.UnknownIncident:
            return False

    async def mute(self, client_id: str, contact: str, until: datetime) -> bool:
        from veille.runtime import actions

        await asyncio.to_thread(
            actions.mute, self._engine, self._clock, client_id, until - self._clock.now(), actor=f"telegram:{contact}"
        )
        return True


@dataclass
class TelegramChannel:
    """What the daemon wires: the notifier (outbox channel "telegram") and the command bot."""

    notifier: TelegramNotifier
    bot: TelegramBot | None

    async def start(self) -> None:
        """Check the token; raises NotifierAuthFailed (message without the token) if it is rejected."""
        await self.notifier.start()

    async def aclose(self) -> None:
        await self.notifier.aclose()


def build_telegram(
    config: Config, *, engine: Engine, clock: Clock | None = None, environ: Mapping[str, str] | None = None
) -> TelegramChannel | None:
    """The Telegram channel for a validated Config, or None when the token variable is unset."""
    from veille.core.secrets import read_secret

    token = read_secret(config.telegram.token_env, environ)
    if not token:
        return None
    clock = clock or SystemClock()
    settings = config.telegram.with_alerting_contacts(config.alerting.contacts)
    notifier = TelegramNotifier(settings, token, engine=engine, clock=clock)
    bot = None
    if settings.commands:
        backend = StoreBackend(engine, AlertingActions(engine, clock, config.alerting), clock=clock)
        bot = TelegramBot(
            settings,
            notifier,
            backend,
            client_ids=[c.id for c in config.clients],
            engine=engine,
            clock=clock,
            timezone=config.timezone,
        )
    return TelegramChannel(notifier, bot)
