"""The alerting runner: the thin I/O shell around the pure detection and escalation core.

The pipeline calls `on_new_hits` and `on_source_health` inside its own write transaction, so
incident changes and outbox rows commit atomically with the hits and poll results that caused
them (A5): either all of it is stored or none of it. `run` drives the periodic tick (group waits,
repeats, escalations, resolutions, digests, source silence) and the outbox dispatcher.

Time: wall time is read once at start and then advanced by the monotonic clock (`SteadyClock`),
so an NTP or VM clock step never fires a wait early or twice (C12). All stored times are UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, event

from veille.alerting.calendar import last_occurrence, next_occurrence
from veille.alerting.detect import (
    HISTORY_DAYS,
    HitRow,
    audience_signal,
    detect,
    silence_signal,
    source_signal,
    text_key,
)
from veille.alerting.escalation import Context, Decision, evaluate, next_due, observe
from veille.alerting.risk import CrisisWords, HitFacts, score_risk, shared_crisis_words, velocity
from veille.alerting.settings import Contact
from veille.alerting.summary import load_stemmers
from veille.config import Config
from veille.core.clock import Clock
from veille.core.errors import StorageError
from veille.core.i18n import wording
from veille.core.incidents import Cause, Incident, Mode, Signal, Status, Urgency
from veille.core.models import Engagement, StoredHit
from veille.notify import digest
from veille.notify.base import HitSummary, Notification, Notifier
from veille.notify.render import incident_title, to_payload
from veille.runtime import actions
from veille.runtime.inbox import awaiting_answers, reply_signals
from veille.runtime.outbox import Dispatcher
from veille.runtime.summaries import SUMMARISED, Summaries
from veille.scoring.excerpt import SHORT_TEXT, sentiment_excerpt
from veille.store import alerts as store
from veille.store.audience import Figure, highest_since
from veille.store.engine import held_for, is_sqlite, read_conn, write_tx
from veille.store.outage import StorageStatus

log = logging.getLogger("veille.alerting")
RETENTION = timedelta(days=14)  # per-hit risk rows: longer than any spike baseline
OUTBOX_RETENTION = timedelta(days=30)  # finished outbox rows (`veille alerts` shows their deliveries)
TICK_SECONDS = 1.0  # group_wait and escalations fire within a second of their due time
# Write locks stay short at 1,000 clients (bench/alert_burst.py measures the longest transaction of each writer):
# a write transaction of the tick takes clients a step at a time and commits once it has held the lock for
# TICK_BUDGET; a step is sized on the last step's cost per client, at most TICK_BATCH clients.
TICK_BUDGET = 0.04  # seconds
TICK_BATCH = 20  # clients per step at most
# The hits' transaction (the pipeline's writer) examines its clients' new hits for TICK_BUDGET too, then leaves
# the other clients' examination to the next tick, as of the hits' time (store.defer_detection).
# SQLite: after holding the write lock this long over consecutive transactions, the tick leaves other writers a
# gap a little longer than SQLite's longest busy-handler sleep (100 ms), so that a waiting one gets its turn.
HOLD_BEFORE_GAP = 0.2
YIELD_GAP = 0.11
# Usual posts a write transaction may count for an incident's summary (~0.5 ms each, measured on posts of 40
# words): past that, the detection is left to the tick, which counts them in a read transaction first.
COUNTED_IN_LOCK = 30
# A client with an open buzz/volume incident is re-examined by the tick at most this often (new hits are
# examined at once in on_new_hits): with hundreds of open incidents, re-reading each client's week of
# hits every second kept the write lock for seconds and starved the pipeline's writes.
REDETECT_SECONDS = 30.0
# A client's window of hits is read from the database on its first detection, then kept up to date in memory
# by every hit this service records; it is read again after this long, for the hits that other processes
# sharing the database recorded meanwhile (another daemon on PostgreSQL, a `veille run --once`).
WINDOW_RESYNC_SECONDS = 300.0
CLOCK_STEP_WARNING = timedelta(minutes=2)
RESYNC_AFTER = timedelta(hours=3)  # wall ahead of monotonic by more than this: a suspend, not a step


class _Change(Enum):
    NONE = "none"
    NEW_EVIDENCE = "new_evidence"  # a new hit, or a known one that just became risky
    RESCORED = "rescored"  # a known hit whose risk moved (engagement growth)


class SteadyClock:
    """Wall time anchored once, advanced by monotonic time: immune to wall-clock steps (C12).

    Only a forward gap larger than RESYNC_AFTER (a suspended laptop or VM) re-anchors on the wall clock.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._wall0 = clock.now()
        self._mono0 = clock.monotonic()
        self._warned = False

    def now(self) -> datetime:
        steady = self._wall0 + timedelta(seconds=self._clock.monotonic() - self._mono0)
        wall = self._clock.now()
        drift = wall - steady
        if drift > RESYNC_AFTER:
            # The machine was suspended (monotonic time stops during suspend on Linux): follow the wall
            # clock again, or quiet hours and digests would stay shifted until the next restart.
            log.warning("clock_resync drift=%ss: the host was probably suspended", int(drift.total_seconds()))
            self._wall0, self._mono0, self._warned = wall, self._clock.monotonic(), False
            return wall
        if abs(drift) > CLOCK_STEP_WARNING and not self._warned:
            self._warned = True
            log.warning("clock_step_detected drift=%ss: alert timing keeps monotonic time", int(drift.total_seconds()))
        return steady

    def monotonic(self) -> float:
        return self._clock.monotonic()


