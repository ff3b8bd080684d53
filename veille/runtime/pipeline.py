"""From a poll to stored, scored hits: one poll per source, one writer for all.

Polls run concurrently (bounded); their results go to a single writer task that batches many
sources into one transaction (BEGIN IMMEDIATE on SQLite): new items are scored in one batch, hits
inserted, poll state advanced and the alerting hooks called, all in that transaction. If the commit
fails, nothing advances (ETag included), so the next poll re-fetches and no hit is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine

from veille.config import Config, SourceConfig
from veille.core.backoff import BackoffPolicy, later
from veille.core.clock import Clock
from veille.core.crashpoints import crash_point
from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RateLimited, StorageError
from veille.core.i18n import N_
from veille.core.matching import Matcher, MatchResult
from veille.core.models import ErrorKind, Item, SourceStatus, StoredHit
from veille.core.polling import PollOutcome, PollState
from veille.runtime.inbox import record_hits as record_inbox
from veille.scoring.base import Scorer
from veille.scoring.excerpt import forget_excerpts, sentiment_excerpt
from veille.scoring.own_terms import OwnTerms
from veille.scoring.ratings import rated
from veille.sources.base import FeedParser, PollContext, SourceDriver
from veille.sources.registry import get_driver
from veille.store import sources as source_store
from veille.store.audience import Figure, record_figures
from veille.store.engine import held_for, read_conn, write_tx
from veille.store.hits import (
    MAX_FIELD,
    MatchedItem,
    SourceRef,
    known_hits,
    prepared,
    store_batch,
    stored_versions,
)
from veille.store.outage import StorageStatus
from veille.store.urls import content_hash

if TYPE_CHECKING:
    from veille.net.http import HttpClient
    from veille.runtime.leases import SourceLeases  # the daemon's; the pipeline alone (bench, tests) imports none of it

log = logging.getLogger("veille.runtime.pipeline")

AUTH_RETRY = timedelta(hours=6)  # revoked credentials: retried rarely, never in a loop
# One write transaction takes at most this many poll results, and stops taking more past this many matched
# items: a first poll of news feeds brings thousands of full articles, and a batch holds all of their texts
# (and their scoring and insert parameters) at once.
MAX_BATCH_SOURCES = 200
MAX_BATCH_ITEMS = 500
# A batch is stored in write transactions holding the lock about this long each (issue 17), sized in matched
# items on the last one (at least MIN_PART_ITEMS, at most twice the last size: a cheap part of known entries
# says little of the next part's new articles).
TX_BUDGET = 0.04  # seconds
MIN_PART_ITEMS = 10
# At most this many matched items wait for the writer without their polls' slots (a few MB of full articles).
EARLY_ITEMS = MAX_BATCH_ITEMS


# Poll results taken by the writer together, each with the future its poll awaits.
Batch = list[tuple["PollResult", "asyncio.Future[None]"]]


class PipelineHooks(Protocol):
    """Called inside the write transaction (the alerting work implements it)."""

    def on_new_hits(self, conn: Connection, hits: list[StoredHit]) -> None: ...

    def on_hits_refreshed(self, conn: Connection, hits: list[StoredHit]) -> None: ...

    def on_audience(self, conn: Connection, figures: list[Figure]) -> None: ...

    def on_source_health(
        self,
        conn: Connection,
        source_key: str,
        client_id: str,
        ok: bool,
        error_kind: str | None,
        failing_since: datetime | None,
    ) -> None: ...


class NoHooks:
    """Used when alerting is disabled (`[alerting] enabled = false`) and by `veille run --once` tests."""

    def on_new_hits(self, conn: Connection, hits: list[StoredHit]) -> None:
        return None

    def on_hits_refreshed(self, conn: Connection, hits: list[StoredHit]) -> None:
        return None

    def on_audience(self, conn: Connection, figures: list[Figure]) -> None:
        return None

    def on_source_health(
        self,
        conn: Connection,
        source_key: str,
        client_id: str,
        ok: bool,
        error_kind: str | None,
        failing_since: datetime | None,
    ) -> None:
        return None


@dataclass(slots=True)
class SourceRuntime:
    """A configured source with its driver, matcher and the poll state mirrored from the database."""

    config: SourceConfig
    ref: SourceRef
    driver: SourceDriver
    matcher: Matcher
    state: PollState
    status: SourceStatus
    consecutive_errors: int = 0
    next_poll_at: datetime | None = None
    failing_since: datetime | None = None
    failing_notice_at: datetime | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    in_flight: bool = False


@dataclass(slots=True)
class PollResult:
    runtime: SourceRuntime
    started_at: datetime
    outcome: PollOutcome | None = None
    matched: list[MatchedItem] = field(default_factory=list)
    error: FetchError | None = None
    new_hits: int = 0
    refresh: bool = False  # a re-fetch of known hits: engagement only, poll state untouched
    pushed: bool = False  # sent by the platform (a webhook): new hits like a poll's, poll state untouched
    inserted: list[int] = field(default_factory=list)  # hit ids stored by its shares committed so far (split)


@dataclass(slots=True)
class _Share:
    """Some of one poll result's matched items, stored in one write transaction. A result is split only when
    it alone holds more items than a part; its poll state and bookkeeping go with its `last` share."""

    result: PollResult
    items: Sequence[MatchedItem]
    last: bool


@dataclass(slots=True)
class ReloadChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # options, interval or keywords


def _runtime(source: SourceConfig, row: source_store.SourceRow, matcher: Matcher) -> SourceRuntime:
    return SourceRuntime(
        config=source,
        ref=replace(row.ref, reach_prior=get_driver(source.kind).reach_prior),
        driver=get_driver(source.kind),
        matcher=matcher,
        state=row.state,
        status=row.status,
        consecutive_errors=row.consecutive_errors,
        next_poll_at=row.next_poll_at,
        failing_since=row.failing_since,
        failing_notice_at=row.failing_notice_at,
    )


def failure_schedule(
    error: FetchError,
    *,
    every: timedelta,
    errors: int,
    cap: timedelta,
    jitter: float,
    now: datetime,
    rng: random.Random,
    failing_for: timedelta = timedelta(0),
    gone_after: timedelta | None = None,
) -> tuple[SourceStatus, datetime]:
    """Status and next poll time after a failure: exponential backoff with jitter, capped, never infinite.

    A 404 lasting `gone_after` (the failure streak, `failing_for`, judged from `failing_since`) is
    treated like a 410: a typo'd URL is as dead as a removed feed, but a brief 404 during a site
    migration is not (D9). Gone sources are still polled, at the cap, in case they come back.
    Jitter only ever adds time: a source is never polled before its interval or the server's Retry-After."""
    limit = cap.total_seconds()
    policy = BackoffPolicy(
        base=every.total_seconds(),  # interval x 2^(errors-1): 10m, 20m, 40m... up to the cap, never infinite
        cap=limit,
        jitter=later(jitter),
        retry_after_jitter=later(jitter),
        retry_after_cap=limit,
    )
    delay = policy.scheduled(errors)
    long_404 = error.kind is ErrorKind.NOT_FOUND and gone_after is not None and failing_for >= gone_after
    status = SourceStatus.FAILING if errors < 3 else SourceStatus.BACKING_OFF
    if isinstance(error, RateLimited):
        status = SourceStatus.RATE_LIMITED
        if error.retry_after is not None:
            return status, now + timedelta(seconds=policy.delay(errors, rng=rng, retry_after=error.retry_after))
    elif isinstance(error, AuthFailed):
        status = SourceStatus.AUTH_FAILED
        delay = min(max(delay, AUTH_RETRY.total_seconds()), limit)
    elif error.kind is ErrorKind.GONE or long_404:
        status = SourceStatus.GONE
        delay = limit
    elif isinstance(error, PermanentFetchError):
        delay = min(max(delay, every.total_seconds() * 4), limit)
    return status, now + timedelta(seconds=policy.jittered(delay, rng))


