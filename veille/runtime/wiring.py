"""Builds the daemon from its config: database, HTTP client, scorer helper, parse pool, pipeline,
alerting service and notifiers, and the stream consumers that drivers ask for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from veille.config import Config
from veille.core.clock import Clock, SystemClock
from veille.core.errors import ConfigError, ConfigProblem
from veille.core.paths import sqlite_path
from veille.net.http import HttpClient, quiet_http_loggers
from veille.runtime.health import alerting_health, telegram_health
from veille.runtime.jobs import checkpoint_wal, purge_daily, refresh_risky_hits, send_monthly_reports
from veille.runtime.pipeline import Pipeline, SourceRuntime
from veille.sources.registry import parses_feeds
from veille.store.engine import make_engine, on_network_filesystem
from veille.store.migrate import check_schema
from veille.store.outage import StorageStatus

if TYPE_CHECKING:
    from veille.core.models import Item
    from veille.runtime.alerting import AlertingService
    from veille.scoring.process import ScoringProcess
    from veille.sources.base import FeedParser, StreamConsumer

log = logging.getLogger("veille.runtime.wiring")

# A task that runs until `stop` is set. A coroutine function, not any awaitable: asyncio.create_task takes coroutines.
BackgroundJob = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def stream_groups(runtimes: Mapping[str, SourceRuntime]) -> dict[tuple[str, str], list[str]]:
    """Streamed sources by (kind, stream group): one consumer serves each group."""
    from veille.sources.registry import get_driver

    groups: dict[tuple[str, str], list[str]] = {}
    for key, runtime in runtimes.items():
        driver = get_driver(runtime.config.kind)
        if driver.streams:
            groups.setdefault((runtime.config.kind, driver.stream_group(runtime.config.options)), []).append(key)
    return groups


@dataclass(frozen=True, slots=True)
class StreamGroup:
    """One stream consumer and the sources it feeds; its leader's lease says which daemon runs it."""

    name: str
    keys: tuple[str, ...]
    leader: int  # source id
    run: BackgroundJob


def build_streams(pipeline: Pipeline, clock: Clock) -> list[StreamGroup]:
    """One consumer per stream group (one Jetstream URL...), matching every post against all its clients."""
    from veille.sources.registry import get_driver

    streams: list[StreamGroup] = []
    for (kind, group), keys in stream_groups(pipeline.runtimes).items():
        matchers = {pipeline.runtimes[k].config.client_id: pipeline.runtimes[k].matcher for k in keys}
        consumer = get_driver(kind).open_stream(
            pipeline.runtimes[keys[0]].config.options,
            matchers,
            clock=clock,
            log=logging.getLogger(f"veille.stream.{kind}"),
        )

        async def load_cursor(keys: list[str] = keys) -> int | None:
            return pipeline.stream_cursor(keys)

        async def on_batch(items: dict[str, list[Item]], cursor: int, keys: list[str] = keys) -> None:
            await pipeline.store_stream_batch(keys, items, cursor)

        async def run(
            stop: asyncio.Event,
            consumer: StreamConsumer = consumer,
            load: Callable[[], Awaitable[int | None]] = load_cursor,
            store: Callable[[dict[str, list[Item]], int], Awaitable[None]] = on_batch,
        ) -> None:
            await consumer.run(stop, load, store)

        leader = min(pipeline.runtimes[k].ref.id for k in keys)
        streams.append(StreamGroup(f"{kind} {group}", tuple(keys), leader, run))
    return streams


@dataclass(slots=True)
class Wiring:
    """What the parts of the daemon register while it is built: tasks, start checks, closers, health."""

    background: list[BackgroundJob] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # e.g. check the bot token
    health_sources: list[Callable[[], dict[str, Any]]] = field(default_factory=list)
    reloaders: list[Callable[[Config], None]] = field(default_factory=list)  # told of a reloaded config


@dataclass(slots=True, kw_only=True)
class Components(Wiring):
    """What the daemon runs; tests build their own (fake clock, fake notifiers)."""

    engine: Engine
    http: HttpClient
    pipeline: Pipeline
    alerting: AlertingService | None = None  # None when [alerting] is off
    # Built with wait_for_scorer=False: waits (in a thread) until the scorer's model is loaded, or raises.
    scorer_ready: Callable[[], Awaitable[None]] | None = None


def build(
    config: Config,
    *,
    clock: Clock | None = None,
    with_alerting: bool = True,
    wait_for_scorer: bool = True,
    checkpoint_job: bool = False,
) -> Components:
    """Open the database (refusing a schema that is behind or ahead), load the scorer, wire the pipeline.

    With `wait_for_scorer=False` the helper is not started: the caller awaits `Components.scorer_ready` when
    it first needs the model, which then loads while the caller goes on polling (`veille run --once`).
    `checkpoint_job` (the daemon): SQLite's WAL is checkpointed by a background job, not inside commits; a
    caller that does not run `Components.background` (`--once`) keeps SQLite's automatic checkpoints."""
    from veille.core.paths import data_dir
    from veille.scoring.process import ScoringProcess

    clock = clock or SystemClock()
    quiet_http_loggers()
    engine = make_engine(config.database_url, autocheckpoint=not checkpoint_job)
    path = sqlite_path(config.database_url)
    if path is not None and on_network_filesystem(path):
        log.warning("the database %s is on a network filesystem: SQLite WAL needs a local disk", path)
    check_schema(engine)
    # The model lives in a helper process: scoring runs on the other core, and the daemon's own
    # memory stays small (veille.scoring.process explains the trade). The daemon's loads while the rest is
    # wired; `--once` starts it only when a poll has found something to score.
    scorer = ScoringProcess(config.sentiment, data_dir=data_dir(config.database_url))
    if wait_for_scorer:
        scorer.launch()
    try:
        components = _wire(config, engine, clock, scorer, with_alerting=with_alerting, wait_for_scorer=wait_for_scorer)
    except BaseException:
        scorer.close()
        raise
    if checkpoint_job and path is not None:
        components.background.append(lambda stop: checkpoint_wal(engine, stop))
    return components


