"""`veille run --once`: poll every source once, store, deliver the alerts due, and leave the sources a running
daemon holds."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from veille.config import Config
from veille.runtime.leases import SourceLeases
from veille.runtime.pipeline import Pipeline, PollResult
from veille.runtime.wiring import Components, build, close_all
from veille.sources.registry import streams

if TYPE_CHECKING:
    pass

log = logging.getLogger("veille.runtime.once")
DELIVERY_SECONDS = 60.0  # at most this long sending alerts before a one-shot run exits (the rest waits)


async def run_once(
    config: Config, *, components: Components | None = None, deliver_within: float = DELIVERY_SECONDS
) -> list[PollResult]:
    """Poll every enabled source once (honouring Retry-After windows), store, send the alerts due (the
    run ends the group: no group_wait), and return the poll results."""
    comps = components or build(config, with_alerting=True, wait_for_scorer=False)
    pipeline = comps.pipeline
    # The model loads in its helper while the first feeds are fetched; a model that cannot load still
    # stops the run, before anything is stored (the writer waits for it, see `_polled`).
    loading = asyncio.ensure_future(comps.scorer_ready()) if comps.scorer_ready is not None else None
    await pipeline.start()
    try:
        keys = [k for k, r in pipeline.runtimes.items() if not streams(r.config.kind)]
        keys = await asyncio.to_thread(skip_leased, comps.engine, pipeline, keys)
        results = await _polled(pipeline, keys, loading)
        if comps.alerting is not None:
            sent = await comps.alerting.deliver_due(within=deliver_within)
            if sent:
                log.info("%d alert messages sent before exiting", sent)
    finally:
        if loading is not None and not loading.done():
            loading.cancel()
        await pipeline.stop()
        if components is None:
            await close_all(comps)
    return [r for r in results if r is not None]


async def _polled(pipeline: Pipeline, keys: list[str], loading: asyncio.Future[None] | None) -> list[PollResult | None]:
    """Every source polled; with the model still `loading`, the writer is held until it is loaded (or its
    load error is raised here, the polls cancelled: nothing stored, as when the daemon cannot start)."""
    if loading is None:
        return await asyncio.gather(*(pipeline.poll(key, force=True) for key in keys))
    pipeline.hold_writes_until(loading)
    polls = asyncio.gather(*(pipeline.poll(key, force=True) for key in keys))
    try:
        both: list[asyncio.Future[Any]] = [loading, polls]
        await asyncio.wait(both, return_when=asyncio.FIRST_EXCEPTION)
        if loading.done() and loading.exception() is not None:
            polls.cancel()
            await asyncio.gather(polls, return_exceptions=True)
            await loading  # raises ScorerLoadError
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