@dataclass(frozen=True, slots=True)
class _Known:
    """What the risk bookkeeping needs of a hit's previous row."""

    first_total: int
    first_at: datetime
    velocity: float
    total: int
    risk: float
    row: HitRow


class HitWindows:
    """Each client's recent hits as detection reads them (the rows of `store.hits_since`), kept in memory.

    Re-reading a client's whole window for every batch of new hits made a first poll bringing thousands of
    hits quadratic: the window is read once (on the client's first detection, so at start), then every hit
    the service records updates it, and detection only drops what left the window. It is read again after
    WINDOW_RESYNC_SECONDS (hits other processes recorded) and after a transaction that changed it rolled
    back (the rows it added were never stored)."""

    _TOUCHED = "veille_alerting_windows"  # Connection.info key: clients changed in the open transaction

    def __init__(self, engine: Engine, clock: SteadyClock) -> None:
        self._clock = clock
        self._rows: dict[str, dict[int, HitRow]] = {}
        self._read_at: dict[str, float] = {}
        event.listen(engine, "commit", self._on_commit)
        event.listen(engine, "rollback", self._on_rollback)

    def rows(self, conn: Connection, client_id: str, since: datetime) -> list[HitRow]:
        """The client's hits seen or active since `since`, in this transaction's view."""
        window = self._rows.get(client_id)
        if window is None or self._clock.monotonic() - self._read_at[client_id] >= WINDOW_RESYNC_SECONDS:
            window = {
                r.hit_id: HitRow(r.hit_id, r.seen_at, r.author, r.text_key, r.negative, r.risk, r.active_at)
                for r in store.hits_since(conn, client_id, since)
            }
            self._rows[client_id], self._read_at[client_id] = window, self._clock.monotonic()
            self._touch(conn, client_id)
        else:
            for hit_id in [h for h, r in window.items() if r.last_active < since]:
                del window[hit_id]
        return list(window.values())

    def record(self, conn: Connection, client_id: str, row: HitRow) -> None:
        """A hit just written in `conn`'s transaction (a client not read yet will read it from the database)."""
        window = self._rows.get(client_id)
        if window is not None:
            window[row.hit_id] = row
            self._touch(conn, client_id)

    def has(self, client_id: str, hit_ids: Collection[int]) -> bool:
        """Whether these hits are in the client's window as kept (else it is read again)."""
        window = self._rows.get(client_id)
        return window is not None and all(h in window for h in hit_ids)

    def forget(self, client_id: str) -> None:
        self._rows.pop(client_id, None)

    def _touch(self, conn: Connection, client_id: str) -> None:
        conn.info.setdefault(self._TOUCHED, set()).add(client_id)

    def _on_commit(self, conn: Connection) -> None:
        conn.info.pop(self._TOUCHED, None)

    def _on_rollback(self, conn: Connection) -> None:
        if conn.invalidated:  # the server went away mid-transaction: what it touched went with the connection's
            self._rows.clear()  # info (reading it would raise PendingRollbackError), so every window is re-read
            return
        for client_id in conn.info.pop(self._TOUCHED, ()):
            self._rows.pop(client_id, None)


def risk_text(hit: StoredHit) -> str:
    """What the crisis words are looked for in: a post whole, an article as the scorer reads it.

    An article's crisis words about the client are in its title, its lead or next to the client's name
    (`veille.scoring.excerpt`); one elsewhere in 3 KB of reporting is about something else, and folding
    whole articles for every hit was a good part of the writer's time on a first poll of news feeds."""
    if len(hit.text) <= SHORT_TEXT:
        return f"{hit.title} {hit.text}"
    return sentiment_excerpt(hit.title, hit.text, hit.matched_terms)


def _shown_hits(incident: Incident) -> tuple[int, ...]:
    """The posts an alert shows: the riskiest (or newest) one, then the summary's most representative."""
    representative = incident.summary.top_hits if incident.summary else incident.top_hits
    return tuple(dict.fromkeys((*incident.top_hits[:1], *representative)))[:3]


def engagement_text(engagement: Engagement | None, lang: str = "fr") -> str:
    if engagement is None:
        return ""
    w = wording(lang)
    likes, reposts, replies = engagement.likes or 0, engagement.reposts or 0, engagement.replies or 0
    words = (
        (likes, w.ngettext("{n} like", "{n} likes", likes)),
        (reposts, w.ngettext("{n} repost", "{n} reposts", reposts)),
        (replies, w.ngettext("{n} reply", "{n} replies", replies)),
    )
    return ", ".join(template.format(n=count) for count, template in words if count)


