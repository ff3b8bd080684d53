"""TelegramNotifier: one notification -> Telegram message(s), every failure classified by type.

    PTB error                          -> veille error (what the dispatcher does)
    RetryAfter                         -> NotifyRateLimited(global_=True), wait persisted (B8)
    BadRequest (HTML)                  -> resent ONCE as plain text here; then NotifyPermanent (B1)
    ChatMigrated                       -> route updated, resent ONCE to the new id here; then RouteMoved (B4)
    Forbidden                          -> route marked gone, RecipientGone, operator told once (B3)
    InvalidToken (401/404)             -> NotifierAuthFailed; one probe per `auth_recheck` (B5)
    TimedOut after the request left    -> NotifyRetryable(ambiguous=True) (A8)
    5xx, connect errors, Conflict      -> NotifyRetryable

`BadRequest` subclasses `NetworkError` in python-telegram-bot, so the order of the checks matters:
"retry on NetworkError" would resend broken HTML forever.

The token is in every Bot API URL (httpx logs them at INFO), in `repr(Bot)` and in PTB's own
InvalidToken message, so: httpx/httpcore loggers go to WARNING, a log-record hook redacts the token,
and every error raised here is built from redacted text `from None` (B11).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from http import HTTPStatus
from typing import Any, TypedDict, TypeVar

import httpx
from sqlalchemy import Engine
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from veille.core.clock import Clock, SystemClock, utc
from veille.core.errors import StorageError
from veille.core.logs import protect_secret, redact
from veille.notify.base import (
    Delivery,
    Notification,
    NotifierAuthFailed,
    NotifyError,
    NotifyPermanent,
    NotifyRateLimited,
    NotifyRetryable,
    RecipientGone,
    RouteMoved,
)
from veille.notify.telegram.render import Rendered, render_merged, render_notification, text
from veille.notify.telegram.settings import Pacing, TelegramSettings
from veille.store import telegram as store


class TelegramStatus(TypedDict):
    """The notifier's part of the health file."""

    auth_ok: bool  # false while the token stands rejected
    retry_until: str | None  # ISO time a global flood wait ends, while one runs


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """`log.warning("telegram.flood_wait", extra={"retry_after": 5})` -> "telegram.flood_wait retry_after=5".

    Stable event names with key=value fields in the text (the daemon's formatter prints only the
    message), and the same fields as record attributes for tests and structured handlers.
    """

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        fields = kwargs.get("extra") or {}
        if fields:
            msg = f"{msg} " + " ".join(f"{key}={value}" for key, value in fields.items())
        return msg, kwargs


log = EventLogger(logging.getLogger("veille.telegram"), {})
T = TypeVar("T")
BUTTON_KINDS = frozenset({"opened", "update", "repeat", "escalated"})
# A reminder or an overdue answer (the reply inbox) is closed from the message itself, as `veille inbox
# done|no-reply` would: the incident's cause travels in the notification's extra.
REPLY_CAUSES = frozenset({"reply_due", "reply"})
INBOX_ACTIONS = ("answered", "no_reply")

# -- token protection (B11) -----------------------------------------------------------------------


def protect_token(token: str | None) -> None:
    """Keep `token` out of every log record (see `veille.core.logs.protect_secret`), and keep httpx,
    which logs full request URLs at INFO, at WARNING. Idempotent; call before any Bot call."""
    protect_secret(token)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


# -- classification ----------------------------------------------------------------------------