def _wire(
    config: Config, engine: Engine, clock: Clock, scorer: ScoringProcess, *, with_alerting: bool, wait_for_scorer: bool
) -> Components:
    from veille.sources.rss.parsepool import FeedParsePool

    http = HttpClient(config.http, clock=clock)
    storage = StorageStatus()  # one view of the database for the writer, the alerting tick and relays (G8)
    wiring = Wiring(closers=[http.aclose, engine.dispose])
    parse_feed: FeedParser | None = None
    if any(parses_feeds(s.kind) for s in config.sources):
        pool = FeedParsePool(
            workers=config.daemon.parse_workers,
            timeout=config.daemon.parse_timeout,
            max_entries=config.daemon.max_entries,
        )
        parse_feed = pool.parse
        wiring.starters.append(pool.start)
        wiring.closers.append(pool.close)
        wiring.health_sources.append(lambda: {"parse_pool": pool.stats()})
    hooks: AlertingService | None = None
    if with_alerting and config.alerting.enabled:
        hooks = build_alerting(config, engine, clock, wiring, storage=storage)
    scorer_ready = None
    if wait_for_scorer:
        scorer.start()  # waits for the model: a model that cannot load stops the daemon here
    else:

        async def scorer_ready() -> None:
            await asyncio.to_thread(scorer.start)

    wiring.closers.append(scorer.close)
    wiring.health_sources.append(
        lambda: {"scorer": {"pid": scorer.pid, "restarts": scorer.restarts, "in_process": scorer.degraded}}
    )
    pipeline = Pipeline(config, engine, clock, http, scorer=scorer, hooks=hooks, parse_feed=parse_feed, storage=storage)
    pipeline.load()
    if hooks is not None:
        wiring.background.append(lambda stop: refresh_risky_hits(hooks, engine, pipeline, stop))
        if config.reports.send:  # off by default; the config refuses send = true with alerting off
            wiring.background.append(lambda stop: send_monthly_reports(hooks, engine, clock, config, stop))
    keep = config.retention.keep
    if keep is not None:
        wiring.background.append(lambda stop: purge_daily(engine, clock, keep, stop))
    return Components(
        engine=engine,
        http=http,
        pipeline=pipeline,
        background=wiring.background,
        closers=wiring.closers,
        starters=wiring.starters,
        health_sources=wiring.health_sources,
        reloaders=wiring.reloaders,
        alerting=hooks,
        scorer_ready=scorer_ready,
    )


def build_alerting(
    config: Config, engine: Engine, clock: Clock, wiring: Wiring, *, storage: StorageStatus | None = None
) -> AlertingService:
    """The alerting service with its channels: the console always, Telegram when its token is set."""
    from veille.core.secrets import read_secret
    from veille.notify.base import Notifier
    from veille.notify.console import ConsoleNotifier
    from veille.runtime.alerting import AlertingService

    notifiers: dict[str, Notifier] = {"console": ConsoleNotifier()}
    telegram = None
    if read_secret(config.telegram.token_env):  # the bot library (a tenth of a `--once` start) only when needed
        from veille.runtime.telegram import build_telegram

        telegram = build_telegram(config, engine=engine, clock=clock)
    if telegram is not None:
        notifiers["telegram"] = telegram.notifier
        wiring.starters.append(telegram.start)
        wiring.closers.append(telegram.aclose)
        if telegram.bot is not None:
            wiring.background.append(telegram.bot.run)
        wiring.health_sources.append(lambda: telegram_health(telegram.notifier.status()))
    if any(contact.channel == "apprise" for contact in config.alerting.contacts):
        try:
            from veille.notify.apprise import AppriseNotifier

            notifiers["apprise"] = AppriseNotifier()
        except ImportError:
            raise ConfigError(
                config.path,
                [
                    ConfigProblem(
                        "contacts",
                        'a contact uses channel = "apprise" but Apprise is not installed',
                        'pip install "veille[apprise]"',
                    )
                ],
            ) from None
    service = AlertingService(config, engine, clock, notifiers, storage=storage)
    wiring.reloaders.append(service.use_clients)
    wiring.background.append(service.run)
    wiring.health_sources.append(lambda: alerting_health(service.health()))
    return service


async def close_all(components: Components) -> None:
    for closer in components.closers:
        result = closer()
        if asyncio.iscoroutine(result):
            await result