class AlertingService:
    """Detection, escalation and delivery for one daemon (several may share a PostgreSQL DB)."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        clock: Clock,
        notifiers: Mapping[str, Notifier],
        *,
        owner: str | None = None,
        dispatcher: Dispatcher | None = None,
        tick_interval: float = TICK_SECONDS,
        storage: StorageStatus | None = None,
    ) -> None:
        self.config = config
        self.settings = config.alerting
        self.tz = config.tz
        self.engine = engine
        self.clock = SteadyClock(clock)
        self.notifiers = dict(notifiers)
        self.storage = storage or StorageStatus()
        self.dispatcher = dispatcher or Dispatcher(
            engine, self.clock, self.settings, self.notifiers, owner=owner, storage=self.storage
        )
        self.tick_interval = tick_interval
        self._words: dict[str, CrisisWords] = {}
        self.windows = HitWindows(engine, self.clock)
        self.incident_summaries = Summaries(self.settings.spike_window, self.settings.risk_threshold)
        self._detected_at: dict[str, float] = {}  # client -> monotonic time of its last detection
        self._client_cost: float | None = None  # seconds per client of the tick's last step
        self._to_count: dict[str, set[datetime]] = defaultdict(set)  # client -> openings whose usual posts to count
        self._warmed = False
        self.last_tick_at: datetime | None = None

    def now(self) -> datetime:
        return self.clock.now()

    def use_clients(self, config: Config) -> None:
        """A reloaded config (SIGHUP): its clients' names, languages and crisis words from now on.
        The [alerting] settings themselves (contacts, thresholds) need a restart."""
        self.config = replace(self.config, clients=config.clients)
        self._words.clear()
        self._warmed = False  # the new clients' crisis words are compiled before the next tick's transactions

    # --- pipeline hooks (inside the pipeline's write transaction) -------------------------------

    def on_new_hits(self, conn: Connection, hits: list[StoredHit]) -> None:
        """Score risk, update incidents and enqueue notifications, in the caller's transaction.

        Also accepts hits already seen (re-fetched for engagement): their risk and velocity are
        updated, and an incident is updated if the hit became risky.
        """
        if not self.settings.enabled or not hits:
            return
        # The budget counts the lock from the transaction's start: the caller stored the hits in it first.
        began = self.clock.monotonic() - held_for(conn)
        now = self.now()
        evidence: dict[str, list[int]] = defaultdict(list)
        rescored: set[str] = set()
        store.lock_clients(conn, {h.client_id for h in hits})
        # The client's own answers feed the reply inbox only: they are never evidence of a buzz.
        changes = self._record_hits(conn, [h for h in hits if h.duplicate_of is None and not h.from_client], now)
        for hit, change in changes:
            if change is _Change.NEW_EVIDENCE:
                evidence[hit.client_id].append(hit.id)
            elif change is _Change.RESCORED:
                rescored.add(hit.client_id)
        store.kv_set_many(conn, {f"last_data:{c}": now.isoformat() for c in evidence}, now)
        clients = sorted(set(evidence) | rescored)
        deferred = store.detections_due(conn, clients)  # left by an earlier transaction: examined with these
        done: list[str] = []
        later: dict[str, list[int]] = {}
        ctx: Context | None = None
        for client_id in clients:
            changed = [*deferred.get(client_id, (now, []))[1], *evidence.get(client_id, ())]
            if later or (done and self.clock.monotonic() - began >= TICK_BUDGET):
                # Opening an incident costs ms (summary, notification): past the budget, the next tick
                # opens it, as of now, in its own short transactions.
                later[client_id] = changed
                continue
            if ctx is None:
                ctx = self._context(conn, now, clients=clients)
            if self._detect_client(conn, client_id, changed, now, ctx):
                done.append(client_id)
            else:
                later[client_id] = changed
        store.clear_detections(conn, [c for c in done if c in deferred])
        store.defer_detections(conn, later, now)

    def on_hits_refreshed(self, conn: Connection, hits: list[StoredHit]) -> None:
        """Re-fetched hits (new engagement figures): same as `on_new_hits`, named for the caller's sake."""
        self.on_new_hits(conn, hits)

    def hits_to_refresh(self, conn: Connection, *, within: timedelta = timedelta(hours=6)) -> list[int]:
        """Ids of risky hits seen in the last `within`: re-fetch them to measure how fast they spread."""
        floor = self.settings.risk_threshold * 0.8
        return store.risky_hit_ids(conn, self.now() - within, floor)

    def on_source_health(
        self,
        conn: Connection,
        source_key: str,
        client_id: str,
        ok: bool,
        error_kind: str | None,
        failing_since: datetime | None,
    ) -> None:
        """Record a poll result; a source failing for `source_failing_after` becomes an incident."""
        if not self.settings.enabled:
            return
        now = self.now()
        store.lock_clients(conn, [client_id])
        store.upsert_source_health(conn, source_key, client_id, ok, error_kind, failing_since, now)
        if ok:
            store.kv_set(conn, f"last_data:{client_id}", now.isoformat(), now)
        signal = source_signal(client_id, source_key, ok, failing_since, error_kind, self.settings, now)
        if signal.firing or store.active_incident(conn, signal.key) is not None:
            self._apply(conn, [signal], now)

    def on_audience(self, conn: Connection, figures: list[Figure]) -> None:
        """Today's audience figures: a fall from the window's highest beyond its threshold is an incident."""
        if not self.settings.enabled:
            return
        now = self.now()
        since = (now - self.settings.audience_window).date()
        signals = []
        for figure in figures:
            highest = highest_since(conn, figure.source_key, figure.metric, since)
            signal = audience_signal(
                figure.client_id, figure.source_key, figure.metric, figure.value, highest, self.settings
            )
            if signal is not None and (signal.firing or store.active_incident(conn, signal.key) is not None):
                signals.append(signal)
        if signals:
            store.lock_clients(conn, sorted({s.client_id for s in signals}))
            self._apply(conn, signals, now)

    # --- periodic work ----------------------------------------------------------------------------

    def tick(self) -> datetime | None:
        """Advance every incident to now (and open those the hits' transactions left to it), clients a step at a
        time in write transactions that commit once they have held the lock for TICK_BUDGET, then the shared
        upkeep (digests, purges) in one more: at 1,000 clients no transaction holds the write lock for long, and
        other writers (the poll writer, relays, other daemons) get their turn between them."""
        now = self.now()
        self.last_tick_at = now
        if not self.settings.enabled:
            return None
        self._warm()
        with read_conn(self.engine) as conn:
            involved = {c.id for c in self.config.clients} | store.clients_with_alert_state(conn)
            deferred = {client_id: at for client_id, (at, _) in store.detections_due(conn).items()}
            involved |= set(deferred)
        ordered = sorted(involved)
        dues: list[datetime] = []
        gaps = is_sqlite(self.engine)
        start = 0
        held = 0.0  # seconds of lock held since the last gap
        while start < len(ordered):
            self._prepare_openings([c for c in ordered[start:] if c in deferred][:TICK_BATCH], deferred)
            # Not synced at commit: a tick is recomputed from durable rows (the hits, the detections they left),
            # and the relay's durable claim syncs whatever it sends before sending it.
            with write_tx(self.engine, durable=False) as conn:
                began = self.clock.monotonic()
                while start < len(ordered) and (spent := self.clock.monotonic() - began) < TICK_BUDGET:
                    step = ordered[start : start + self._step_size(TICK_BUDGET - spent)]
                    step_began = self.clock.monotonic()
                    step_dues, left = self._tick_clients(conn, set(step), now, deadline=began + TICK_BUDGET)
                    dues += step_dues
                    cost = (self.clock.monotonic() - step_began) / max(1, len(step) - len(left))
                    # Up at once, down slowly: one cheap step must not size the next for 20 costly clients.
                    self._client_cost = max(cost, (self._client_cost or 0.0) * 0.7)
                    start += len(step)
                    # The detections that did not fit open first in the next transaction.
                    ordered[start:start] = sorted(left)
                    deferred.update(left)
                    if any(c in self._to_count for c in left):
                        break  # their usual posts are counted before the next transaction
            held += self.clock.monotonic() - began
            if gaps and held >= HOLD_BEFORE_GAP and start < len(ordered):
                # A waiting writer retries on SQLite's busy schedule (every 100 ms at most): leave it a gap
                # as long as that, or it could wait out the whole tick. Quick ticks need no gap.
                time.sleep(YIELD_GAP)
                held = 0.0
        with write_tx(self.engine, durable=False) as conn:
            dues += self._upkeep(conn, now)
        future = [t for t in dues if t > now]
        return min(future) if future else None

    def _warm(self) -> None:
        """Once, before the daemon's first write transactions: what the first burst's transaction would otherwise
        do while holding the lock (measured, 100 clients: ~50 ms importing the summaries' stemmer, ~25 ms compiling
        the crisis words, of a 192 ms first transaction). Not in `veille run --once`, which may alert nothing."""
        if self._warmed:
            return
        self._warmed = True
        load_stemmers()
        for client in self.config.clients:
            self._words_for(client.id)

    def _prepare_openings(self, clients: Sequence[str], deferred: Mapping[str, datetime]) -> None:
        """Before the write transaction that examines these clients' deferred detections: count the usual posts
        of the buzz and volume incidents they may open (as of the hits' time), and those a write transaction
        found too many to count (`_to_count`), in a read transaction."""
        if not clients:
            return
        with read_conn(self.engine) as conn:
            open_now = {i.client_id for i in store.active_incidents(conn, client_ids=clients) if i.cause in SUMMARISED}
            for client_id in clients:
                openings = self._to_count.pop(client_id, set())
                if client_id in deferred and client_id not in open_now:  # an open one keeps its opening's counts
                    openings.add(deferred[client_id])
                for opened_at in sorted(openings):
                    self.incident_summaries.prepare(conn, client_id, opened_at, self._names(client_id))

    def _names(self, client_id: str) -> tuple[str, ...]:
        """The client's own names, which a summary does not give as a reason."""
        client = self.config.client(client_id)
        return (client.name, *client.keywords) if client else ()

    def _step_size(self, left: float) -> int:
        """As many clients as the last step's cost per client says fit in `left` seconds (at least one)."""
        if self._client_cost is None:
            return 1  # nothing measured yet: one client, whose cost sizes the next step
        if self._client_cost <= 0:
            return TICK_BATCH
        return max(1, int(min(TICK_BATCH, left / self._client_cost)))

    def tick_in(self, conn: Connection) -> datetime | None:
        """The whole tick inside the caller's transaction (a one-shot run ending its groups): it leaves nothing
        for later, counting in it the usual posts `_end_groups` could not count first."""
        now = self.now()
        self.last_tick_at = now
        if not self.settings.enabled:
            return None
        involved = {c.id for c in self.config.clients} | store.clients_with_alert_state(conn)
        involved |= set(store.detections_due(conn))
        dues = self._tick_clients(conn, involved, now, count_in_lock=True)[0] + self._upkeep(conn, now)
        future = [t for t in dues if t > now]
        return min(future) if future else None

    def _tick_clients(
        self,
        conn: Connection,
        clients: set[str],
        now: datetime,
        *,
        deadline: float | None = None,
        count_in_lock: bool = False,
    ) -> tuple[list[datetime], dict[str, datetime]]:
        """Detection, source and silence signals, then escalation, for these clients; when each is next due, and
        the clients left out: those whose detections the hits' transactions left were opened one at a time until
        `deadline` (monotonic; at least one), the others are left whole to the caller's next step. A step sized
        on cheap clients would otherwise hold the lock for every incident it opens (~10 ms each, more on a busy
        machine). A detection whose usual posts are not counted yet is left too (`_detect_client`); the left ones
        come with the time their detection is as of."""
        store.lock_clients(conn, clients)
        deferred = store.detections_due(conn, clients)
        left: dict[str, datetime] = {}
        contexts: dict[datetime, Context] = {}  # by the hits' time, as of which each detection is made
        examined = 0
        for client_id, (at, changed) in sorted(deferred.items()):
            if left or (examined and deadline is not None and self.clock.monotonic() >= deadline):
                left[client_id] = at
                continue
            examined += 1
            if not self.windows.has(client_id, changed):
                self.windows.forget(client_id)  # another process stored them: read the window again
            if at not in contexts:
                contexts[at] = self._context(conn, at, clients=set(deferred))
            if not self._detect_client(conn, client_id, changed, at, contexts[at], count_in_lock=count_in_lock):
                left[client_id] = at
        store.clear_detections(conn, [c for c in deferred if c not in left])
        clients = clients - set(left)
        configured = {c.id for c in self.config.clients}
        active = store.active_incidents(conn, client_ids=clients)
        signals: list[Signal] = []
        for client_id in sorted({i.client_id for i in active if i.cause in (Cause.BUZZ, Cause.VOLUME)}):
            if self._redetect_due(client_id):
                signals.extend(self._detect(conn, client_id, (), now))
        signals.extend(
            source_signal(row.client_id, row.source_key, row.ok, row.failing_since, row.error_kind, self.settings, now)
            for row in store.failing_sources(conn, client_ids=clients)
        )
        signals.extend(self._silence_signals(conn, clients & configured, {i.key for i in active}, now))
        replies, reply_dues = reply_signals(conn, self.config, clients & configured, active, now)
        signals.extend(replies)
        if signals:
            self._apply(conn, signals, now)
        active = store.active_incidents(conn, lock=True, client_ids=clients)
        ctx = self._context(conn, now, active)
        for incident in active:
            self._evaluate(conn, incident, ctx, now, as_loaded=True)
        return self._incidents_due(now, ctx, [i for i in active if i.active]) + reply_dues, left

    def _upkeep(self, conn: Connection, now: datetime) -> list[datetime]:
        """What is not per client: digests, purges of old bookkeeping; when the next digest or quiet end is."""
        self._digests(conn, now)
        store.purge_alert_hits(conn, now - RETENTION)
        store.purge_outbox(conn, now - OUTBOX_RETENTION)
        times: list[datetime] = self._silence_due(conn)
        for contact in self.settings.contacts:
            at = contact.digest_at or self.settings.digest_at
            if at is not None and contact.digest:
                times.append(next_occurrence(at, now, self.tz))
            if self.settings.bump_at_quiet_end and contact.quiet_hours is not None:
                times.append(next_occurrence(contact.quiet_hours.end, now, self.tz))
        return times

    async def run(self, stop: asyncio.Event) -> None:
        """Tick and dispatch until `stop`; the in-flight send finishes or is released (A12)."""
        grace = max(1.0, min(6.0, self.config.daemon.drain_timeout - 1.5))
        dispatcher = asyncio.create_task(self.dispatcher.run(stop, grace=grace), name="outbox")
        interval = self.tick_interval
        failures = 0  # in a row, for this loop's backoff
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
                self.storage.succeeded()
                failures = 0
            except StorageError as exc:
                # Database down: one warning for the daemon, then ticks spaced out up to the cap (G8).
                self.storage.failed(exc, where="alerting tick")
                failures += 1
                await self.storage.pause(failures, stop=stop)
                continue
            except Exception:
                log.exception("alerting_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        await dispatcher

    def health(self) -> dict[str, Any]:
        """For `veille status` and the health file: oldest pending alert age, outbox states."""
        from veille.store.engine import read_conn

        now = self.now()
        with read_conn(self.engine) as conn:
            oldest = store.oldest_pending(conn)
            counts = store.outbox_counts(conn)
        return {
            "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else 0.0,
            "outbox": counts,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
        }

    async def deliver_due(self, *, within: float) -> int:
        """`veille run --once`: the run is the end of the group, so send now what would otherwise wait for
        `group_wait` (cron users get their alerts, not a pending incident that only a daemon would send).

        Sends for at most `within` seconds; what cannot go out by then (Telegram down, a retry backing off)
        stays in the outbox for the next run or the daemon. Returns how many messages were handed over."""
        await asyncio.to_thread(self._end_groups)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        handed = 0
        while (left := deadline - loop.time()) > 0:
            try:
                claimed = await asyncio.wait_for(self.dispatcher.pump(), timeout=left)
            except TimeoutError:
                break
            if not claimed:
                break
            handed += claimed
        return handed

    def _end_groups(self) -> None:
        """Pending incidents waiting only for their group_wait become due now (a cool-down still holds)."""
        with read_conn(self.engine) as conn:
            deferred = {client_id: at for client_id, (at, _) in store.detections_due(conn).items()}
        self._prepare_openings(sorted(set(deferred) | set(self._to_count)), deferred)
        with write_tx(self.engine) as conn:
            now = self.now()
            store.lock_clients(conn, {c.id for c in self.config.clients})
            for incident in store.active_incidents(conn, lock=True):
                waiting = incident.status is Status.PENDING and incident.notify_at > now
                if waiting and incident.notify_at <= incident.opened_at + self.settings.group_wait:
                    incident.notify_at = now
                    store.save_incident(conn, incident, now)
            self.tick_in(conn)

    # --- human actions ----------------------------------------------------------------------------

    def acknowledge(self, incident_id: int, contact: str, *, actor: str, duration: timedelta | None = None) -> bool:
        return actions.ack(
            self.engine, self.clock, self.settings, incident_id, contact=contact, actor=actor, duration=duration
        )

    def mute(self, client_id: str, duration: timedelta, *, actor: str) -> datetime:
        return actions.mute(self.engine, self.clock, client_id, duration, actor=actor)

    # --- internals --------------------------------------------------------------------------------

    def _words_for(self, client_id: str) -> CrisisWords:
        words = self._words.get(client_id)
        if words is None:
            client = self.config.client(client_id)
            extra = client.crisis_words if client else ()
            severe = client.severe_words if client else ()
            words = self._words[client_id] = shared_crisis_words(
                (*self.settings.crisis_words, *extra), (*self.settings.severe_words, *severe)
            )
        return words

    def _record_hits(
        self, conn: Connection, hits: Sequence[StoredHit], now: datetime
    ) -> list[tuple[StoredHit, _Change]]:
        """Store each hit's risk and say whether it is new evidence, or only changes the risk picture.

        Engagement growth of a known post re-scores it (it may raise the urgency) without counting
        as a new post, so an incident that already rang is not updated at every re-fetch. The known rows
        are read in one query and the new ones inserted in one statement (a first poll brings thousands).
        (A hit that the same source of the same client brings twice here is counted once.)
        """
        known = {
            hit_id: _Known(
                r.first_total,
                r.first_at,
                r.velocity,
                r.total,
                r.risk,
                HitRow(r.hit_id, r.seen_at, r.author, r.text_key, r.negative, r.risk, r.active_at),
            )
            for hit_id, r in store.alert_hits_by_id(conn, [h.id for h in hits]).items()
        }
        inserts: list[dict[str, Any]] = []
        changes: list[tuple[StoredHit, _Change]] = []
        for hit in hits:
            existing = known.get(hit.id)
            total = hit.engagement.total() if hit.engagement else 0
            if existing is None:
                speed, first_total, first_at = 0.0, total, now
            else:
                first_total, first_at = existing.first_total, existing.first_at
                speed = max(existing.velocity, velocity(first_total, first_at, total, now))
            facts = HitFacts(
                text=risk_text(hit),
                sentiment=hit.sentiment,
                direct=hit.direct,
                author_followers=hit.author_followers,
                engagement=hit.engagement,
                velocity_per_hour=speed,
                reach_prior=hit.reach_prior,
            )
            risk = score_risk(facts, self._words_for(hit.client_id))
            client = self.config.client(hit.client_id)
            lang = client.lang if client else self.config.lang
            values = {
                "negative": risk.negative,
                "risk": risk.value,
                "reasons": list(risk.reasons),
                "total": total,
                "total_at": now,
                "engagement": engagement_text(hit.engagement, lang)[:100],
                "velocity": speed,
            }
            if existing is None:
                seen = min(now, hit.published_at) if hit.published_at else now
                sentiment = hit.sentiment.brief() if hit.sentiment else None
                row = HitRow(hit.id, seen, hit.author, text_key(hit.text or hit.title), risk.negative, risk.value, seen)
                inserts.append(
                    {
                        "hit_id": hit.id,
                        "client_id": hit.client_id,
                        "seen_at": seen,
                        "published_at": hit.published_at,
                        "source_kind": hit.kind,
                        "author": hit.author,
                        "author_followers": hit.author_followers,
                        "text_key": row.text_key,
                        "snippet": (hit.text or hit.title)[:500],
                        "url": hit.url,
                        "sentiment": sentiment,
                        "first_total": first_total,
                        "first_at": first_at,
                        "active_at": seen,
                        **values,
                    }
                )
                change = _Change.NEW_EVIDENCE
            else:
                active_at = existing.row.active_at
                if total > existing.total:
                    values["active_at"] = active_at = now  # still spreading: keeps a risky post's incident open
                store.update_alert_hit(conn, hit.id, values)
                row = replace(existing.row, negative=risk.negative, risk=risk.value, active_at=active_at)
                threshold = self.settings.risk_threshold
                if existing.risk < threshold <= risk.value:
                    change = _Change.NEW_EVIDENCE  # it just became risky
                elif abs(risk.value - existing.risk) > 0.02:
                    change = _Change.RESCORED
                else:
                    change = _Change.NONE
            known[hit.id] = _Known(first_total, first_at, speed, total, risk.value, row)
            self.windows.record(conn, hit.client_id, row)
            changes.append((hit, change))
        store.insert_alert_hits(conn, inserts)
        return changes

    def _detect_client(
        self,
        conn: Connection,
        client_id: str,
        changed: Sequence[int],
        now: datetime,
        ctx: Context,
        *,
        count_in_lock: bool = False,
    ) -> bool:
        """`ctx`: shared by the clients a transaction examines in turn (one query for all, not two per client);
        inhibition only looks at the incident's own client, which no other client's detection changes.

        False, with nothing changed, when the summary of a buzz or volume incident this would open or update
        needs more than COUNTED_IN_LOCK usual posts counted: the caller leaves the detection to the tick, which
        counts them first in a read transaction (`_to_count`, `_prepare_openings`), then examines it as of `now`.
        `count_in_lock`: counts them whatever their number (nothing may be left for later)."""
        signals = self._detect(conn, client_id, changed, now)
        current = store.active_incidents_by_key(conn, {s.key for s in signals})  # one query for the signals
        if not count_in_lock and self._uncounted(conn, client_id, signals, current, now):
            return False
        self._detected_at[client_id] = self.clock.monotonic()
        self._apply(conn, signals, now, ctx, current=current)
        return True

    def _uncounted(
        self,
        conn: Connection,
        client_id: str,
        signals: Sequence[Signal],
        current: Mapping[str, Incident],
        now: datetime,
    ) -> bool:
        """Whether applying `signals` (to the `current` incidents) would count more than COUNTED_IN_LOCK usual
        posts (then noted in `_to_count`)."""
        summarised = [s for s in signals if s.cause in SUMMARISED]
        missing = set()
        names = self._names(client_id)
        for signal in summarised:
            incident = current.get(signal.key)
            if incident is None and not signal.firing:
                continue
            opened_at = now if incident is None else incident.opened_at
            if not self.incident_summaries.prepare(conn, client_id, opened_at, names, at_most=COUNTED_IN_LOCK):
                missing.add(opened_at)
        if missing:
            self._to_count[client_id] |= missing
        return bool(missing)

    def _redetect_due(self, client_id: str) -> bool:
        last = self._detected_at.get(client_id)
        if last is not None and self.clock.monotonic() - last < REDETECT_SECONDS:
            return False
        self._detected_at[client_id] = self.clock.monotonic()
        return True

    def _detect(self, conn: Connection, client_id: str, changed: Sequence[int], now: datetime) -> list[Signal]:
        since = now - max(self.settings.spike_baseline, timedelta(days=HISTORY_DAYS)) - self.settings.spike_window
        return detect(client_id, self.windows.rows(conn, client_id, since), changed, self.settings, now)

    def _context(
        self,
        conn: Connection,
        now: datetime,
        active: Sequence[Incident] | None = None,
        *,
        clients: Collection[str] = (),
    ) -> Context:
        """What decisions depend on besides the incident. Inhibition looks only at the incident's own client,
        so `clients` (without `active`) bounds the query: a burst at 1,000 clients stays linear."""
        if active is None:
            buzzing = frozenset(store.buzzing_clients(conn, clients))
        else:
            buzzing = frozenset(i.client_id for i in active if i.cause is Cause.BUZZ and i.active)
        return Context(self.settings, self.tz, store.active_mutes(conn, now), buzzing)

    def _apply(
        self,
        conn: Connection,
        signals: Iterable[Signal],
        now: datetime,
        ctx: Context | None = None,
        *,
        current: dict[str, Incident] | None = None,
    ) -> None:
        """`current`: the active incidents of the signals' keys, when the caller has read them."""
        signals = sorted(signals, key=lambda s: s.cause is not Cause.BUZZ)
        if not signals:
            return
        if ctx is None:
            ctx = self._context(conn, now, clients={s.client_id for s in signals})
        if current is None:
            current = store.active_incidents_by_key(conn, {s.key for s in signals})  # one query for the signals
        for signal in signals:
            incident = current.get(signal.key)
            if incident is None and not signal.firing:
                continue
            last_resolved = store.last_resolved_at(conn, signal.key) if incident is None else None
            updated = observe(incident, signal, ctx, now, last_resolved_at=last_resolved)
            if updated is None:
                continue
            if updated.cause in SUMMARISED and (signal.new_hits or updated.summary is None):
                words = self._words_for(updated.client_id)
                updated.summary = self.incident_summaries.of(conn, updated, words, self._names(updated.client_id))
            if incident is None:
                store.save_incident(conn, updated, now)
                store.add_event(
                    conn,
                    now,
                    "opened",
                    incident_id=updated.id,
                    client_id=updated.client_id,
                    detail={"key": updated.key, "urgency": updated.urgency.value, "reasons": list(updated.reasons)},
                )
                if updated.cause is Cause.BUZZ:
                    ctx = replace(ctx, buzzing_clients=ctx.buzzing_clients | {updated.client_id})
            self._evaluate(conn, updated, ctx, now)
            if updated.status is Status.RESOLVED:
                current.pop(signal.key, None)
            else:
                current[signal.key] = updated  # a later signal for the same key sees it as stored

    def _evaluate(
        self, conn: Connection, incident: Incident, ctx: Context, now: datetime, *, as_loaded: bool = False
    ) -> None:
        """`as_loaded`: the incident is exactly as read from the database, so an unchanged one is not rewritten
        (most ticks change nothing; rewriting every open incident each second held the write lock)."""
        before = store.incident_state(incident) if as_loaded and incident.id is not None else None
        decisions = evaluate(incident, ctx, now)
        if before is None or store.incident_state(incident) != before:
            store.save_incident(conn, incident, now)
        if incident.status is Status.RESOLVED:
            store.add_event(
                conn,
                now,
                "resolved",
                incident_id=incident.id,
                client_id=incident.client_id,
                detail={"notified": incident.notified_version > 0, "flaps": incident.flaps},
            )
        self._emit(conn, decisions, now)

    def route(self, conn: Connection, contact: Contact) -> tuple[str, str]:
        """The channel and address a message to `contact` goes to (the console when its channel is not set up,
        a chat that moved to its new id): alerts, digests and monthly reports alike."""
        channel = contact.channel
        if self.notifiers and channel not in self.notifiers and "console" in self.notifiers:
            channel = "console"
        override = store.kv_get(conn, f"route:{contact.id}:{channel}")
        return channel, str(override) if override else contact.address

    def _summaries(self, conn: Connection, hit_ids: Sequence[int]) -> tuple[HitSummary, ...]:
        rows = store.alert_hits_by_id(conn, hit_ids)
        return tuple(
            HitSummary(
                hit_id=r.hit_id,
                source_kind=r.source_kind,
                text=r.snippet,
                url=r.url,
                author=r.author,
                author_followers=r.author_followers,
                engagement=r.engagement,
                sentiment=r.sentiment,
                published_at=r.published_at,
            )
            for r in (rows[h] for h in hit_ids if h in rows)
        )

    def _emit(self, conn: Connection, decisions: Sequence[Decision], now: datetime) -> None:
        for decision in decisions:
            incident = decision.incident
            contact = decision.contact
            detail = {"kind": decision.kind.value, "urgency": decision.urgency.value, "mode": decision.mode.value}
            if decision.mode is Mode.HELD:
                store.add_event(
                    conn,
                    now,
                    "held",
                    incident_id=incident.id,
                    client_id=incident.client_id,
                    contact=contact.id,
                    detail=detail,
                )
                continue
            client = self.config.client(incident.client_id)
            name = client.name if client else incident.client_id
            notification = Notification(
                outbox_id=0,
                incident_id=incident.id,
                tag=incident.tag,
                kind=decision.kind.value,
                client_id=incident.client_id,
                client_name=name,
                contact=contact.id,
                urgency=decision.urgency,
                silent=decision.mode is Mode.SILENT,
                title=incident_title(incident.cause, decision.kind, name, incident.subject, contact.lang),
                reasons=incident.reasons,
                hits=self._summaries(conn, _shown_hits(incident)),
                summary=incident.summary,
                lang=contact.lang,
                created_at=now,
                extra={
                    "wakes": "true" if decision.mode is Mode.WAKE else "false",
                    "hit_count": str(incident.hit_count),
                    "cause": incident.cause.value,  # the channel's buttons depend on it (reply inbox)
                },
            )
            channel, address = self.route(conn, contact)
            outbox_id = store.enqueue(
                conn,
                incident_id=incident.id,
                client_id=incident.client_id,
                contact=contact.id,
                channel=channel,
                address=address,
                kind=decision.kind.value,
                urgency=decision.urgency.value,
                silent=notification.silent,
                payload=to_payload(notification),
                now=now,
            )
            store.add_event(
                conn,
                now,
                "notify",
                incident_id=incident.id,
                client_id=incident.client_id,
                contact=contact.id,
                detail={**detail, "outbox_id": outbox_id},
            )

    def _silence_signals(
        self, conn: Connection, client_ids: set[str], open_keys: set[str], now: datetime
    ) -> list[Signal]:
        if self.settings.no_data_after is None:
            return []
        last_data = store.kv_get_names(conn, "last_data:", client_ids)
        watching = store.kv_get_names(conn, "watch_since:", client_ids)
        signals = []
        for client_id in sorted(client_ids):
            if client_id not in watching:
                store.kv_set(conn, f"watch_since:{client_id}", now.isoformat(), now)
            raw = last_data.get(client_id) or watching.get(client_id) or now.isoformat()
            signal = silence_signal(client_id, datetime.fromisoformat(raw), self.settings, now)
            if signal.firing or signal.key in open_keys:
                signals.append(signal)
        return signals

    def _silence_due(self, conn: Connection) -> list[datetime]:
        limit = self.settings.no_data_after
        if limit is None:
            return []
        seen = {**store.kv_get_prefix(conn, "watch_since:"), **store.kv_get_prefix(conn, "last_data:")}
        return [datetime.fromisoformat(raw) + limit for raw in seen.values()]

    def _digests(self, conn: Connection, now: datetime) -> None:
        for contact in self.settings.contacts:
            at = contact.digest_at or self.settings.digest_at
            if at is None or not contact.digest:
                continue
            key = f"digest:{contact.id}"
            raw = store.kv_get(conn, key)
            if raw is None:
                store.kv_set(conn, key, now.isoformat(), now)  # first run: the next digest covers from now
                continue
            last = datetime.fromisoformat(raw)
            if last >= last_occurrence(at, now, self.tz):
                continue
            store.kv_set(conn, key, now.isoformat(), now)
            self._send_digest(conn, contact, last, now)

    def _send_digest(self, conn: Connection, contact: Contact, since: datetime, now: datetime) -> None:
        clients = [c.id for c in self.config.clients if contact.covers(c.id)]
        incidents = store.incidents_touching(conn, clients, since)
        for incident in incidents:
            if contact.id in incident.held_for:
                incident.held_for = tuple(c for c in incident.held_for if c != contact.id)
                store.save_incident(conn, incident, now)
        counts = store.client_counts(conn, clients, since)
        awaiting = awaiting_answers(conn, clients, now)
        if not incidents and not awaiting and not any(total for total, _ in counts.values()):
            return
        names = {c.id: c.name for c in self.config.clients}
        title, lines = digest.compose(incidents, counts, names, contact.lang, awaiting=awaiting, now=now, tz=self.tz)
        notification = Notification(
            outbox_id=0,
            incident_id=None,
            tag=f"#DIGEST-{now:%Y%m%d}",
            kind="digest",
            client_id=None,
            client_name=None,
            contact=contact.id,
            urgency=Urgency.LOW,
            silent=True,
            title=title,
            reasons=lines,
            lang=contact.lang,
            created_at=now,
            extra={"wakes": "false", "since": since.isoformat()},
        )
        channel, address = self.route(conn, contact)
        outbox_id = store.enqueue(
            conn,
            incident_id=None,
            client_id=None,
            contact=contact.id,
            channel=channel,
            address=address,
            kind="digest",
            urgency="low",
            silent=True,
            payload=to_payload(notification),
            now=now,
        )
        store.add_event(
            conn, now, "digest", contact=contact.id, detail={"outbox_id": outbox_id, "incidents": len(incidents)}
        )

    def _incidents_due(self, now: datetime, ctx: Context, active: Sequence[Incident]) -> list[datetime]:
        times: list[datetime] = []
        for incident in active:
            due = next_due(incident, ctx)
            if due is not None:
                times.append(due)
            if incident.cause in (Cause.BUZZ, Cause.VOLUME):
                times.append(incident.last_evidence_at + min(self.settings.resolve_after, self.settings.spike_window))
        active_clients = {i.client_id for i in active}
        times.extend(until for client_id, until in ctx.muted_until.items() if client_id in active_clients)
        return times
