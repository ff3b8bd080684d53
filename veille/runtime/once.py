"""`veille run --once`: poll every source once, store, deliver the alerts due, and leave the sources a running
daemon holds."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine

from veille.config import Config
from veille.core.polling import PollState
from veille.runtime.leases import SourceLeases
from veille.runtime.pipeline import Pipeline, PollResult
from veille.runtime.wiring import Components, build, close_all
from veille.sources.registry import streams

log = logging.getLogger("veille.runtime.once")
DELIVERY_SECONDS = 60.0  # at most this long sending alerts before a one-shot run exits (the rest waits)


async def run_once(
    config: Config, *, components: Components | None = None, deliver_within: float = DELIVERY_SECONDS
) -> list[PollResult]:
    """Poll every enabled source once (honouring Retry-After windows), store, send the alerts due (the
    run ends the group: no group_wait), and return the poll results."""
    comps = components or build(config, with_alerting=True, wait_for_scorer=False)
    pipeline = comps.pipeline
    # The model loads in its helper from the first poll that matched something, while the other feeds are
    # fetched: a run from cron that finds nothing new never starts it (a second and 120 MB saved on a quiet
    # night). A source never polled yet brings its whole backlog: then it loads from the start, alongside
    # the first fetches, instead of holding every poll's result while it loads. A model that cannot load
    # still stops the run before any matched item is stored (the writer waits for it, see `_polled`).
    keys = [k for k, r in pipeline.runtimes.items() if not streams(r.config.kind)]
    loading: asyncio.Future[None] | None = None
    loader: list[asyncio.Task[None]] = []
    if comps.scorer_ready is not None:
        loading = asyncio.get_running_loop().create_future()

        def start() -> None:
            loader.append(_start_loading(comps, loading))

        backlog = any(pipeline.runtimes[key].state == PollState() for key in keys)
        pipeline.hold_writes_until(loading, on_first_match=None if backlog else start)
        if backlog:
            start()
    await pipeline.start()
    try:
        keys = await asyncio.to_thread(skip_leased, comps.engine, pipeline, keys)
        results = await _polled(pipeline, keys, loading)
        if comps.alerting is not None:
            sent = await comps.alerting.deliver_due(within=deliver_within)
            if sent:
                log.info("%d alert messages sent before exiting", sent)
    finally:
        for task in loader:
            task.cancel()
        if loading is not None and not loading.done():
            loading.cancel()
        await pipeline.stop()
        if components is None:
            await close_all(comps)
    return [r for r in results if r is not None]


def _start_loading(comps: Components, loading: asyncio.Future[None]) -> asyncio.Task[None]:
    """Load the model in its helper; `loading` settles as the load does."""
    ready = comps.scorer_ready
    assert ready is not None

    async def load() -> None:
        try:
            await ready()
        except BaseException as exc:
            if not loading.done():
                if isinstance(exc, asyncio.CancelledError):
                    loading.cancel()
                else:
                    loading.set_exception(exc)
            raise
        if not loading.done():
            loading.set_result(None)

    return asyncio.ensure_future(load())


async def _polled(pipeline: Pipeline, keys: list[str], loading: asyncio.Future[None] | None) -> list[PollResult | None]:
    """Every source polled; with the model `loading`, the writer holds matched items until it is loaded (or
    its load error is raised here, the polls cancelled: no matched item stored, as when the daemon cannot
    start)."""
    if loading is None:
        return await asyncio.gather(*(pipeline.poll(key, force=True) for key in keys))
    polls = asyncio.gather(*(pipeline.poll(key, force=True) for key in keys))
    try:
        waiting: set[asyncio.Future[Any]] = {loading, polls}
        while not polls.done():  # a model never needed is never loaded: the polls alone end the wait
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if loading.done() and not loading.cancelled() and loading.exception() is not None:
                polls.cancel()
                await asyncio.gather(polls, return_exceptions=True)
                await loading  # raises ScorerLoadError
            if loading.done():
                waiting.discard(loading)
        return await polls
    except BaseException:
        polls.cancel()
        raise


def skip_leased(engine: Engine, pipeline: Pipeline, keys: list[str]) -> list[str]:
    """`--once` while a daemon runs: leave the daemon's sources alone (no second poll, no cursor clash).

    It takes no lease itself, so a `--once` killed midway blocks nothing."""
    leases = SourceLeases(engine, pipeline.clock, lease=pipeline.config.daemon.lease)
    held = leases.held_elsewhere([pipeline.runtimes[key].ref.id for key in keys])
    if held:
        log.warning(
            "%d sources skipped: a running daemon polls them (%s)", len(held), ", ".join(sorted(set(held.values())))
        )
    return [key for key in keys if pipeline.runtimes[key].ref.id not in held]
