"""Telegram commands and inline buttons, for allow-listed chats AND users only.

Commands: /hits [client] [since], /alerts, /inbox, /ack ID, /mute client 2h, /status, /digest, /help.

Why a small getUpdates loop of our own rather than PTB's Application/Updater: the Updater caps its
back-off at 30 s and logs whole exceptions (a 409 from a second daemon would be fought every 30 s,
B6), and we need the persisted flood wait (B8), per-user limits (H6) and command replies paced
*below* alerts. Polling uses the Bot's separate getUpdates connection pool, so a stuck or refused
poll never delays an alert.

Authorisation (H1-H3, H8): both the chat and the user must be allow-listed in `[telegram]`, and a
contact only sees the clients listed for them. Refusals give no data, run no client query, and are
logged with ids only (never the text), at a bounded rate. `/start` enrols nobody.

Buttons (H4): callback_data is an opaque random token stored server-side and bound to its chat; a
state-changing token is claimed once, so a forged press matches nothing and a double tap acts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError, TimedOut

from veille.core.backoff import BackoffPolicy
from veille.core.clock import Clock, SystemClock, utc
from veille.core.durations import format_duration, parse_duration
from veille.core.errors import StorageError
from veille.core.i18n import N_, wording
from veille.core.incidents import label as label_of
from veille.core.models import Channel, error_kind_label
from veille.notify.telegram.notifier import (
    INBOX_ACTIONS,
    EventLogger,
    TelegramNotifier,
    classify,
    retry_after_seconds,
)
from veille.notify.telegram.render import escape, safe_link, utf16_len
from veille.notify.telegram.render import text as label
from veille.notify.telegram.settings import TelegramContact, TelegramSettings
from veille.store import telegram as store

log = EventLogger(logging.getLogger("veille.telegram.bot"), {})
_CLIENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_INCIDENT = re.compile(r"^(?:#?inc-)?(\d{1,12})$", re.IGNORECASE)
MAX_ARGS = 3
MAX_SINCE = timedelta(days=31)
MAX_MUTE = timedelta(days=30)
SNOOZE = timedelta(hours=1)
MUTE_BUTTON = timedelta(hours=24)
REPLY_LIMIT = 3500  # UTF-16 units per command reply: below Telegram's 4096 with room to spare


# -- what the bot needs from the rest of veille ------------------------------------------------


@dataclass(frozen=True, slots=True)
class HitLine:
    client_id: str
    kind: str
    author: str | None
    text: str
    url: str | None
    sentiment: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AlertLine:
    incident_id: int
    client_id: str
    status: str
    urgency: str
    title: str
    opened_at: datetime
    acked_by: str | None = None


@dataclass(frozen=True, slots=True)
class InboxLine:
    """A conversation awaiting the client's answer (the reply inbox)."""

    item_id: int
    client_id: str
    channel: str
    author: str | None
    excerpt: str
    url: str | None
    waiting_since: datetime


@dataclass(frozen=True, slots=True)
class InboxClosing:
    """A press on "Answered" or "No answer needed": the conversation, and whether this press closed it."""

    item_id: int
    closed_now: bool
    closed_by: str | None  # "telegram:<contact>", "cli", "platform" (the client's own answer)
    closed_at: datetime | None
    reopened: bool = False  # the button belongs to an earlier wait: a newer message reopened it since


@dataclass(frozen=True, slots=True)
class StatusInfo:
    failing_sources: tuple[tuple[str, str, str], ...]  # (client, source key, error kind)
    oldest_pending_alert: datetime | None


class BotBackend(Protocol):
    """Data and actions for the bot. Reads are read-only queries; actions are the alerting's."""

    async def hits(self, client_ids: Sequence[str], since: datetime, limit: int) -> list[HitLine]: ...

    async def alerts(self, client_ids: Sequence[str]) -> list[AlertLine]: ...

    async def incident_client(self, incident_id: int) -> str | None: ...

    async def inbox(self, client_ids: Sequence[str]) -> list[InboxLine]:
        """The conversations awaiting an answer, the longest waiting first."""
        ...

    async def status(self, client_ids: Sequence[str]) -> StatusInfo: ...

    async def ack(self, incident_id: int, contact: str) -> bool:
        """True if this call acknowledged it (False: it already was)."""
        ...

    async def snooze(self, incident_id: int, contact: str, until: datetime) -> bool: ...

    async def mute(self, client_id: str, contact: str, until: datetime) -> bool: ...

    async def close_inbox(self, incident_id: int, *, answered: bool, actor: str) -> InboxClosing | None:
        """Close the conversation of this reply incident as `veille inbox done|no-reply` does (None: the
        incident follows no conversation)."""
        ...