def retry_after_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` is an int or a timedelta depending on PTB_TIMEDELTA (and warns)."""
    value = getattr(exc, "_retry_after", None)
    if isinstance(value, timedelta):
        return max(value.total_seconds(), 0.0)
    return float(value or 1)


def classify(exc: TelegramError) -> NotifyError:
    """Map a python-telegram-bot error to the notifier error tree, by type only."""
    name = type(exc).__name__
    message = redact(f"telegram {name}: {exc}")
    if isinstance(exc, RetryAfter):
        return NotifyRateLimited(message, retry_after=retry_after_seconds(exc), global_=True)
    if isinstance(exc, ChatMigrated):
        return RouteMoved(message, new_address=str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return RecipientGone(message)
    if isinstance(exc, InvalidToken):
        return NotifierAuthFailed(redact(f"telegram {name}: the bot token was rejected (check the token variable)"))
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is a subclass of it
        return NotifyPermanent(message)
    if isinstance(exc, TimedOut):
        return NotifyRetryable(message, ambiguous=_may_have_arrived(exc))
    if isinstance(exc, Conflict):
        return NotifyRetryable(message)
    if isinstance(exc, NetworkError):
        return NotifyRetryable(message, ambiguous=_may_have_arrived(exc))
    return NotifyRetryable(message)


def _may_have_arrived(exc: TelegramError) -> bool:
    """True if the request may have reached Telegram: anything but a failure to connect or queue."""
    cause = exc.__cause__
    if cause is None:
        return False  # an HTTP error status: Telegram answered, and did not take it
    return not isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


# -- pacing (B7) ---------------------------------------------------------------------------------


class _Slot:
    """One request's place in the rate windows: counted while in flight, then at its completion time.

    Telegram counts arrivals; arrival <= completion, so counting in-flight requests and completed
    ones by completion time never lets more than the limit arrive within any window.
    """

    __slots__ = ("at", "in_flight")

    def __init__(self, at: float) -> None:
        self.at = at
        self.in_flight = True


class Pacer:
    """≈1 message/s per chat, ≤ N/min per group, ≤ M/s overall; alerts before command replies (H6)."""

    def __init__(self, pacing: Pacing, clock: Clock, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._pacing = pacing
        self._clock = clock
        self._sleep = sleep
        self._chats: dict[str, _Slot] = {}
        self._groups: dict[str, list[_Slot]] = {}
        self._global: list[_Slot] = []
        self._lock = asyncio.Lock()
        self._alerts_waiting = 0

    @staticmethod
    def _window(slots: list[_Slot], now: float, span: float, limit: int) -> tuple[list[_Slot], float]:
        live = [s for s in slots if s.in_flight or s.at > now - span]
        if len(live) < limit:
            return live, 0.0
        done = sorted(s.at for s in live if not s.in_flight)
        # Wait until the oldest completed one leaves the window (or poll while all are in flight).
        return live, (done[len(live) - limit] + span - now) if len(done) > len(live) - limit else 0.05

    def _delay(self, chat_id: str, now: float, low: bool) -> float:
        waits = [0.0]
        if low and self._alerts_waiting:
            waits.append(0.05)
        last = self._chats.get(chat_id)
        if last is not None:
            waits.append(0.05 if last.in_flight else last.at + self._pacing.per_chat_interval - now)
        if chat_id.startswith("-"):
            live, wait = self._window(self._groups.get(chat_id, []), now, 60.0, self._pacing.group_per_minute)
            self._groups[chat_id] = live
            waits.append(wait)
        self._global, wait = self._window(self._global, now, 1.0, self._pacing.global_per_second)
        waits.append(wait)
        return max(waits)

    async def acquire(self, chat_id: str, *, low: bool = False) -> _Slot:
        if not low:
            self._alerts_waiting += 1
        try:
            while True:
                async with self._lock:
                    now = self._clock.monotonic()
                    wait = self._delay(chat_id, now, low)
                    if wait <= 0:
                        slot = _Slot(now)
                        self._chats[chat_id] = slot
                        if chat_id.startswith("-"):
                            self._groups.setdefault(chat_id, []).append(slot)
                        self._global.append(slot)
                        return slot
                await self._sleep(min(wait, 5.0))
        finally:
            if not low:
                self._alerts_waiting -= 1

    def release(self, slot: _Slot) -> None:
        slot.at = max(slot.at, self._clock.monotonic())
        slot.in_flight = False

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: str, *, low: bool = False) -> AsyncIterator[None]:
        taken = await self.acquire(chat_id, low=low)
        try:
            yield
        finally:
            self.release(taken)


# -- the notifier --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Entry:
    notification: Notification
    delivery: Delivery | None = None
    error: NotifyError | None = None

    @property
    def done(self) -> bool:
        return self.delivery is not None or self.error is not None


@dataclass(eq=False)
class _Lane:
    """One chat's queue: sends are serialised, and a burst is merged into one message (B7)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: list[_Entry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    rendered: Rendered
    keyboard: InlineKeyboardMarkup | None
    message_row: int | None


class _Request(HTTPXRequest):
    """PTB's HTTPX transport, minus its traceback for answers that are not JSON.

    When the Bot API is down, api.telegram.org's front answers 502/504 with nginx's HTML page; PTB then
    logs a 15-line traceback (from telegram.request) on every attempt, and puts the whole page in its error.
    Here such a page becomes the Bot API's own error form, so the failure reads "Bad Gateway", classifies
    like any 5xx (retryable, not ambiguous) and the outbox logs one line per attempt."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code >= 300 and not payload.lstrip().startswith(b"{"):
            try:
                description = HTTPStatus(code).phrase
            except ValueError:
                description = f"HTTP {code}"
            payload = json.dumps({"ok": False, "error_code": code, "description": description}).encode()
        return code, payload

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        try:
            parsed: dict[str, Any] = json.loads(payload.decode("utf-8", "replace"))
        except ValueError:
            raise TelegramError("Invalid server response (not JSON)") from None
        return parsed


def make_bot(settings: TelegramSettings, token: str, *, pool_size: int = 16, read_timeout: float | None = None) -> Bot:
    """A PTB Bot on our base URL with a real connection pool (PTB's default pool is 1 connection)."""
    timeout = settings.request_timeout
    request = _Request(
        connection_pool_size=pool_size,
        connect_timeout=timeout,
        read_timeout=read_timeout or timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    return Bot(
        token,
        base_url=settings.api_base_url,
        request=request,
        get_updates_request=_Request(
            connection_pool_size=2,
            connect_timeout=timeout,
            read_timeout=timeout + 30,
            write_timeout=timeout,
            pool_timeout=timeout,
        ),
    )


class TelegramNotifier:
    """Implements `veille.notify.base.Notifier` for Telegram.

    `engine` (optional but expected in the daemon) persists routes, the global flood wait and
    button tokens; without it there are no buttons and waits last only for this process.
    """

    channel = "telegram"
    merges_concurrent_sends = True  # the outbox may hand one chat's rows over together (B7)

    def __init__(
        self,
        settings: TelegramSettings,
        token: str,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        bot: Bot | None = None,
        pacing_clock: Clock | None = None,
    ) -> None:
        protect_token(token)
        self.settings = settings
        self._engine = engine
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self.bot = bot or make_bot(settings, token)
        # Pacing is about real seconds at Telegram, even when the rest runs on a simulated clock.
        self.pacer = Pacer(settings.pacing, pacing_clock or SystemClock(), sleep)
        self._lanes: dict[str, _Lane] = {}
        self._retry_until: datetime | None = None  # also persisted when there is an engine
        self._auth_failed_until: datetime | None = None
        self._initialized = False
        self.username: str | None = None

    def __repr__(self) -> str:  # never the Bot's repr: it contains the token
        return f"TelegramNotifier(api={self.settings.api_base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the token (getMe). NotifierAuthFailed on 401/404: the daemon exits non-zero (B5).

        Any other failure (network, 5xx) is logged and start returns: the token is checked again by
        the first send, and alerts wait in the outbox.
        """
        if self._initialized:
            return
        try:
            await self.bot.initialize()
        except TelegramError as exc:
            error = classify(exc)
            if isinstance(error, NotifierAuthFailed):
                await self._auth_failed()
                raise error from None
            # Telegram unreachable at boot (J4): keep going; alerts queue in the outbox meanwhile.
            log.warning("telegram.start_deferred", extra={"error": error.message})
            return
        self._initialized = True
        self.username = self.bot.username
        await self._auth_ok()
        log.info("telegram.ready", extra={"bot": self.username})

    async def aclose(self) -> None:
        try:
            await self.bot.shutdown()
        except TelegramError as exc:
            log.warning("telegram.close_failed: %s", redact(type(exc).__name__))

    def status(self) -> TelegramStatus:
        """For the health file: auth state and any global wait still running."""
        now = self._clock.now()
        return {
            "auth_ok": not (self._auth_failed_until and self._auth_failed_until > now),
            "retry_until": self._retry_until.isoformat() if self._retry_until and self._retry_until > now else None,
        }

    # -- Notifier API ------------------------------------------------------------------------------
    async def send(self, notification: Notification, address: str) -> Delivery:
        if notification.possible_duplicate:
            log.warning(
                "telegram.possible_duplicate", extra={"tag": notification.tag, "outbox_id": notification.outbox_id}
            )
        route = await self._db(store.get_route, address) if self._engine else store.Route(address, address, "ok")
        if route.gone:
            raise RecipientGone(f"telegram route {address} is gone (bot blocked or removed)")
        lane = self._lanes.setdefault(route.chat_id, _Lane())
        entry = _Entry(notification)
        lane.waiting.append(entry)
        try:
            async with lane.lock:
                if entry.done:
                    return self._outcome(entry)
                await self._check_paused()
                # A file (a monthly report) goes alone: a merged digest cannot carry it.
                batch = [e for e in lane.waiting if not e.done and e.notification.attachment is None]
                if len(batch) <= self.settings.pacing.merge_above or entry.notification.attachment is not None:
                    batch = [entry]
                for item in batch:
                    lane.waiting.remove(item)
                try:
                    delivery = await self._deliver(address, [e.notification for e in batch])
                except NotifyError as error:
                    for item in batch:
                        item.error = error
                    raise
                except BaseException as exc:
                    # A crash or cancellation mid-send: the rest of the batch must get an outcome,
                    # or one of them would send the next batch and report it as its own delivery.
                    aborted = NotifyRetryable(f"telegram: merged send aborted ({type(exc).__name__})", ambiguous=True)
                    for item in batch:
                        if item is not entry:
                            item.error = aborted
                    raise
                for item in batch:
                    item.delivery = delivery
                if len(batch) > 1:
                    log.info("telegram.merged", extra={"chat": route.chat_id, "count": len(batch)})
                return delivery
        finally:
            if entry in lane.waiting:
                lane.waiting.remove(entry)

    @staticmethod
    def _outcome(entry: _Entry) -> Delivery:
        if entry.error is not None:
            raise entry.error
        assert entry.delivery is not None
        return entry.delivery

    async def paused_for(self) -> float:
        """Seconds left of a flood wait (B8), for the command poller; 0 when none."""
        try:
            await self._check_paused()
        except NotifyRateLimited as exc:
            return exc.retry_after
        except NotifierAuthFailed:
            return 0.0  # the poller's own getUpdates probe reports it
        return 0.0

    async def _check_paused(self) -> None:
        now = self._clock.now()
        if self._engine is not None:
            until, _ = await self._db(store.get_state, store.RETRY_UNTIL)
            if until is not None and (self._retry_until is None or utc(until) > self._retry_until):
                self._retry_until = utc(until)
            auth_until, _ = await self._db(store.get_state, store.AUTH_FAILED)
            self._auth_failed_until = utc(auth_until) if auth_until else None
        if self._auth_failed_until is not None and self._auth_failed_until > now:
            raise NotifierAuthFailed(
                f"telegram: the bot token was rejected; sends paused until {self._auth_failed_until.isoformat()}"
            )
        if self._retry_until is not None and self._retry_until > now:
            left = (self._retry_until - now).total_seconds()
            raise NotifyRateLimited(f"telegram: flood wait, {left:.0f}s left", retry_after=left, global_=True)

    # -- delivery ------------------------------------------------------------------------------------
    async def _deliver(self, address: str, notifications: list[Notification]) -> Delivery:
        route = await self._db(store.get_route, address) if self._engine else store.Route(address, address, "ok")
        chat_id = route.chat_id
        first = notifications[0]
        outgoing = await self._prepare(chat_id, notifications, html_mode=True)
        plain_tried = moved = False
        while True:
            try:
                silent = all(n.silent for n in notifications)
                if first.attachment is not None:
                    ids = [await self._send_document(chat_id, first, html_mode=outgoing.rendered.html, silent=silent)]
                else:
                    ids = await self._send_parts(chat_id, outgoing, silent=silent)
                return Delivery(message_ids=tuple(ids))
            except ChatMigrated as exc:
                new_chat = str(exc.new_chat_id)
                if moved:
                    raise RouteMoved(f"telegram chat {chat_id} migrated again", new_address=new_chat) from None
                moved = True
                log.warning("telegram.chat_migrated", extra={"address": address, "old": chat_id, "new": new_chat})
                if self._engine is not None:
                    await self._db_soft(
                        "telegram.route_not_saved", None, store.move_route, address, new_chat, self._clock.now()
                    )
                chat_id = new_chat
                outgoing = await self._prepare(chat_id, notifications, html_mode=outgoing.rendered.html)
            except BadRequest as exc:
                if plain_tried:
                    raise NotifyPermanent(redact(f"telegram BadRequest after plain-text fallback: {exc}")) from None
                plain_tried = True
                log.warning(
                    "telegram.html_rejected", extra={"tag": first.tag, "chat": chat_id, "error": redact(str(exc))}
                )
                outgoing = await self._prepare(chat_id, notifications, html_mode=False)
            except TelegramError as exc:
                raise (await self._on_error(exc, address, chat_id)) from None

    async def _on_error(self, exc: TelegramError, address: str, chat_id: str) -> NotifyError:
        error = classify(exc)
        if isinstance(error, NotifyRateLimited):
            await self.record_flood_wait(error.retry_after)
        elif isinstance(error, RecipientGone):
            first_time = True
            if self._engine is not None:
                first_time = await self._db_soft(
                    "telegram.route_not_saved", True, store.mark_route_gone, address, error.message, self._clock.now()
                )
            if first_time:
                log.error("telegram.recipient_gone", extra={"address": address, "chat": chat_id})
        elif isinstance(error, NotifierAuthFailed):
            await self._auth_failed()
        elif isinstance(error, NotifyRetryable) and error.ambiguous:
            log.warning("telegram.ambiguous_failure", extra={"chat": chat_id, "error": error.message})
        return error

    async def record_flood_wait(self, seconds: float) -> None:
        """Telegram's flood control applies to the whole bot: persist it so a restart waits too (B8)."""
        now = self._clock.now()
        until = now + timedelta(seconds=seconds)
        self._retry_until = max(until, self._retry_until) if self._retry_until else until
        if self._engine is not None:
            await self._db_soft("telegram.wait_not_saved", None, store.set_state, store.RETRY_UNTIL, until, None, now)
        log.warning("telegram.flood_wait", extra={"retry_after": seconds})

    async def _auth_ok(self) -> None:
        """getMe accepted the token: a pause stored when an earlier token was rejected no longer applies."""
        self._auth_failed_until = None
        if self._engine is not None:
            await self._db_soft(
                "telegram.auth_state_not_cleared", None, store.clear_state, store.AUTH_FAILED, self._clock.now()
            )

    async def _auth_failed(self) -> None:
        now = self._clock.now()
        self._auth_failed_until = now + self.settings.auth_recheck
        log.error("telegram.auth_failed", extra={"retry_at": self._auth_failed_until.isoformat()})
        if self._engine is not None:
            await self._db_soft(
                "telegram.auth_state_not_saved",
                None,
                store.set_state,
                store.AUTH_FAILED,
                self._auth_failed_until,
                "401",
                now,
            )

    async def _prepare(self, chat_id: str, notifications: list[Notification], *, html_mode: bool) -> _Outgoing:
        max_parts = self.settings.max_parts
        if len(notifications) == 1:
            rendered = render_notification(notifications[0], html_mode=html_mode, max_parts=max_parts)
        else:
            rendered = render_merged(notifications, html_mode=html_mode, max_parts=1)  # a digest is one message
        buttons = self._buttons(notifications)
        if not buttons or self._engine is None:
            return _Outgoing(rendered, None, None)
        first = notifications[0]
        now = self._clock.now()
        created = await self._db_soft(
            "telegram.buttons_unavailable",
            None,
            partial(
                store.create_message,
                chat_id=chat_id,
                incident_id=first.incident_id if len(notifications) == 1 else None,
                client_id=first.client_id if len(notifications) == 1 else None,
                tag=first.tag,
                lang=first.lang,
                buttons=buttons,
                expires_at=now + self.settings.callback_ttl,
                now=now,
            ),
        )
        if created is None:  # the alert matters more than its buttons: send it without them
            return _Outgoing(rendered, None, None)
        row, tokens = created
        rows: list[list[InlineKeyboardButton]] = []
        lang = first.lang
        if len(notifications) == 1:
            labels = [text(lang, b.action) for b in buttons]
            pairs = list(zip(labels, tokens, strict=True))
            rows = [
                [InlineKeyboardButton(label, callback_data=token) for label, token in pairs[i : i + 2]]
                for i in range(0, len(pairs), 2)
            ]
        else:
            tags = {n.incident_id: n.tag for n in notifications}
            rows = [
                [
                    InlineKeyboardButton(
                        f"{text(lang, 'ack')} {tags.get(b.incident_id, '')}".strip(), callback_data=token
                    )
                ]
                for b, token in zip(buttons, tokens, strict=True)
            ]
        return _Outgoing(rendered, InlineKeyboardMarkup(rows), row)

    @staticmethod
    def _buttons(notifications: list[Notification]) -> list[store.Button]:
        if len(notifications) == 1:
            n = notifications[0]
            if n.incident_id is None or n.kind not in BUTTON_KINDS:
                return []
            if n.extra.get("cause") in REPLY_CAUSES:
                return [
                    *(store.Button(action, n.incident_id, n.client_id) for action in INBOX_ACTIONS),
                    store.Button("ack", n.incident_id, n.client_id),
                ]
            buttons = [
                store.Button("ack", n.incident_id, n.client_id),
                store.Button("snooze", n.incident_id, n.client_id),
            ]
            if n.client_id:
                buttons.append(store.Button("mute", n.incident_id, n.client_id))
            buttons.append(store.Button("show", n.incident_id, n.client_id))
            return buttons
        seen: dict[int, store.Button] = {}
        for n in notifications:
            if n.incident_id is not None and n.kind in BUTTON_KINDS and n.incident_id not in seen:
                seen[n.incident_id] = store.Button("ack", n.incident_id, n.client_id)
        return list(seen.values())[:8]

    async def _send_parts(self, chat_id: str, outgoing: _Outgoing, *, silent: bool) -> list[str]:
        parts = outgoing.rendered.parts
        parse_mode = ParseMode.HTML if outgoing.rendered.html else None
        ids: list[str] = []
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            async with self.pacer.slot(chat_id):
                message: Message = await self.bot.send_message(
                    chat_id=_chat(chat_id),
                    text=part,
                    parse_mode=parse_mode,
                    disable_notification=silent,
                    reply_markup=outgoing.keyboard if last else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            ids.append(str(message.message_id))
            if last and outgoing.message_row is not None and self._engine is not None:
                await self._db_soft(
                    "telegram.message_not_recorded",
                    None,
                    partial(
                        store.set_message_sent,
                        row_id=outgoing.message_row,
                        chat_id=str(message.chat_id),
                        message_id=str(message.message_id),
                        text=part,
                        parse_mode=parse_mode,
                    ),
                )
        return ids

    async def _send_document(self, chat_id: str, n: Notification, *, html_mode: bool, silent: bool) -> str:
        """One sendDocument: the file with the message as its caption, so they arrive (or fail) together."""
        assert n.attachment is not None
        caption = render_notification(n, html_mode=html_mode, limit=CAPTION_LIMIT, max_parts=1).parts[0]
        async with self.pacer.slot(chat_id):
            message: Message = await self.bot.send_document(
                chat_id=_chat(chat_id),
                document=n.attachment.content.encode("utf-8"),
                filename=n.attachment.filename,
                caption=caption,
                parse_mode=ParseMode.HTML if html_mode else None,
                disable_notification=silent,
            )
        return str(message.message_id)

    # -- used by the bot (command replies and edits after a button press) --------------------------
    async def reply(self, chat_id: int | str, body: str, *, html: bool = True) -> None:
        """A command reply: paced below alerts (H6); errors are logged, never raised."""
        try:
            async with self.pacer.slot(str(chat_id), low=True):
                await self.bot.send_message(
                    chat_id=_chat(str(chat_id)),
                    text=body,
                    parse_mode=ParseMode.HTML if html else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
        except TelegramError as exc:
            log.warning("telegram.reply_failed", extra={"chat": chat_id, "error": classify(exc).message})

    async def edit(
        self,
        chat_id: int | str,
        message_id: int | str,
        body: str,
        *,
        parse_mode: str | None,
        keyboard: InlineKeyboardMarkup | None,
    ) -> bool:
        try:
            async with self.pacer.slot(str(chat_id), low=True):
                await self.bot.edit_message_text(
                    text=body,
                    chat_id=_chat(str(chat_id)),
                    message_id=int(message_id),
                    parse_mode=parse_mode,
                    reply_markup=keyboard,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            return True
        except TelegramError as exc:
            log.warning("telegram.edit_failed", extra={"chat": chat_id, "error": classify(exc).message})
            return False

    async def _db_soft(self, event: str, default: T, func: Callable[..., T], *args: Any) -> T:
        """A write that must not turn a delivered alert into a failed one (busy or read-only DB)."""
        try:
            return await self._db(func, *args)
        except StorageError as exc:
            log.warning(event, extra={"error": str(exc)})
            return default

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        """Run a store function (engine first) in a thread: SQLite waits must not block the loop."""
        return await asyncio.to_thread(func, self._engine, *args)


CAPTION_LIMIT = 1024  # Telegram's limit on a document's caption


def _chat(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # "@channelname"
