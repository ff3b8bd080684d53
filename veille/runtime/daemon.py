"""Daemon lifecycle: start, schedule every source, drain on SIGTERM/SIGINT, report health.

Each source is an APScheduler interval job with jitter, `max_instances=1` (never two polls of the
same source at once) and `coalesce=True` with no misfire limit (after a laptop sleep or container
freeze, one catch-up poll per source, not a burst). Backoff and Retry-After are honoured by the
pipeline, which skips a run until the source's `next_poll_at`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from veille.config import Config, describe_secrets, load_config, runtime_problems
from veille.core.clock import Clock, SystemClock
from veille.core.errors import ConfigError, StorageError
from veille.core.i18n import N_
from veille.core.models import SourceStatus
from veille.runtime.health import HEARTBEAT_SECONDS, Health, health_path, this_process, write_health
from veille.runtime.leases import SourceLeases, lease_units, spread_key
from veille.runtime.wiring import Components, StreamGroup, build, build_streams, close_all, stream_groups
from veille.sources.registry import streams

if TYPE_CHECKING:
    pass

log = logging.getLogger("veille.runtime.daemon")


STREAM_LEASE_CHECK = 0.5  # seconds between checks that this daemon still holds a stream group


class Daemon:
    def __init__(
        self, config: Config, components: Components, *, clock: Clock | None = None, rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.components = components
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.stop_event = asyncio.Event()
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tasks_bg: set[asyncio.Task[Any]] = set()  # reloads in progress
        self._reload_lock = asyncio.Lock()
        self.leases: SourceLeases | None = None  # made by run(): tests drive schedule_sources without a database
        self._lease_lock = asyncio.Lock()

    def schedule_sources(self, keys: Iterable[str] | None = None) -> None:
        """One interval job per polled source (all, or `keys`), first runs spread over `startup_spread`."""
        pipeline = self.components.pipeline
        now = self.clock.now()
        for key in pipeline.runtimes if keys is None else keys:
            runtime = pipeline.runtimes[key]
            if streams(runtime.config.kind):
                continue
            every = runtime.config.every.total_seconds()
            # Spread first polls (no thundering herd at start) but start soon.
            spread = min(every, self.config.daemon.startup_spread.total_seconds())
            first = now + timedelta(seconds=self.rng.uniform(0, spread))
            self.scheduler.add_job(
                self._poll_job,
                self._trigger(every, start=first),
                args=[key],
                id=key,
                name=key,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=first,
                replace_existing=True,
            )

    def _trigger(self, every: float, *, start: datetime | None = None) -> IntervalTrigger:
        return IntervalTrigger(seconds=every, jitter=max(1, int(every * self.config.daemon.jitter)), start_date=start)

    def request_reload(self) -> None:
        """SIGHUP: re-read the config file, between polls (reloads run one at a time, in order)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="veille-reload")
        self._tasks_bg.add(task)
        task.add_done_callback(self._tasks_bg.discard)

    async def reload(self) -> bool:
        """Apply the config file again if it is valid; otherwise keep the running one and log why (I4).

        Clients, sources, keywords and intervals are applied in place; every other section is
        compared and, if it changed, named in a warning: it takes effect at the next restart."""
        async with self._reload_lock:
            try:
                new = await asyncio.to_thread(load_config, self.config.path)
            except ConfigError as exc:
                log.error(
                    "config reload refused: %s has %d problem(s); still running with the previous config",
                    exc.file,
                    len(exc.problems),
                )
                for config_problem in exc.problems:
                    log.error("config reload: %s", config_problem)
                return False
            _protect_secrets(new)
            problems = runtime_problems(new)
            if problems:  # what `veille config check` refuses is refused here too
                log.error(
                    "config reload refused: %s has %d problem(s); still running with the previous config",
                    new.path,
                    len(problems),
                )
                for problem in problems:
                    log.error("config reload: %s", problem)
                return False
            applied = replace(self.config, clients=new.clients)
            for section in restart_sections(self.config, new):
                log.warning("config reload: %s changed; it takes effect at the next restart", section)
            streams_before = {k for k, r in self.components.pipeline.runtimes.items() if streams(r.config.kind)}
            changes = await self.components.pipeline.reload(applied)
            self.config = applied
            for key in changes.removed:
                if self.scheduler.get_job(key) is not None:
                    self.scheduler.remove_job(key)
            if changes.added:  # claimed before their first run is scheduled, not at the next renewal
                await self._safe_refresh_leases()
            self.schedule_sources(changes.added)
            for key in changes.changed:
                runtime = self.components.pipeline.runtimes[key]
                job = self.scheduler.get_job(key)
                every = runtime.config.every.total_seconds()
                if job is not None and job.trigger.interval.total_seconds() != every:
                    self.scheduler.reschedule_job(key, trigger=self._trigger(every))
            streams_after = {k for k, r in self.components.pipeline.runtimes.items() if streams(r.config.kind)}
            if streams_before != streams_after or any(k in streams_after for k in changes.changed):
                log.warning(
                    "config reload: streamed sources keep their previous set and keywords until the next restart"
                )
            for reloader in self.components.reloaders:
                reloader(applied)
            log.info(
                "config reloaded from %s: %d sources added, %d removed, %d changed",
                applied.path,
                len(changes.added),
                len(changes.removed),
                len(changes.changed),
            )
            return True

    async def _poll_job(self, key: str) -> None:
        if self.stop_event.is_set():
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.components.pipeline.poll(key)
        except asyncio.CancelledError:
            if not self.stop_event.is_set():
                raise
            # Cut by the drain at SIGTERM: nothing of it was stored, the next start polls it again. Said in one
            # calm line rather than left to the scheduler, which logs a cancelled job as an ERROR with a traceback.
            log.info("poll of %s cancelled by the shutdown; it runs again at the next start", key)
        except StorageError:  # reported once by the writer, which backs off; the next run fetches again (G8)
            log.debug("poll of %s not stored: database unavailable", key)
        except Exception:  # the job survives whatever happens (D17)
            log.exception("poll of %s failed", key)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def refresh_leases(self, *, takeover: bool = True) -> None:
        """Renew this daemon's source leases and claim free ones; sources taken over run when due."""
        pipeline = self.components.pipeline
        if self.leases is None:
            return
        async with self._lease_lock:
            units = lease_units(
                {k: (r.ref.id, spread_key(r.config.target, r.config.kind)) for k, r in pipeline.runtimes.items()},
                list(stream_groups(pipeline.runtimes).values()),
            )
            busy = [runtime.ref.id for runtime in pipeline.runtimes.values() if runtime.in_flight]
            lease_round = await asyncio.to_thread(self.leases.take, units, busy=busy)
            adopted = pipeline.adopt(lease_round.acquired, takeover=takeover)
            self.leases.publish(lease_round)
        if lease_round.lost:
            log.warning("lost the lease of %d sources: another daemon polls them now", len(lease_round.lost))
        if lease_round.released:
            log.info(
                "handed over %d sources to share the load (this daemon's share: %d)",
                len(lease_round.released),
                lease_round.share,
            )
        if takeover and adopted:
            log.info("took over %d sources from another daemon", len(adopted))
            self._run_when_due(adopted)

    async def _release_leases(self, budget: float) -> None:
        """Give the leases back after the writer's flush, so the next holder reads this daemon's last state.

        Not tried while the database is known to be down, and never past the drain budget: a
        connection attempt to an unreachable server could take longer than the stop allows, and the
        leases expire by themselves anyway."""
        if self.leases is None:
            return
        if not self.components.pipeline.storage.ok:
            log.info(
                "source leases not released (database unavailable): they expire within %s", self.config.daemon.lease
            )
            return
        try:
            released = await asyncio.wait_for(asyncio.to_thread(self.leases.release), budget)
            log.info("released %d source leases", released)
        except (StorageError, TimeoutError) as exc:
            log.warning(
                "could not release the source leases (%s): they expire within %s",
                exc or "no answer in time",
                self.config.daemon.lease,
            )
        except Exception:  # a bug: they still expire by themselves
            log.exception("could not release the source leases")

    async def _safe_refresh_leases(self) -> None:
        try:
            await self.refresh_leases()
        except StorageError as exc:  # the leases run out: polls pause until the database is back
            log.warning("source lease renewal failed: %s", exc)
        except Exception:
            log.exception("source lease renewal failed")

    def _run_when_due(self, keys: Iterable[str]) -> None:
        """Sources just taken over run at their due time, not at the next tick of a job that idled meanwhile."""
        pipeline = self.components.pipeline
        now = self.clock.now()
        for key in keys:
            runtime = pipeline.runtimes[key]
            if self.scheduler.get_job(key) is None:
                continue
            due = runtime.next_poll_at
            if due is None or due <= now:  # overdue: spread, like a start
                spread = min(runtime.config.every, self.config.daemon.startup_spread).total_seconds()
                due = now + timedelta(seconds=self.rng.uniform(0, spread))
            self.scheduler.modify_job(key, next_run_time=due)

    async def _run_stream_while_held(self, group: StreamGroup, stop: asyncio.Event) -> None:
        """One consumer per stream group among all the daemons: it runs while this daemon holds the group's
        leader. A new holder resumes from the stored cursor minus the rewind, so posts of a takeover gap
        are read again (and stored once)."""
        while not stop.is_set():
            if self.leases is not None and not self.leases.holds(group.leader):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), STREAM_LEASE_CHECK)
                continue
            log.info("stream %s: this daemon runs its consumer", group.name)
            held = asyncio.Event()
            watcher = asyncio.create_task(self._watch_stream_lease(group, stop, held), name="veille-stream-lease")
            try:
                await group.run(held)
            finally:
                watcher.cancel()
            if not stop.is_set():
                log.info("stream %s: handed over to another daemon", group.name)

    async def _watch_stream_lease(self, group: StreamGroup, stop: asyncio.Event, end: asyncio.Event) -> None:
        while not stop.is_set() and (self.leases is None or self.leases.holds(group.leader)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STREAM_LEASE_CHECK)
        end.set()

    async def _keep_leases(self, leases: SourceLeases, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), leases.renew_every)
            if not stop.is_set():
                await self._safe_refresh_leases()

    def health(self) -> Health:
        pipeline = self.components.pipeline
        failing = sum(1 for r in pipeline.runtimes.values() if r.consecutive_errors > 0)
        problems = []
        if not pipeline.storage_ok:
            problems.append(N_("storage: {error}").format(error=pipeline.last_storage_error))
        if not self.scheduler.running:
            problems.append(N_("scheduler not running"))
        gone = sum(1 for r in pipeline.runtimes.values() if r.status is SourceStatus.AUTH_FAILED)
        polls: dict[str, dict[str, int]] = {}
        for (kind, outcome), count in pipeline.poll_counts.items():
            polls.setdefault(kind, {})[outcome] = count
        extra: dict[str, object] = {"auth_failed_sources": gone, "polls": polls}
        if self.leases is not None:
            extra["leases"] = {"owner": self.leases.owner, "held": len(self.leases.held)}
        for source in self.components.health_sources:
            try:
                report = source()
            except StorageError as exc:  # a report that reads the database must not stop the heartbeat (G8)
                problems.append(N_("storage: {error}").format(error=exc))
                continue
            problems.extend(report.pop("problems", []))
            extra.update(report)
        host, process_started = this_process()
        return Health(
            pid=os.getpid(),
            host=host,
            process_started=process_started,
            updated_at=self.clock.now().isoformat(),
            storage_ok=pipeline.storage_ok,
            sources=len(pipeline.runtimes),
            failing_sources=failing,
            problems=problems,
            extra=extra,
        )

    async def _heartbeat(self) -> None:
        path = health_path(self.config)
        while not self.stop_event.is_set():
            try:
                await asyncio.to_thread(lambda: write_health(path, self.health()))
            except OSError as exc:
                log.error("cannot write health file %s: %s", path, exc)
            except Exception:  # a bug in a report: log it, but a dead heartbeat would read as "stalled"
                log.exception("health report failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), HEARTBEAT_SECONDS)

    def request_stop(self, signame: str = "signal") -> None:
        if not self.stop_event.is_set():
            log.info("%s received: draining (at most %.0fs)", signame, self.config.daemon.drain_timeout)
            self.stop_event.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):  # no SIGHUP on Windows
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        pipeline = self.components.pipeline
        for starter in self.components.starters:  # a rejected bot token stops here, exit != 0 (B5)
            await starter()
        await pipeline.start()
        leases = self.leases = pipeline.leases = SourceLeases(
            self.components.engine, self.clock, lease=self.config.daemon.lease, capacity=self.config.daemon.capacity
        )
        await self.refresh_leases(takeover=False)  # before the first polls: only the sources it holds
        self.schedule_sources()
        self.scheduler.start()
        background = [
            asyncio.create_task(self._heartbeat(), name="veille-heartbeat"),
            asyncio.create_task(self._keep_leases(leases, self.stop_event), name="veille-leases"),
        ]
        background += [
            asyncio.create_task(job(self.stop_event), name=getattr(job, "__qualname__", "bg"))
            for job in self.components.background
        ]
        background += [
            asyncio.create_task(self._run_stream_while_held(group, self.stop_event), name="veille-stream")
            for group in build_streams(pipeline, self.clock)
        ]
        log.info(
            "veille started: %d clients, %d sources (%d held by this daemon, %s)",
            len(self.config.clients),
            len(pipeline.runtimes),
            len(leases.held),
            leases.owner,
        )
        await self.stop_event.wait()
        return await self._drain(background)

    async def _drain(self, background: list[asyncio.Task[Any]]) -> int:
        """Stop scheduling, let in-flight polls finish within the grace period, flush the writer."""
        grace = self.config.daemon.drain_timeout
        deadline = self.clock.monotonic() + grace - 1.0
        # Paused, not shut down yet: the scheduler's shutdown cancels the polls it is running at once, which
        # left the grace period unused (and logged each cut poll as an ERROR with a traceback).
        self.scheduler.pause()
        in_flight = list(self._tasks)
        if in_flight:
            _, pending = await asyncio.wait(in_flight, timeout=max(0.1, deadline - self.clock.monotonic() - 1.0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
        remaining = max(0.1, deadline - self.clock.monotonic())
        try:
            await asyncio.wait_for(self.components.pipeline.stop(), timeout=remaining)
        except TimeoutError:
            log.error("writer did not flush within the grace period; unflushed polls will be re-fetched")
        _, pending_bg = await asyncio.wait(background, timeout=max(0.1, deadline - self.clock.monotonic()))
        for task in pending_bg:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self._release_leases(max(0.5, deadline - self.clock.monotonic()))
        await close_all(self.components)
        log.info("veille stopped cleanly")
        return 0


RELOADED = frozenset({"clients", "path"})  # what a SIGHUP applies; the rest of Config needs a restart


def restart_sections(old: Config, new: Config) -> list[str]:
    """Config sections that differ between `old` and `new` but are applied only at start."""
    names = {"database_url": "[database] url", "lang": "lang", "timezone": "timezone"}
    return [
        names.get(f.name, f"[{f.name}]")
        for f in fields(Config)
        if f.name not in RELOADED and getattr(old, f.name) != getattr(new, f.name)
    ]


def _protect_secrets(config: Config) -> None:
    """Secrets a reloaded config names (maybe new variables) are kept out of logs like those at start."""
    from veille.core.logs import protect_secret
    from veille.core.secrets import read_secret

    for _where, name, _is_set in describe_secrets(config):
        protect_secret(read_secret(name))


async def run_daemon(config: Config, *, extensions: Iterable[Callable[[Config, Components], None]] = ()) -> int:
    """Build and run the daemon; each extension adds its tasks to the components first (the dashboard)."""
    components = build(config, checkpoint_job=True)
    for extend in extensions:
        extend(config, components)
    return await Daemon(config, components).run()