# -- small helpers --------------------------------------------------------------------------------


class RateGate:
    """At most `limit` events per `window` seconds per key (monotonic clock)."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}

    def allow(self, key: Hashable) -> bool:
        now = self._clock.monotonic()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 10_000:  # strangers cannot grow this without bound
            self._events = {k: v for k, v in self._events.items() if v}
        return True


class UsageError(ValueError):
    """A bad argument; the message is shown to the (authorised) user."""


# The bot's replies as English msgids, said in the bot's language (`[telegram] lang`) through the catalogue.
_MESSAGES = {
    "refused": N_("This bot is private."),
    "start_stranger": N_(
        "This bot is private. To receive alerts, give these ids to your veille administrator: chat {chat}, user {user}."
    ),
    "help": N_("Commands: /hits [client] [since], /alerts, /inbox, /ack ID, /mute client 2h, /status, /digest"),
    "no_inbox": N_("Nothing awaits an answer."),
    "inbox_line": N_("{channel} from {author}, waiting for {age}"),
    "flood": N_("Too many commands: try again in a minute."),
    "unknown_client": N_("Unknown or unauthorised client: {client}"),
    "unknown_incident": N_("Unknown or unauthorised incident: {id}"),
    "no_hits": N_("No posts since {since}."),
    "no_alerts": N_("No open alerts."),
    "acked": N_("✅ {tag} acknowledged."),
    "already": N_("{tag} was already acknowledged."),
    "muted": N_("🔕 {client} muted until {until}."),
    "snoozed": N_("⏰ {tag}: reminder at {until}."),
    "taken": N_("✅ Taken by {who} at {at}"),
    "snoozed_by": N_("⏰ Reminder at {until} (asked by {who})"),
    "muted_by": N_("🔕 {client} muted until {until} (by {who})"),
    "done_already": N_("Already done."),
    "inbox_answered": N_("✅ #{item} answered (marked by {who} at {at})"),
    "inbox_no_reply": N_("💬 #{item}: no answer needed (marked by {who} at {at})"),
    "inbox_closed_already": N_("#{item} was already closed by {who} at {at}."),
    "inbox_gone": N_("This conversation is no longer in the inbox."),
    "inbox_reopened": N_("#{item} was reopened by a newer message: use its latest reminder."),
    "closed_by_platform": N_("the client's own answer on the platform"),
    "closed_by_cli": N_("the command line"),
    "expired": N_("Expired or invalid button."),
    "failed": N_("Cannot do that right now, try again."),
    "status_ok": N_("Every source answers."),
    "status_failing": N_("Failing sources ({n}):"),
    "oldest": N_("Oldest alert waiting to be sent: {age}"),
    "no_pending": N_("No alert waiting to be sent."),
    "telegram_wait": N_("Telegram asks us to wait until {until}."),
    "digest": N_("Last 24 h:"),
    "digest_line": N_("{client}: {hits} post(s), {neg} negative, {alerts} open alert(s)"),
    "usage_hits": N_("Usage: /hits [client] [since], e.g. /hits acme 6h"),
    "usage_ack": N_("Usage: /ack ID, e.g. /ack 42"),
    "usage_mute": N_("Usage: /mute client duration, e.g. /mute acme 2h (max 30d)"),
    "bad_since": N_("Bad duration: write 30m, 6h, 2d (max 31d)."),
    "too_long": N_("Argument too long (max {n} characters)."),
    "too_many": N_("Too many arguments."),
}


@dataclass(frozen=True, slots=True)
class Caller:
    """An authorised user in an authorised chat, and the clients they may see."""

    chat_id: int
    user_id: int
    name: str
    contact: str
    clients: tuple[str, ...]

    def sees(self, client_id: str) -> bool:
        return client_id in self.clients


# 5 s, 10 s, 20 s... up to 5 min, without jitter: one poller per bot token, nobody to collide with.
POLL_RETRY = BackoffPolicy(base=5.0, cap=300.0)


@dataclass
class _PollState:
    offset: int | None = None
    backoff: float = 0.0  # the wait in force after the last failure; 0 while polling normally
    errors: int = 0
    last_error_log: float = field(default=-1e9)


class TelegramBot:
    """Runs the command/button loop: `await bot.run(stop_event)`."""

    def __init__(
        self,
        settings: TelegramSettings,
        notifier: TelegramNotifier,
        backend: BotBackend,
        *,
        client_ids: Sequence[str],
        engine: Engine | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timezone: str = "Europe/Paris",
        poll_timeout: int = 25,
        retry: BackoffPolicy = POLL_RETRY,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.backend = backend
        self.client_ids = tuple(client_ids)
        self._engine = engine
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._tz = ZoneInfo(timezone)
        self._poll_timeout = poll_timeout
        self._retry = retry
        self._lang = settings.lang
        self._commands = RateGate(settings.command_rate_per_minute, 60.0, self._clock)
        self._flood_notice = RateGate(1, 60.0, self._clock)
        self._refusal_log = RateGate(1, 600.0, self._clock)  # per (chat, user)
        self._refusal_log_total = RateGate(20, 60.0, self._clock)
        self._stranger_reply = RateGate(1, 3600.0, self._clock)
        self.state = _PollState()
        self.handled = 0  # updates processed (tests wait on it)

    def t(self, key: str, **values: Any) -> str:
        return wording(self._lang)._(_MESSAGES[key]).format(**values)

    # -- the poll loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Long-poll getUpdates until `stop` is set; never raises for Telegram errors."""
        bot = self.notifier.bot
        try:
            await bot.delete_webhook(drop_pending_updates=False)  # polling and a webhook exclude each other
        except TelegramError as exc:
            log.warning("bot.delete_webhook_failed", extra={"error": classify(exc).message})
        while not stop.is_set():
            await self.poll_once(stop)

    async def poll_once(self, stop: asyncio.Event | None = None) -> int:
        """One getUpdates round; returns the number of updates handled."""
        paused = await self.notifier.paused_for()
        if paused > 0:
            await self._wait(paused, stop)  # no request to Telegram during a flood wait (B8)
            return 0
        try:
            updates = await self.notifier.bot.get_updates(
                offset=self.state.offset, timeout=self._poll_timeout, allowed_updates=["message", "callback_query"]
            )
        except Conflict as exc:
            await self._back_off(exc, stop, level=logging.ERROR, event="bot.conflict")
            return 0
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            await self.notifier.record_flood_wait(seconds)  # alerts wait too (B8)
            await self._wait(seconds + 0.5, stop)
            return 0
        except InvalidToken as exc:
            await self._back_off(
                exc,
                stop,
                level=logging.ERROR,
                event="bot.auth_failed",
                floor=self.settings.auth_recheck.total_seconds(),
            )
            return 0
        except TimedOut:
            return 0
        except TelegramError as exc:
            await self._back_off(exc, stop, level=logging.WARNING, event="bot.poll_failed")
            return 0
        self.state.backoff = 0.0
        self.state.errors = 0
        for update in updates:
            self.state.offset = update.update_id + 1
            try:
                await self.handle_update(update)
            except Exception:  # one bad update must not stop the loop
                log.exception("bot.update_failed", extra={"update_id": update.update_id})
            self.handled += 1
        return len(updates)

    async def _back_off(
        self, exc: TelegramError, stop: asyncio.Event | None, *, level: int, event: str, floor: float = 0.0
    ) -> None:
        state = self.state
        state.errors += 1
        state.backoff = max(floor, self._retry.delay(state.errors))
        now = self._clock.monotonic()
        if state.errors == 1 or now - state.last_error_log >= 600:  # one line, not one per attempt
            state.last_error_log = now
            log.log(
                level, event, extra={"error": classify(exc).message, "retry_in": state.backoff, "attempt": state.errors}
            )
        await self._wait(state.backoff, stop)

    async def _wait(self, seconds: float, stop: asyncio.Event | None) -> None:
        if stop is None:
            await self._sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    # -- dispatch -------------------------------------------------------------------------------------
    async def handle_update(self, update: Update) -> None:
        if update.callback_query is not None:
            await self._on_callback(update.callback_query)
            return
        message = update.message  # edited messages, channel posts etc. are ignored (H7)
        if message is None or not message.text or not message.text.startswith("/"):
            return
        chat, user = message.chat, message.from_user
        if user is None or user.is_bot:
            return
        command, args = _parse_command(message.text, self.notifier.username)
        if not command:
            return  # "/cmd@other_bot" in a shared group
        caller = self._authorise(chat.id, user.id, user.first_name or str(user.id))
        if caller is None:
            self._log_refusal(chat.id, user.id, "command")
            if command == "start" and chat.type == "private" and self._stranger_reply.allow(user.id):
                await self.notifier.reply(chat.id, escape(self.t("start_stranger", chat=chat.id, user=user.id)))
            return
        await self._restore_route(chat.id)
        if not self._commands.allow(user.id):
            if self._flood_notice.allow(user.id):
                await self.notifier.reply(chat.id, escape(self.t("flood")))
            log.warning("bot.command_flood", extra={"chat": chat.id, "user": user.id})
            return
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            await self.notifier.reply(chat.id, escape(self.t("help")))
            return
        try:
            body = await handler(caller, _check_args(args, self.settings.max_arg_chars, self.t))
        except UsageError as exc:
            body = escape(str(exc))
        for part in _split_reply(body):
            await self.notifier.reply(chat.id, part)

    def _authorise(self, chat_id: int, user_id: int, name: str) -> Caller | None:
        """Both the chat and the user must be allowed (H1, H2); scope = the user's contacts' clients."""
        if chat_id not in self.settings.allowed_chat_ids or user_id not in self.settings.allowed_user_ids:
            return None
        contacts: tuple[TelegramContact, ...] = self.settings.contacts_for_user(user_id)
        clients = tuple(c for c in self.client_ids if any(contact.sees(c) for contact in contacts))
        return Caller(chat_id, user_id, name, contacts[0].name if contacts else str(user_id), clients)

    async def _restore_route(self, chat_id: int) -> None:
        """An allowed person writes from a chat marked gone (B3): they unblocked the bot, send again."""
        if self._engine is None:
            return
        try:
            route = await asyncio.to_thread(store.get_route, self._engine, str(chat_id))
            if route.gone and await asyncio.to_thread(
                store.restore_route, self._engine, str(chat_id), self._clock.now()
            ):
                log.warning("bot.route_restored", extra={"chat": chat_id})
        except StorageError:
            pass  # tried again on the next command

    def _log_refusal(self, chat_id: int, user_id: int | None, what: str) -> None:
        if self._refusal_log.allow((chat_id, user_id)) and self._refusal_log_total.allow("all"):
            log.warning("bot.refused", extra={"chat": chat_id, "user": user_id, "what": what})

    # -- commands -------------------------------------------------------------------------------------
    async def _cmd_start(self, caller: Caller, args: list[str]) -> str:
        return escape(self.t("help"))

    _cmd_help = _cmd_start

    async def _cmd_hits(self, caller: Caller, args: list[str]) -> str:
        if len(args) > 2:
            raise UsageError(self.t("usage_hits"))
        clients, since_text = list(caller.clients), "24h"
        for arg in args:
            if _looks_like_duration(arg):
                since_text = arg
            else:
                clients = [self._client_arg(caller, arg)]
        since = self._since(since_text)
        rows = await self.backend.hits(clients, since, 10)
        if not rows:
            return escape(self.t("no_hits", since=since_text))
        lines = []
        for row in rows:
            meta = " · ".join(x for x in (row.client_id, row.kind, row.author, row.sentiment) if x)
            snippet = row.text if len(row.text) <= 200 else row.text[:200] + "…"
            link = safe_link(row.url)
            line = f"• <i>{escape(meta)}</i>\n{escape(snippet)}"
            if link:
                line += f'\n<a href="{html.escape(link, quote=True)}">{escape(label(self._lang, "link"))}</a>'
            lines.append(line)
        return "\n\n".join(lines)

    async def _cmd_alerts(self, caller: Caller, args: list[str]) -> str:
        rows = await self.backend.alerts(list(caller.clients))
        if not rows:
            return escape(self.t("no_alerts"))
        lines = []
        words = wording(self._lang)
        for row in rows:
            who = f" · ✅ {row.acked_by}" if row.acked_by else ""
            lines.append(
                f"<b>#INC-{row.incident_id}</b> · {escape(row.client_id)} · {escape(words._(label_of(row.status)))} · "
                f"{escape(words._(label_of(row.urgency)))}{escape(who)}\n{escape(row.title[:300])}"
            )
        return "\n\n".join(lines)

    async def _cmd_inbox(self, caller: Caller, args: list[str]) -> str:
        rows = await self.backend.inbox(list(caller.clients))
        if not rows:
            return escape(self.t("no_inbox"))
        lines = []
        now = self._clock.now()
        for row in rows[:15]:
            age = format_duration(now - utc(row.waiting_since))
            channel = wording(self._lang)._(Channel(row.channel).label)
            who = self.t("inbox_line", channel=channel, author=row.author or "?", age=age)
            line = f"📥 <b>#{row.item_id}</b> · {escape(row.client_id)} · {escape(who)}\n{escape(row.excerpt[:200])}"
            link = safe_link(row.url)
            if link:
                line += f'\n<a href="{html.escape(link, quote=True)}">{escape(label(self._lang, "link"))}</a>'
            lines.append(line)
        return "\n\n".join(lines)

    async def _cmd_ack(self, caller: Caller, args: list[str]) -> str:
        found = _INCIDENT.match(args[0]) if len(args) == 1 else None
        if found is None:
            raise UsageError(self.t("usage_ack"))
        incident_id = int(found.group(1))
        client = await self.backend.incident_client(incident_id)
        if client is None or not caller.sees(client):
            raise UsageError(self.t("unknown_incident", id=incident_id))
        done = await self.backend.ack(incident_id, caller.contact)
        tag = f"#INC-{incident_id}"
        return escape(self.t("acked" if done else "already", tag=tag))

    async def _cmd_mute(self, caller: Caller, args: list[str]) -> str:
        if len(args) != 2:
            raise UsageError(self.t("usage_mute"))
        client = self._client_arg(caller, args[0])
        try:
            duration = parse_duration(args[1])
        except ValueError:
            raise UsageError(self.t("usage_mute")) from None
        if not timedelta(minutes=1) <= duration <= MAX_MUTE:
            raise UsageError(self.t("usage_mute"))
        until = self._clock.now() + duration
        await self.backend.mute(client, caller.contact, until)
        log.info("bot.mute", extra={"client": client, "user": caller.user_id, "until": until.isoformat()})
        return escape(self.t("muted", client=client, until=self._local(until)))

    async def _cmd_status(self, caller: Caller, args: list[str]) -> str:
        info = await self.backend.status(list(caller.clients))
        lines = []
        if info.failing_sources:
            lines.append(escape(self.t("status_failing", n=len(info.failing_sources))))
            words = wording(self._lang)
            lines += [
                f"• {escape(key)} : {escape(words._(error_kind_label(kind)))}"
                for _client, key, kind in info.failing_sources[:20]
            ]
        else:
            lines.append(escape(self.t("status_ok")))
        if info.oldest_pending_alert is not None:
            age = self._clock.now() - utc(info.oldest_pending_alert)
            lines.append(escape(self.t("oldest", age=format_duration(age))))
        else:
            lines.append(escape(self.t("no_pending")))
        status = self.notifier.status()
        if status.get("retry_until"):
            lines.append(escape(self.t("telegram_wait", until=status["retry_until"])))
        return "\n".join(lines)

    async def _cmd_digest(self, caller: Caller, args: list[str]) -> str:
        since = self._clock.now() - timedelta(hours=24)
        alerts = await self.backend.alerts(list(caller.clients))
        lines = [f"<b>{escape(self.t('digest'))}</b>"]
        for client in caller.clients:
            rows = await self.backend.hits([client], since, 1000)
            negative = sum(1 for r in rows if r.sentiment and r.sentiment.startswith("neg"))
            open_alerts = sum(1 for a in alerts if a.client_id == client)
            lines.append(escape(self.t("digest_line", client=client, hits=len(rows), neg=negative, alerts=open_alerts)))
        return "\n".join(lines)

    def _client_arg(self, caller: Caller, value: str) -> str:
        client = value.lower()
        if not _CLIENT.match(client) or not caller.sees(client):
            raise UsageError(self.t("unknown_client", client=value))  # same answer: no enumeration (H3)
        return client

    def _since(self, value: str) -> datetime:
        try:
            delta = parse_duration(value)
        except ValueError:
            raise UsageError(self.t("bad_since")) from None
        if not timedelta(0) < delta <= MAX_SINCE:
            raise UsageError(self.t("bad_since"))
        return self._clock.now() - delta

    def _local(self, when: datetime) -> str:
        local = utc(when).astimezone(self._tz)
        now = self._clock.now().astimezone(self._tz)
        return local.strftime("%H:%M") if local.date() == now.date() else local.strftime("%d/%m %H:%M")

    # -- buttons -------------------------------------------------------------------------------------
    async def _on_callback(self, query: CallbackQuery) -> None:
        user = query.from_user
        message = query.message
        chat_id = message.chat.id if message is not None else None
        token = query.data or ""
        caller = self._authorise(chat_id, user.id, user.first_name or str(user.id)) if chat_id else None
        if not chat_id or caller is None or self._engine is None or len(token) > 64:
            self._log_refusal(chat_id or 0, user.id, "button")
            await self._answer(query, self.t("expired"))
            return
        callback = await asyncio.to_thread(store.get_callback, self._engine, token)
        if (
            callback is None
            or callback.chat_id != str(chat_id)
            or (callback.client_id is not None and not caller.sees(callback.client_id))
        ):
            self._log_refusal(chat_id, user.id, "forged_button")
            await self._answer(query, self.t("expired"))
            return
        now = self._clock.now()
        if utc(callback.expires_at) <= now:
            await self._answer(query, self.t("expired"))
            return
        if callback.action == "show":
            await self._answer(query, None)
            body = await self._cmd_hits(caller, [callback.client_id] if callback.client_id else [])
            for part in _split_reply(body):
                await self.notifier.reply(chat_id, part)
            return
        if callback.action in INBOX_ACTIONS:
            await self._on_inbox_button(query, callback, caller, now)
            return
        claimed = await asyncio.to_thread(store.claim_callback, self._engine, token, str(user.id), now)
        if not claimed:  # a double tap, a replay, or a second person: nothing happens twice
            await self._answer(query, self.t("done_already"))
            return
        try:
            footer = await self._act(callback, caller, now)
        except Exception:
            log.exception("bot.action_failed", extra={"action": callback.action, "incident": callback.incident_id})
            await self._answer(query, self.t("failed"))
            return
        await self._answer(query, None)
        await self._show_done(callback, caller, footer, now, bold=callback.action == "ack")

    async def _show_done(
        self, callback: store.Callback, caller: Caller, footer: str, now: datetime, *, bold: bool
    ) -> None:
        """Log the press, add its footer to the message and keep only the buttons still meaningful."""
        assert self._engine is not None
        log.info(
            "bot.button",
            extra={
                "action": callback.action,
                "incident": callback.incident_id,
                "user": caller.user_id,
                "chat": caller.chat_id,
            },
        )
        stored = callback.message
        html_mode = stored.parse_mode == ParseMode.HTML
        footer_text = escape(footer) if html_mode else footer
        if bold:
            footer_text = f"<b>{footer_text}</b>" if html_mode else footer_text
        new_text = f"{stored.html}\n\n{footer_text}"
        if utf16_len(new_text) > 4096:
            new_text = stored.html
        await asyncio.to_thread(
            partial(store.mark_message_handled, self._engine, stored.row_id, who=caller.name, text=new_text, now=now)
        )
        keyboard = await self._remaining_keyboard(stored, callback)
        if stored.message_id is not None:
            await self.notifier.edit(
                stored.chat_id, stored.message_id, new_text, parse_mode=stored.parse_mode, keyboard=keyboard
            )

    async def _on_inbox_button(
        self, query: CallbackQuery, callback: store.Callback, caller: Caller, now: datetime
    ) -> None:
        """ "Answered" / "No answer needed" on a reply reminder: closes the conversation once, whichever
        button or message is pressed first; any later press says who closed it and when."""
        assert self._engine is not None
        if callback.incident_id is None:
            await self._answer(query, self.t("expired"))
            return
        # The token is used, but closing is what happens once: the store closes only a waiting item.
        await asyncio.to_thread(store.claim_callback, self._engine, callback.token, str(caller.user_id), now)
        try:
            closing = await self.backend.close_inbox(
                callback.incident_id, answered=callback.action == "answered", actor=f"telegram:{caller.contact}"
            )
        except Exception:
            log.exception("bot.action_failed", extra={"action": callback.action, "incident": callback.incident_id})
            await self._answer(query, self.t("failed"))
            return
        if closing is None:
            await self._answer(query, self.t("inbox_gone"))
            return
        if closing.reopened:
            await self._answer(query, self.t("inbox_reopened", item=closing.item_id))
            return
        at = self._local(closing.closed_at) if closing.closed_at is not None else "?"
        who = self._closer(closing.closed_by)
        if not closing.closed_now:
            await self._answer(query, self.t("inbox_closed_already", item=closing.item_id, who=who, at=at))
            return
        await self._answer(query, None)
        key = "inbox_answered" if callback.action == "answered" else "inbox_no_reply"
        await self._show_done(callback, caller, self.t(key, item=closing.item_id, who=who, at=at), now, bold=True)

    def _closer(self, closed_by: str | None) -> str:
        """Who closed a conversation, in words: a contact, the command line, or the client's own answer."""
        if closed_by is None or closed_by == "platform":
            return self.t("closed_by_platform")
        if closed_by == "cli":
            return self.t("closed_by_cli")
        return closed_by.removeprefix("telegram:")

    async def _act(self, callback: store.Callback, caller: Caller, now: datetime) -> str:
        tag = (
            callback.message.tag
            if callback.incident_id == callback.message.incident_id
            else f"#INC-{callback.incident_id}"
        )
        if callback.action == "ack" and callback.incident_id is not None:
            await self.backend.ack(callback.incident_id, caller.contact)
            prefix = "" if callback.message.incident_id is not None else f"{tag} "
            return prefix + self.t("taken", who=caller.name, at=self._local(now))
        if callback.action == "snooze" and callback.incident_id is not None:
            until = now + SNOOZE
            await self.backend.snooze(callback.incident_id, caller.contact, until)
            return self.t("snoozed_by", until=self._local(until), who=caller.name)
        if callback.action == "mute" and callback.client_id is not None:
            until = now + MUTE_BUTTON
            await self.backend.mute(callback.client_id, caller.contact, until)
            return self.t("muted_by", client=callback.client_id, until=self._local(until), who=caller.name)
        raise ValueError(f"unknown button action {callback.action!r}")

    async def _remaining_keyboard(
        self, stored: store.StoredMessage, pressed: store.Callback
    ) -> InlineKeyboardMarkup | None:
        """The buttons not used yet; after an ack, that incident keeps only "show hits" (and, on a reply
        reminder, "Answered" / "No answer needed"); once its conversation is closed, nothing of it."""
        assert self._engine is not None
        buttons = await asyncio.to_thread(store.message_buttons, self._engine, stored.row_id, self._clock.now())

        def spent(b: store.ButtonState) -> bool:
            if b.used_at is not None:
                return True
            if b.incident_id != pressed.incident_id or b.action == "show":
                return False
            if pressed.action in INBOX_ACTIONS:
                return True
            return pressed.action == "ack" and b.action not in INBOX_ACTIONS

        keep = [b for b in buttons if not spent(b)]
        if not keep:
            return None
        lang = stored.lang
        labels = [
            label(lang, b.action) if stored.incident_id is not None else f"{label(lang, b.action)} #INC-{b.incident_id}"
            for b in keep
        ]
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(text, callback_data=b.token)] for text, b in zip(labels, keep, strict=True)]
        )

    async def _answer(self, query: CallbackQuery, text_: str | None) -> None:
        try:
            await query.get_bot().answer_callback_query(query.id, text=text_)
        except TelegramError as exc:
            log.warning("bot.answer_failed", extra={"error": classify(exc).message})


def _parse_command(text_: str, username: str | None) -> tuple[str, list[str]]:
    head, *args = text_.split()
    command = head[1:]
    if "@" in command:
        command, _, target = command.partition("@")
        if username and target.lower() != username.lower():
            return "", []  # addressed to another bot in the group
    return command.lower()[:32], args


def _check_args(args: list[str], max_chars: int, t: Callable[..., str]) -> list[str]:
    """Bounded arguments (H5): a few, short; queries use bound parameters anyway."""
    if len(args) > MAX_ARGS:
        raise UsageError(t("too_many"))
    for arg in args:
        if len(arg) > max_chars:
            raise UsageError(t("too_long", n=max_chars))
    return args


def _looks_like_duration(value: str) -> bool:
    return bool(re.fullmatch(r"\d+(?:\.\d+)?\s*(ms|s|m|h|d|w)(\d.*)?", value.lower()))


def _split_reply(body: str) -> list[str]:
    """Command replies are built from lines of balanced markup: split between lines only."""
    parts: list[str] = []
    current = ""
    for line in body.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if utf16_len(candidate) > REPLY_LIMIT and current:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts[:5]