class Pipeline:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        clock: Clock,
        http: HttpClient,
        *,
        scorer: Scorer | None = None,
        hooks: PipelineHooks | None = None,
        parse_feed: FeedParser | None = None,
        env: Callable[[str], str | None] | None = None,
        rng: random.Random | None = None,
        storage: StorageStatus | None = None,
    ) -> None:
        from veille.core.secrets import read_secret

        self.config = config
        self.engine = engine
        self.clock = clock
        self.http = http
        self.scorer = scorer
        self._own_terms: dict[str, OwnTerms] = {}  # client id -> its name and keywords, left out of scoring
        self.hooks: PipelineHooks = hooks or NoHooks()
        self.parse_feed = parse_feed
        self.env = env or read_secret
        self.rng = rng or random.Random()
        self.runtimes: dict[str, SourceRuntime] = {}
        self.storage = storage or StorageStatus()
        self._queue: asyncio.Queue[tuple[PollResult, asyncio.Future[None]]] | None = None
        self._gate: asyncio.Future[None] | None = None  # see hold_writes_until
        self._on_first_match: Callable[[], None] | None = None  # see hold_writes_until
        self._part_items = 2 * MIN_PART_ITEMS  # matched items per write transaction: sized by _store_batch
        self._early = 0  # matched items waiting for the writer whose polls gave their slots back (see poll)
        self._writer: asyncio.Task[None] | None = None
        self._scoring = False  # the writer's scoring stage is busy (its excerpts must stay cached)
        self._stopping = asyncio.Event()
        self._poll_slots = asyncio.Semaphore(config.daemon.concurrency)
        self.leases: SourceLeases | None = None  # set by the daemon: poll only the sources it holds (G7)
        self.poll_counts: Counter[tuple[str, str]] = Counter()  # (kind, "ok" | "error") since start: /metrics

    @property
    def storage_ok(self) -> bool:
        return self.storage.ok

    @property
    def last_storage_error(self) -> str | None:
        return self.storage.error

    # -- set-up ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Sync the config into the database and load every source's state."""
        rows = self._sync(self.config)
        matchers = {c.id: Matcher(c.keywords) for c in self.config.clients}
        for source in self.config.sources:
            if source.enabled:
                self.runtimes[source.key] = _runtime(source, rows[source.key], matchers[source.client_id])

    def _sync(self, config: Config) -> dict[str, source_store.SourceRow]:
        """Upsert the config's clients and sources (removed ones are disabled); the enabled ones' rows."""
        with write_tx(self.engine) as conn:
            refs = source_store.sync_config(conn, config.clients, config.sources, self.clock.now())
        enabled = [s.key for s in config.sources if s.enabled]
        with read_conn(self.engine) as conn:  # one query for all: a thousand feeds made a thousand before
            rows = source_store.load_sources(conn, [refs[key].id for key in enabled])
        return {key: rows[refs[key].id] for key in enabled}

    async def reload(self, config: Config) -> ReloadChanges:
        """Adopt a new config's clients and sources between polls (SIGHUP, I4).

        Sources that stay keep their runtime (poll state, backoff, a poll in flight) and get the new
        options, interval and keywords; new ones are loaded from the database like at start; removed
        ones are dropped (a poll in flight still stores its result: the row is only disabled)."""
        rows = await asyncio.to_thread(self._sync, config)
        matchers = {c.id: Matcher(c.keywords) for c in config.clients}
        changes = ReloadChanges()
        for key in [k for k in self.runtimes if k not in rows]:
            del self.runtimes[key]
            changes.removed.append(key)
        for source in config.sources:
            if not source.enabled:
                continue
            runtime = self.runtimes.get(source.key)
            matcher = matchers[source.client_id]
            if runtime is None or runtime.config.kind != source.kind:
                self.runtimes[source.key] = _runtime(source, rows[source.key], matcher)
                changes.added.append(source.key)
                continue
            if runtime.config != source or runtime.matcher.keywords != matcher.keywords:
                changes.changed.append(source.key)
            runtime.config, runtime.matcher = source, matcher
        self.config = config
        self._own_terms.clear()
        return changes

    def adopt(self, rows: dict[int, source_store.SourceRow], *, takeover: bool) -> list[str]:
        """Mirror the stored state of sources just leased: another daemon may have polled them since it was loaded.

        On a `takeover` the source is not due before its previous holder's last poll + its interval
        (it would have waited that long too). Returns the keys adopted."""
        by_id = {runtime.ref.id: key for key, runtime in self.runtimes.items()}
        adopted = []
        for source_id, row in rows.items():
            key = by_id.get(source_id)
            runtime = self.runtimes[key] if key is not None else None
            if key is None or runtime is None or runtime.in_flight:
                continue
            due = row.next_poll_at
            if takeover and row.last_polled_at is not None:
                due = max(due or row.last_polled_at, row.last_polled_at + runtime.config.every)
            runtime.state, runtime.status = row.state, row.status
            runtime.consecutive_errors, runtime.next_poll_at = row.consecutive_errors, due
            runtime.failing_since, runtime.failing_notice_at = row.failing_since, row.failing_notice_at
            adopted.append(key)
        return adopted

    def _holds(self, runtime: SourceRuntime) -> bool:
        return self.leases is None or self.leases.holds(runtime.ref.id)

    def _owner(self) -> str | None:
        """Poll state is written only for sources this daemon still holds (fencing, G7)."""
        return self.leases.owner if self.leases is not None else None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name="veille-writer")

    def hold_writes_until(
        self, gate: asyncio.Future[None], *, on_first_match: Callable[[], None] | None = None
    ) -> None:
        """Store no matched item before `gate` is done (`veille run --once`: the model still loading); if it
        fails, the results waiting are dropped unstored (their polls are cancelled) instead of failing one by
        one. Results with nothing matched (a 304, an unchanged feed) need no model and are stored at once.

        `on_first_match` is called once, when the first result with matched items is submitted: the caller
        starts loading the model then, so a run that finds nothing new never loads it."""
        self._gate = gate
        self._on_first_match = on_first_match

    async def stop(self) -> None:
        """Flush what is queued, then stop the writer."""
        if self._queue is not None and self._writer is not None:
            self._stopping.set()  # a writer backing off from a dead database fails the rest at once
            await self._queue.join()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    # -- polling --------------------------------------------------------------------------------
    def is_due(self, runtime: SourceRuntime) -> bool:
        return runtime.next_poll_at is None or runtime.next_poll_at <= self.clock.now()

    async def poll(self, key: str, *, force: bool = False) -> PollResult | None:
        """Poll one source if it is due (or `force`, except inside a Retry-After window); store the result."""
        runtime = self.runtimes.get(key)
        if runtime is None or runtime.in_flight:  # None: removed by a reload while its job was firing
            return None
        if not self._holds(runtime):  # another daemon polls it
            return None
        if not self.is_due(runtime) and not (force and runtime.status is not SourceStatus.RATE_LIMITED):
            return None
        runtime.in_flight = True
        try:
            # A slot is held while fetching and parsing, and until the result is stored once EARLY_ITEMS
            # wait: when the writer falls behind, polling slows down instead of piling fetched items up in
            # memory (backpressure).
            await self._poll_slots.acquire()
            holding = True
            early = 0
            try:
                result = await self._fetch(runtime)
                self.poll_counts[runtime.config.kind, "error" if result.error else "ok"] += 1
                if self._early + len(result.matched) <= EARLY_ITEMS:
                    # Fetched and parsed: the result waits for the writer without its slot, so the next
                    # feeds are fetched meanwhile (while the model loads, or while a batch is scored and the
                    # one before it stored), up to EARLY_ITEMS matched items; past them, polls keep their
                    # slots until stored and polling slows down to the writer's pace.
                    early = len(result.matched)
                    self._early += early
                    self._poll_slots.release()
                    holding = False
                await self._submit(result)
            finally:
                self._early -= early
                if holding:
                    self._poll_slots.release()
            return result
        finally:
            runtime.in_flight = False

    async def _fetch(self, runtime: SourceRuntime) -> PollResult:
        started = self.clock.now()
        result = PollResult(runtime, started)
        source_log = logging.LoggerAdapter(log, {"source": runtime.config.key, "client": runtime.config.client_id})
        ctx = PollContext(
            http=self.http,
            clock=self.clock,
            client_id=runtime.config.client_id,
            source_key=runtime.config.key,
            log=source_log,
            env=self.env,
            parse_feed=self.parse_feed,
            keywords=runtime.matcher.keywords,
            cache=runtime.cache,
        )
        deadline = self.config.http.timeout * 2 + self.config.daemon.parse_timeout + 5
        try:
            async with asyncio.timeout(deadline):
                outcome = await runtime.driver.poll(ctx, runtime.config.options, runtime.state)
        except FetchError as exc:
            result.error = exc
            return result
        except TimeoutError:
            result.error = FetchError(ErrorKind.TIMEOUT, N_("poll exceeded {deadline:.0f}s").format(deadline=deadline))
            return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a driver must never stop the other sources (D17)
            log.exception("source %s: unexpected error", runtime.config.key)
            result.error = FetchError(
                ErrorKind.INTERNAL, N_("{name}: {exc}").format(name=type(exc).__name__, exc=str(exc)[:200])
            )
            return result
        result.outcome = outcome
        for item in outcome.items:
            if item.matched_terms is not None:  # matched by the source itself (RSS parse workers)
                match = MatchResult(True, item.direct, item.matched_terms)
            else:
                match = runtime.matcher.match(f"{item.title}\n{item.text}")
            if match.matched or item.kept_unmatched:
                result.matched.append(MatchedItem(item, match))
        return result

    async def refresh_hits(self, grouped: dict[str, list[str]]) -> int:
        """Re-fetch known posts through their own source (drivers with `refresh`) to measure their spread."""
        refreshed = 0
        for key, external_ids in grouped.items():
            runtime = self.runtimes.get(key)
            if runtime is None or not runtime.driver.refreshes or runtime.in_flight or not self._holds(runtime):
                continue
            ctx = PollContext(
                http=self.http,
                clock=self.clock,
                client_id=runtime.config.client_id,
                source_key=key,
                log=logging.LoggerAdapter(log, {"source": key}),
                env=self.env,
                parse_feed=self.parse_feed,
                cache=runtime.cache,
            )
            try:
                async with asyncio.timeout(self.config.http.timeout * 2), self._poll_slots:
                    items = await runtime.driver.refresh(ctx, runtime.config.options, external_ids[:100])
            except (FetchError, TimeoutError) as exc:
                log.info("refresh of %d hits from %s failed: %s", len(external_ids), key, exc)
                continue
            result = PollResult(
                runtime,
                self.clock.now(),
                refresh=True,
                matched=[MatchedItem(i, runtime.matcher.match(f"{i.title}\n{i.text}")) for i in items],
            )
            await self._submit(result)
            refreshed += len(items)
        return refreshed

    async def store_stream_batch(
        self, keys: Sequence[str], items_by_client: dict[str, list[Item]], cursor: int
    ) -> None:
        """Store what a stream consumer matched, and its cursor, through the same single writer."""
        started = self.clock.now()
        results = []
        for key in keys:
            runtime = self.runtimes.get(key)
            if runtime is None or not self._holds(runtime):  # removed by a reload, or another daemon's
                continue
            result = PollResult(runtime, started, outcome=PollOutcome(cursor=str(cursor)))
            for item in items_by_client.get(runtime.config.client_id, []):
                match = runtime.matcher.match(f"{item.title}\n{item.text}")
                if match.matched or item.kept_unmatched:
                    result.matched.append(MatchedItem(item, match))
            results.append(result)
        await asyncio.gather(*(self._submit(r) for r in results))

    async def store_pushed(self, key: str, items: Sequence[Item]) -> int:
        """Store what a platform pushed (a webhook event) for one source as a poll's items: matched, scored,
        stored once (a later poll of the same item stores nothing new), hooks and inbox run. The poll state
        is untouched, so polling stays the fallback that fills any gap. Returns how many hits were new."""
        runtime = self.runtimes.get(key)
        if runtime is None:
            return 0
        result = PollResult(runtime, self.clock.now(), pushed=True)
        for item in items:
            match = runtime.matcher.match(f"{item.title}\n{item.text}")
            if match.matched or item.kept_unmatched:
                result.matched.append(MatchedItem(item, match))
        if not result.matched:
            return 0
        await self._submit(result)
        return result.new_hits

    def stream_cursor(self, keys: Sequence[str]) -> int | None:
        """Where a restarted stream resumes: the oldest cursor among its sources (nothing skipped)."""
        cursors = [int(c) for k in keys if k in self.runtimes and (c := self.runtimes[k].state.cursor) and c.isdigit()]
        return min(cursors) if cursors else None

    async def _submit(self, result: PollResult) -> None:
        if self._queue is None:
            raise RuntimeError("Pipeline.start() was not called")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if result.matched and self._on_first_match is not None:
            first, self._on_first_match = self._on_first_match, None
            first()
        await self._queue.put((result, done))
        await done

    # -- the single writer ----------------------------------------------------------------------
    async def _write_loop(self) -> None:
        """Score and store queued poll results in batches, in two stages: a batch is scored (in the scorer's
        process) while the one before it is stored, so neither the writer's thread nor the scorer waits on the
        other. At most one scored batch waits for the store: the polls in a batch hold their slots."""
        scored: asyncio.Queue[tuple[Batch, bool]] = asyncio.Queue(maxsize=1)
        store = asyncio.create_task(self._store_loop(scored), name="veille-store")
        try:
            await self._score_loop(scored)
        finally:
            store.cancel()
            await asyncio.gather(store, return_exceptions=True)

    async def _score_loop(self, scored: asyncio.Queue[tuple[Batch, bool]]) -> None:
        """Form a batch from the queued results, score what is new in it, hand it to the store."""
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0.02)  # let concurrent polls join this transaction
            items = self._fill(batch)
            if self._gate is not None and items and not self._gate.done():
                await asyncio.wait([self._gate])
                items = self._fill(batch, items)  # what queued while the model loaded joins this transaction
            if self._gate is not None and items and (self._gate.cancelled() or self._gate.exception() is not None):
                for _, done in batch:
                    done.cancel()
                    self._queue.task_done()
                continue
            ready = False
            self._scoring = True
            try:
                await asyncio.to_thread(self._score_new, [r for r, _ in batch])
                ready = True
            except Exception:  # the database or the scorer failed: the store scores this batch again itself
                log.debug("scoring ahead failed; the store stage retries it", exc_info=True)
            finally:
                self._scoring = False
            await scored.put((batch, ready))
            await scored.join()  # the store has taken it: the next batch is scored while this one is stored

    async def _store_loop(self, scored: asyncio.Queue[tuple[Batch, bool]]) -> None:
        """Store scored batches one at a time; while the database is down, back off (G8)."""
        assert self._queue is not None
        failures = 0  # in a row, for this loop's backoff
        while True:
            batch, ready = await scored.get()
            scored.task_done()
            failed = False
            stored = [0]  # results committed, in order (the batch is stored in parts)
            try:
                results = [r for r, _ in batch]
                if not ready:  # scored ahead while the database was down (say): again now, a failure is the store's
                    await asyncio.to_thread(self._score_new, results)
                await asyncio.to_thread(self._store_batch, results, stored)
                self.storage.succeeded()
                failures = 0
            except Exception as exc:  # StorageError, or a bug: the polls not committed did not advance, and are told
                failed = True
                if not isinstance(exc, StorageError):
                    log.exception("write failed (not a storage error), poll state not advanced")
                self.storage.failed(exc, where="writer")
                for _, done in batch[stored[0] :]:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, StorageError) else StorageError(str(exc)))
            finally:
                for result, done in batch[: stored[0]]:
                    _release_items(result)
                    if not done.done():
                        done.set_result(None)
                for _ in batch:
                    self._queue.task_done()
                if not self._scoring and scored.empty():
                    forget_excerpts()  # scored, then read again by the alerting hooks: not kept past the batch
            if failed:
                # Database down: space the attempts out (polls wait in the queue meanwhile, holding
                # their slots, so polling slows down too) instead of failing every poll at once.
                failures += 1
                await self.storage.pause(failures, stop=self._stopping)

    def _fill(self, batch: Batch, items: int | None = None) -> int:
        """Take queued results into `batch` up to the batch limits; the batch's matched items."""
        assert self._queue is not None
        if items is None:
            items = sum(len(result.matched) for result, _ in batch)
        while not self._queue.empty() and len(batch) < MAX_BATCH_SOURCES and items < MAX_BATCH_ITEMS:
            batch.append(self._queue.get_nowait())
            items += len(batch[-1][0].matched)
        return items

    def _score_new(self, results: Sequence[PollResult]) -> None:
        """Score only items not stored yet (or changed), in one batch for the whole transaction.

        The stored ids are read here, outside the write lock, so scoring never holds it; `store_batch`
        reads them again under the lock, which is what decides what is inserted."""
        wanted = {(r.runtime.ref.id, m.item.external_id[:512]) for r in results for m in r.matched}
        if not wanted:
            return
        with read_conn(self.engine) as conn:
            known = known_hits(conn, wanted)
        pending: list[tuple[PollResult, int]] = []
        for result in results:
            for index, matched in enumerate(result.matched):
                item = matched.item
                stored = known.get((result.runtime.ref.id, item.external_id[:512]))
                if stored is None or stored.content_hash != content_hash(item.title[:MAX_FIELD], item.text[:MAX_FIELD]):
                    pending.append((result, index))  # new, or its content changed
        if not pending:
            return
        # The excerpt finds the passages by the matched terms; then the client's own words are taken out.
        texts = [self._own(r.runtime.config.client_id).without(_scoring_text(r.matched[i])) for r, i in pending]
        verdicts = self.scorer.score_batch(texts) if self.scorer is not None else [None] * len(pending)
        for (result, index), scored in zip(pending, verdicts, strict=True):
            old = result.matched[index]
            verdict = rated(scored, old.item.stars)  # a 1- or 2-star review is negative whatever it says
            # Its row is computed here, before the write transaction, not under the lock (issue 17).
            result.matched[index] = prepared(result.runtime.ref, MatchedItem(old.item, old.match, verdict))

    def _own(self, client_id: str) -> OwnTerms:
        """The client's name and keywords: never sentiment evidence (veille.scoring.own_terms)."""
        own = self._own_terms.get(client_id)
        if own is None:
            client = self.config.client(client_id)
            own = self._own_terms[client_id] = OwnTerms(client.name, client.keywords) if client else OwnTerms("", ())
        return own

    def _store_batch(self, results: list[PollResult], stored: list[int] | None = None) -> None:
        """Store a batch in write transactions of about TX_BUDGET each (issue 17: a first poll of news feeds held
        SQLite's lock 0.7 s in one), sized on the lock time per matched item of the last one. Sources are kept
        whole when they fit in a part; one larger than a part (50 full articles) is split over several, and its
        poll state (ETag, cursor, next poll) is committed with its last share only: after a crash or a failure
        between them the source is polled again from its old state, and the entries already committed are
        known by their unique key, so none is lost or stored twice. (Entries of one poll stored in different
        transactions may be linked as copies of each other, like entries of two polls.)
        `stored[0]` counts the results wholly committed so far."""
        index, offset = 0, 0  # the next result to store, and its first item not stored yet
        while index < len(results):
            shares: list[_Share] = []
            room = self._part_items
            while index < len(results):
                result = results[index]
                left = len(result.matched) - offset
                if shares and left > room:
                    break  # whole sources when they fit: it starts the next part
                take = min(left, room)  # only a part's first source is ever cut
                shares.append(_Share(result, result.matched[offset : offset + take], take == left))
                room -= take
                if take < left:
                    offset += take
                    break
                index, offset = index + 1, 0
            items = sum(len(share.items) for share in shares)
            held = self._store_part(shares)
            if items >= MIN_PART_ITEMS:
                fitting = int(items * TX_BUDGET / max(held, 0.001))
                self._part_items = max(MIN_PART_ITEMS, min(MAX_BATCH_ITEMS, 2 * self._part_items, fitting))
            if stored is not None:
                stored[0] = index

    def _store_part(self, shares: list[_Share]) -> float:
        """Hits of every share in a few set-based statements, then the state and hooks of each source whose last
        share this is, in order. Returns how long the transaction held the lock before its commit."""
        now = self.clock.now()
        updates: list[tuple[PollResult, dict[str, Any]]] = []
        ending = [share.result for share in shares if share.last]  # their poll state is committed here
        with write_tx(self.engine) as conn:
            same_poll = {hit_id: s.result.runtime.ref.id for s in shares for hit_id in s.result.inserted}
            stored = store_batch(conn, [(s.result.runtime.ref, s.items) for s in shares], now, same_poll=same_poll)
            source_store.record_successes(
                conn,
                [
                    source_store.Success(r.runtime.ref.id, r.outcome, r.runtime.state, _next_poll_at(r.outcome, now))
                    for r in ending
                    if r.outcome is not None and not r.refresh
                ],
                now,
                owner=self._owner(),
            )
            figures = [
                Figure(
                    r.runtime.config.client_id, r.runtime.config.key, r.runtime.ref.kind, r.runtime.config.target, *mv
                )
                for r in ending
                if r.outcome is not None and not r.refresh
                for mv in r.outcome.audience.items()
            ]
            if figures:
                record_figures(conn, figures, now)
                self.hooks.on_audience(conn, figures)
            for share, new_hits in zip(shares, stored, strict=True):
                update = self._finish_one(conn, share, new_hits, now)
                if share.last:
                    updates.append((share.result, update))
                else:
                    share.result.inserted += [hit.id for hit in new_hits]
            new_hits = [
                hit for share, hits in zip(shares, stored, strict=True) if not share.result.refresh for hit in hits
            ]
            if new_hits:  # once per part: detection runs once per client, not once per source
                record_inbox(conn, new_hits)
                self.hooks.on_new_hits(conn, new_hits)
            crash_point("pipeline.before_commit")
            held = held_for(conn)
        crash_point("pipeline.after_commit")
        for result, new_state in updates:  # mirror the committed state only after the commit
            runtime = result.runtime
            for name, value in new_state.items():
                setattr(runtime, name, value)
        return held

    def _finish_one(self, conn: Connection, share: _Share, stored: list[StoredHit], now: datetime) -> dict[str, Any]:
        """Hooks and failure bookkeeping of one source, once its share's hits are stored; its new in-memory state
        (none before its last share)."""
        result = share.result
        runtime = result.runtime
        source = runtime.config
        if result.refresh:  # its engagement observations were appended with the hits
            self.hooks.on_hits_refreshed(conn, stored_versions(conn, runtime.ref, share.items))
            return {}
        result.new_hits += len(stored)  # the alerting hooks see them with the whole part's
        if result.pushed or not share.last:
            return {}
        if result.outcome is not None:
            outcome = result.outcome
            if runtime.consecutive_errors:
                self.hooks.on_source_health(conn, source.key, source.client_id, True, None, None)
            state = runtime.state
            new_state = PollState(
                etag=outcome.etag if not outcome.not_modified else (outcome.etag or state.etag),
                last_modified=(
                    outcome.last_modified
                    if not outcome.not_modified
                    else (outcome.last_modified or state.last_modified)
                ),
                cursor=outcome.cursor if outcome.cursor is not None else state.cursor,
                content_hash=outcome.content_hash if outcome.content_hash is not None else state.content_hash,
            )
            return {
                "state": new_state,
                "status": SourceStatus.OK,
                "consecutive_errors": 0,
                "next_poll_at": _next_poll_at(outcome, now),
                "failing_since": None,
                "failing_notice_at": None,
            }
        error = result.error
        assert error is not None
        errors = runtime.consecutive_errors + 1
        failing_since = runtime.failing_since or result.started_at
        status, next_poll_at = failure_schedule(
            error,
            every=source.every,
            errors=errors,
            cap=self.config.daemon.max_backoff,
            jitter=self.config.daemon.jitter,
            now=now,
            rng=self.rng,
            failing_for=now - failing_since,
            gone_after=self.config.daemon.gone_after,
        )
        source_store.record_failure(
            conn,
            runtime.ref.id,
            kind=error.kind,
            message=error.message,
            status=status,
            consecutive_errors=errors,
            failing_since=failing_since,
            now=now,
            next_poll_at=next_poll_at,
            owner=self._owner(),
        )
        log.warning(
            "source %s failed (%s, %d in a row): %s; next poll %s",
            source.key,
            error.kind.value,
            errors,
            error.message,
            next_poll_at.isoformat(timespec="seconds"),
        )
        if status is SourceStatus.GONE and runtime.status is not SourceStatus.GONE:
            log.error(
                "source %s is gone (%s): remove it from the config or fix its URL; still retried every %s",
                source.key,
                error.message,
                self.config.daemon.max_backoff,
            )
        notice_at = runtime.failing_notice_at
        if notice_at is None and now - failing_since >= self.config.daemon.failing_notice_after:
            log.error(
                "source %s has been failing since %s (%s): check it with `veille sources --broken`",
                source.key,
                failing_since.isoformat(timespec="minutes"),
                error.kind.value,
            )
            source_store.mark_failing_notice(conn, runtime.ref.id, now)
            notice_at = now
        self.hooks.on_source_health(conn, source.key, source.client_id, False, error.kind.value, failing_since)
        return {
            "status": status,
            "consecutive_errors": errors,
            "next_poll_at": next_poll_at,
            "failing_since": failing_since,
            "failing_notice_at": notice_at,
        }


def _next_poll_at(outcome: PollOutcome, now: datetime) -> datetime | None:
    return now + timedelta(seconds=outcome.earliest_next_poll) if outcome.earliest_next_poll else None


def _release_items(result: PollResult) -> None:
    """Stored: drop the result's items (their counts stay). A `veille run --once` keeps every poll's result
    until it exits, and held each article's text with it: most of its peak memory on a first poll of news."""
    result.matched = []
    if result.outcome is not None:
        result.outcome.items = []


def _scoring_text(matched: MatchedItem) -> str:
    """What the scorer reads: the whole of a short post, the parts of an article that carry its sentiment."""
    return sentiment_excerpt(matched.item.title, matched.item.text, matched.match.terms)
