"""The outbox dispatcher: claims due rows with a lease, sends, records the result.

At least once, never lost: a row is written in the same transaction as the change that caused it
and only leaves `pending` when a notifier accepted it (`sent`) or it failed for good (`dead`).
Duplicates happen only in the ambiguous window (a send that timed out, or a relay that died
between the peer's accept and `mark_sent`); such rows are tagged `possible_duplicate` and the
message says so, so a human can tell (A4, A8). Every result is fenced by the claim's
`attempt_token`, so a relay that stalled past its lease cannot overwrite the new holder (A7).

Retries: `retry_after` from the peer is honoured and persisted (A1, A2); other transient errors
back off exponentially with jitter up to `retry_cap` (A9); after `max_attempts` or `max_age` the
row is dead, logged once at ERROR and reported to the operator, and other rows keep flowing (A10).
Rows of one incident for one contact go out in order (A11). Shutdown finishes or releases the
in-flight send within the grace period (A12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from veille.alerting.settings import AlertingSettings
from veille.core.backoff import EQUAL, BackoffPolicy, later
from veille.core.clock import Clock
from veille.core.crashpoints import crash_point
from veille.core.errors import StorageError
from veille.core.i18n import current_lang, wording
from veille.core.incidents import Urgency
from veille.notify.base import (
    Notification,
    Notifier,
    NotifierAuthFailed,
    NotifyError,
    NotifyPermanent,
    NotifyRateLimited,
    NotifyRetryable,
    RecipientGone,
    RouteMoved,
)
from veille.notify.render import from_payload, to_payload
from veille.store import alerts as store
from veille.store.engine import write_tx
from veille.store.outage import StorageStatus

log = logging.getLogger("veille.runtime.outbox")
AUTH_PAUSE = timedelta(minutes=15)
CLAIM_LIMIT = 50  # rows per claim: a burst for one chat is merged rather than fed 10 at a time
PER_ADDRESS = 25  # at most this many per address in one claim: a backlog cannot hide other chats' rows


def default_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: AlertingSettings,
        notifiers: Mapping[str, Notifier],
        *,
        owner: str | None = None,
        rng: random.Random | None = None,
        on_dead: Callable[[store.Claimed, str], None] | None = None,
        burst_channels: Collection[str] | None = None,
        storage: StorageStatus | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.notifiers = notifiers
        self.owner = owner or default_owner()
        self.rng = rng or random.Random()
        # Equal jitter, never under `retry_base`; a peer's retry_after is waited in full plus up to 10%
        # so that rows paused by one flood wait do not all come back in the same second.
        self.retry = BackoffPolicy(
            base=settings.retry_base.total_seconds(),
            cap=settings.retry_cap.total_seconds(),
            jitter=EQUAL,
            floor=settings.retry_base.total_seconds(),
            retry_after_jitter=later(0.1),
        )
        self._paused: dict[str, datetime] = {}
        self.wake = asyncio.Event()
        self._on_dead = on_dead
        # None: a channel bursts when its notifier says it merges concurrent sends safely.
        self.burst_channels = frozenset(burst_channels) if burst_channels is not None else None
        self.storage = storage or StorageStatus()
        # Sends the notifier accepted but whose `mark_sent` could not be committed (database down).
        # They are recorded before the next claim, so the row is not resent once its lease expires.
        self._unrecorded: list[tuple[store.Claimed, tuple[str, ...]]] = []

    # --- loop ---------------------------------------------------------------------------------

    async def run(
        self, stop: asyncio.Event, *, relays: int | None = None, grace: float = 6.0, idle: float = 0.5
    ) -> None:
        """Run `relays` concurrent relays until `stop`; then drain within `grace` seconds."""
        tasks = [
            asyncio.create_task(self._relay(stop, idle), name=f"outbox-relay-{i}")
            for i in range(relays or self.settings.relays)
        ]
        await stop.wait()
        self.wake.set()
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, stop: asyncio.Event, idle: float) -> None:
        failures = 0  # in a row, for this loop's backoff
        while not stop.is_set():
            try:
                count = await self.pump(stop=stop, per_address=PER_ADDRESS)
                self.storage.succeeded()
                failures = 0
            except asyncio.CancelledError:
                raise
            except StorageError as exc:  # database down: reported once for the daemon, retried with backoff (G8)
                self.storage.failed(exc, where="outbox relay")
                failures += 1
                await self.storage.pause(failures, stop=stop)
                continue
            except Exception:  # a bug must not kill the relay
                log.exception("outbox_relay_error owner=%s", self.owner)
                count = 0
                await asyncio.sleep(idle * 4)
            if count == 0 and not stop.is_set():
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)

    async def pump(
        self, *, limit: int = CLAIM_LIMIT, stop: asyncio.Event | None = None, per_address: int | None = None
    ) -> int:
        """Claim up to `limit` due rows (`per_address` at most for one address) and send them.

        Returns how many were claimed.

        Rows for different addresses go out concurrently, so one chat's pacing never holds back
        another's. Within one address rows go one by one, except on a channel whose notifier
        merges sends that wait together (B7; `merges_concurrent_sends = True` on the notifier, or
        `burst_channels`): there they are handed over at once under one shared deadline. The
        claim holds at most one row per (incident, contact) (A11), so rows sent side by side
        never belong to the same incident queue.
        """
        if stop is not None and stop.is_set():
            return 0
        if self._unrecorded:
            await self._record_unrecorded()
        lease_until = self.clock.now() + self.settings.lease  # read before the claim: never later than its lease
        claimed = await asyncio.to_thread(self._claim, limit, per_address)
        if not claimed:
            return 0
        groups: dict[tuple[str, str], list[store.Claimed]] = {}
        for row in claimed:
            groups.setdefault((row.channel, row.address), []).append(row)
        results = await asyncio.gather(
            *(self._deliver_group(rows, lease_until, stop) for rows in groups.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(claimed)

    async def _deliver_group(
        self, rows: list[store.Claimed], lease_until: datetime, stop: asyncio.Event | None
    ) -> None:
        """One address's share of a claim: together on a merging channel, else one by one."""
        if len(rows) > 1 and self._bursts(rows[0].channel):
            if stop is not None and stop.is_set():
                await asyncio.to_thread(self._unclaim, rows)
                return
            # One deadline for the whole burst: every unfinished send is cancelled in the same
            # loop step, so no send of the burst can see another's merged batch half-abandoned.
            # Never past the lease either: another relay would take the rows over and resend them.
            budget = min(self.settings.send_timeout, lease_until - self.clock.now()).total_seconds()
            deadline = asyncio.get_running_loop().time() + budget
            results = await asyncio.gather(
                *(self.deliver(row, deadline=deadline) for row in rows), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return
        for index, row in enumerate(rows):
            late = self.clock.now() + self.settings.send_timeout > lease_until
            if index and (late or (stop is not None and stop.is_set())):
                # Stopping, or the lease would run out mid-send (another relay would resend): give
                # the rest back untouched; they were never handed to the notifier.
                await asyncio.to_thread(self._unclaim, rows[index:])
                return
            try:
                await self.deliver(row)
            except asyncio.CancelledError:
                self._unclaim(rows[index + 1 :])  # sync on purpose: the loop is shutting down
                raise

    def _bursts(self, channel: str) -> bool:
        """Hand one address's rows over together? Only to a notifier that merges them (B7)."""
        if self.burst_channels is not None:
            return channel in self.burst_channels
        return getattr(self.notifiers.get(channel), "merges_concurrent_sends", False) is True

    # --- one row ------------------------------------------------------------------------------

    def _claim(self, limit: int, per_address: int | None) -> list[store.Claimed]:
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            return store.claim(
                conn, self.owner, now, self.settings.lease, limit, lambda: uuid.uuid4().hex, per_address=per_address
            )

    def _unclaim(self, rows: list[store.Claimed]) -> None:
        if not rows:
            return
        with write_tx(self.engine) as conn:
            for row in rows:
                store.unclaim(conn, row.id, row.token, self.clock.now())

    def _release(self, row: store.Claimed) -> None:
        with write_tx(self.engine) as conn:
            store.release(conn, row.id, row.token, self.clock.now())
        log.warning(
            "outbox_released outbox=%s incident=%s (shutdown during send; tagged possible duplicate)",
            row.id,
            row.incident_id,
        )

    async def deliver(self, row: store.Claimed, *, deadline: float | None = None) -> None:
        """Send one claimed row and record the result; `deadline` (loop time) defaults to now + send_timeout."""
        if row.reclaimed:
            log.warning(
                "outbox_possible_duplicate outbox=%s incident=%s contact=%s: previous attempt's "
                "lease expired mid-send, resending",
                row.id,
                row.incident_id,
                row.contact,
            )
        now = self.clock.now()
        paused = self._paused.get(row.channel)
        if paused is not None and now < paused:
            await asyncio.to_thread(self._record_retry, row, paused, "channel paused (auth failed)", False, None)
            return
        notifier = self.notifiers.get(row.channel) or self.notifiers.get("console")
        if notifier is None:
            await asyncio.to_thread(
                self._failed_retryable, row, f"no notifier for channel {row.channel!r}", False, None
            )
            return
        notification = from_payload(row.payload, outbox_id=row.id, possible_duplicate=row.possible_duplicate)
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.settings.send_timeout.total_seconds()
        crash_point("outbox.before_send")
        try:
            async with asyncio.timeout_at(deadline):
                delivery = await notifier.send(notification, row.address)
        except asyncio.CancelledError:
            self._release(row)  # sync on purpose: the loop is shutting down
            raise
        except StorageError:
            # The notifier could not read its own state (database down): nothing was sent. Not a
            # notifier bug; the relay backs off and the row is retried once its lease expires (G8).
            raise
        except TimeoutError:
            await asyncio.to_thread(self._failed_retryable, row, "send timed out (may have been delivered)", True, None)
        except NotifyRateLimited as exc:
            if exc.global_:
                self._paused[row.channel] = now + timedelta(seconds=exc.retry_after)
            await asyncio.to_thread(self._failed_retryable, row, exc.message, False, exc.retry_after)
        except NotifyRetryable as exc:
            await asyncio.to_thread(self._failed_retryable, row, exc.message, exc.ambiguous, None)
        except RouteMoved as exc:
            await asyncio.to_thread(self._route_moved, row, exc.new_address)
        except RecipientGone as exc:
            await asyncio.to_thread(self._recipient_gone, row, exc.message)
        except NotifierAuthFailed as exc:
            self._paused[row.channel] = now + AUTH_PAUSE
            log.error("notifier_auth_failed channel=%s: sends paused for %s", row.channel, AUTH_PAUSE)
            await asyncio.to_thread(self._record_retry, row, now + AUTH_PAUSE, exc.message, False, None)
        except NotifyPermanent as exc:
            await asyncio.to_thread(self._dead, row, exc.message)
        except NotifyError as exc:  # an unclassified NotifyError: treat as transient
            await asyncio.to_thread(self._failed_retryable, row, exc.message, False, None)
        except Exception as exc:  # a notifier bug: keep the row, back off
            log.exception("notifier_bug outbox=%s channel=%s", row.id, row.channel)
            await asyncio.to_thread(self._failed_retryable, row, f"internal: {type(exc).__name__}", False, None)
        else:
            crash_point("outbox.after_send")  # A4: the peer has it, the row does not know yet
            try:
                await asyncio.to_thread(self._sent, row, delivery.message_ids)
            except StorageError:
                self._unrecorded.append((row, delivery.message_ids))  # G8: kept until the database is back
                raise

    async def _record_unrecorded(self) -> None:
        """Commit the sends accepted while the database was down; those not committed stay queued."""
        pending, self._unrecorded = self._unrecorded, []
        for index, (row, message_ids) in enumerate(pending):
            try:
                await asyncio.to_thread(self._sent, row, message_ids)
            except BaseException:
                self._unrecorded.extend(pending[index:])
                raise

    def _sent(self, row: store.Claimed, message_ids: tuple[str, ...]) -> None:
        with write_tx(self.engine) as conn:
            ok = store.mark_sent(conn, row.id, row.token, self.clock.now(), message_ids)
        if ok:
            log.info(
                "outbox_sent outbox=%s incident=%s contact=%s attempt=%s",
                row.id,
                row.incident_id,
                row.contact,
                row.attempts,
            )
        else:
            log.warning(
                "outbox_stale_result outbox=%s: lease lost to another relay, result discarded (possible duplicate)",
                row.id,
            )

    def _failed_retryable(self, row: store.Claimed, error: str, ambiguous: bool, retry_after: float | None) -> None:
        now = self.clock.now()
        if ambiguous:
            log.warning(
                "outbox_ambiguous outbox=%s incident=%s contact=%s: %s; will resend, tagged possible duplicate",
                row.id,
                row.incident_id,
                row.contact,
                error,
            )
        if row.attempts >= self.settings.max_attempts or now - row.created_at >= self.settings.max_age:
            self._dead(row, f"gave up after {row.attempts} attempts: {error}")
            return
        delay = self.retry.delay(row.attempts, rng=self.rng, retry_after=retry_after)
        self._record_retry(row, now + timedelta(seconds=delay), error, ambiguous, None)

    def _record_retry(
        self, row: store.Claimed, next_at: datetime, error: str, ambiguous: bool, address: str | None
    ) -> None:
        with write_tx(self.engine) as conn:
            ok = store.mark_retry(
                conn, row.id, row.token, next_at, error, possible_duplicate=ambiguous, address=address
            )
        if not ok:
            log.warning("outbox_stale_result outbox=%s: lease lost, retry not recorded", row.id)
        else:
            log.info(
                "outbox_retry outbox=%s attempt=%s next=%s error=%s", row.id, row.attempts, next_at.isoformat(), error
            )

    def _route_moved(self, row: store.Claimed, new_address: str) -> None:
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            if row.payload.get("extra", {}).get("moved"):
                store.mark_dead(conn, row.id, row.token, "route moved twice")
                return
            store.kv_set(conn, f"route:{row.contact}:{row.channel}", new_address, now)
            store.mark_retry(conn, row.id, row.token, now, "route moved", address=new_address)
        log.warning("route_moved contact=%s channel=%s: address updated, resending once", row.contact, row.channel)

    def _recipient_gone(self, row: store.Claimed, error: str) -> None:
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            if not store.mark_dead(conn, row.id, row.token, f"recipient gone: {error}"):
                return
            told = store.kv_get(conn, f"gone:{row.contact}:{row.channel}")
            store.kv_set(conn, f"gone:{row.contact}:{row.channel}", now.isoformat(), now)
            if row.incident_id is not None:
                store.escalate_now(conn, row.incident_id, now)
            if not told:
                self._notice(conn, row, f"recipient gone ({row.contact} on {row.channel}): {error}", now)
        log.error(
            "recipient_gone contact=%s channel=%s outbox=%s: escalating to the next contact",
            row.contact,
            row.channel,
            row.id,
        )

    def _dead(self, row: store.Claimed, error: str) -> None:
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            if not store.mark_dead(conn, row.id, row.token, error):
                return
            if row.kind != "notice":
                self._notice(conn, row, error, now)
        log.error(
            "outbox_dead outbox=%s incident=%s contact=%s channel=%s attempts=%s: %s",
            row.id,
            row.incident_id,
            row.contact,
            row.channel,
            row.attempts,
            error,
        )
        if self._on_dead is not None:
            self._on_dead(row, error)

    def _notice(self, conn: Connection, row: store.Claimed, error: str, now: datetime) -> None:
        """One operator notice through the fallback route (console if present)."""
        operator = self.settings.operator_contact()
        if "console" in self.notifiers or operator is None:
            lang = operator.lang if operator else current_lang()
            channel, address, contact = "console", "", operator.id if operator else "operator"
        else:
            channel, address, contact, lang = operator.channel, operator.address, operator.id, operator.lang
        title = (
            wording(lang)
            ._("Message failed for good: {tag} for {contact}")
            .format(tag=row.payload.get("tag", ""), contact=row.contact)
        )
        notice = Notification(
            outbox_id=0,
            incident_id=None,
            tag=f"#OUT-{row.id}",
            kind="notice",
            client_id=row.client_id,
            client_name=None,
            contact=contact,
            urgency=Urgency.LOW,
            silent=False,
            title=title,
            reasons=(error[:300],),
            lang=lang,
            created_at=now,
        )
        store.enqueue(
            conn,
            incident_id=None,
            client_id=row.client_id,
            contact=contact,
            channel=channel,
            address=address,
            kind="notice",
            urgency="low",
            silent=False,
            payload=to_payload(notice),
            now=now,
        )
