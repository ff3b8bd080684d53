"""The daemon's background jobs besides polling: re-fetching risky hits to see them spread, the daily purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from veille.core.clock import Clock
from veille.core.durations import format_duration
from veille.core.errors import StorageError
from veille.runtime.pipeline import Pipeline

if TYPE_CHECKING:
    from veille.runtime.alerting import AlertingService

log = logging.getLogger("veille.runtime.jobs")


REFRESH_EVERY = 10 * 60.0  # risky hits are re-fetched this often during their first hours


async def refresh_risky_hits(service: AlertingService, engine: Engine, pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Re-fetch risky hits through their sources so the alerting work sees how fast they spread."""
    from veille.store.engine import read_conn
    from veille.store.hits import hits_for_refresh

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REFRESH_EVERY)
        if stop.is_set():
            return
        try:

            def due() -> dict[str, list[str]]:
                with read_conn(engine) as conn:
                    return hits_for_refresh(conn, service.hits_to_refresh(conn))

            grouped = await asyncio.to_thread(due)
            if grouped:
                count = await pipeline.refresh_hits(grouped)
                log.info("re-fetched %d risky hits to measure their spread", count)
        except StorageError as exc:  # the database is down: already reported by the writer (G8)
            log.warning("refresh of risky hits skipped: %s", exc)
        except Exception:  # never let this loop die: the next round tries again
            log.exception("refresh of risky hits failed")


PURGE_FIRST_AFTER = 10 * 60.0  # seconds after start: not during the start-up burst of polls


PURGE_EVERY = 24 * 3600.0


async def purge_daily(
    engine: Engine,
    clock: Clock,
    keep: timedelta,
    stop: asyncio.Event,
    *,
    first_after: float = PURGE_FIRST_AFTER,
    every: float = PURGE_EVERY,
) -> None:
    """`[retention] keep`: delete older hits once a day, in batches (each its own short transaction)."""
    from veille.store.retention import purge_hits

    delay = first_after
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        delay = every
        try:
            report = await asyncio.to_thread(purge_hits, engine, clock.now() - keep, cancelled=stop.is_set)
            log.info(
                "retention: %d hits older than %s deleted in %d transactions",
                report.hits,
                format_duration(keep),
                report.batches,
            )
        except Exception:  # a locked or unreachable database: tomorrow's run tries again
            log.exception("retention purge failed")
