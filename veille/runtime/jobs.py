"""The daemon's background jobs besides polling: re-fetching risky hits to see them spread, the daily purge,
the monthly reports sent on the first day of the month, the SQLite checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from veille.config import Config
from veille.core.clock import Clock
from veille.core.durations import format_duration
from veille.core.errors import StorageError
from veille.core.incidents import Kind, Urgency
from veille.notify.base import Attachment, Notification
from veille.runtime.pipeline import Pipeline

if TYPE_CHECKING:
    from veille.reports.figures import MonthlyReport
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


CHECKPOINT_EVERY = 1.0  # seconds: the WAL holds about this long of writes (SQLite's own threshold: 4 MB)


async def checkpoint_wal(engine: Engine, stop: asyncio.Event, *, every: float = CHECKPOINT_EVERY) -> None:
    """SQLite, engine made with `autocheckpoint=False`: copy the WAL into the database every `every` seconds,
    and once more at stop, outside any writer's commit (`store.engine.checkpoint` never takes the write lock)."""
    from veille.store.engine import checkpoint

    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        try:
            await asyncio.to_thread(checkpoint, engine)
        except StorageError as exc:  # the database is down or locked: the writer reports it (G8)
            log.debug("checkpoint skipped: %s", exc)
        except Exception:  # never let this loop die: a WAL left to grow fills the disk
            log.exception("checkpoint failed")
        if stop.is_set():
            return


REPORTS_EVERY = 10 * 60.0  # how often the daemon looks whether the month's reports are due


async def send_monthly_reports(
    service: AlertingService,
    engine: Engine,
    clock: Clock,
    config: Config,
    stop: asyncio.Event,
    *,
    every: float = REPORTS_EVERY,
) -> None:
    """`[reports] send`: on the first day of the month, each client's report of the month before goes to the
    chosen contacts through the outbox (retried, never lost), once per client, month and contact."""
    while not stop.is_set():
        try:
            count = await asyncio.to_thread(enqueue_due_reports, service, engine, config, clock.now())
            if count:
                log.info("monthly reports: %d put in the outbox", count)
        except StorageError as exc:  # the database is down: the next round tries again
            log.warning("monthly reports skipped: %s", exc)
        except Exception:  # never let this loop die
            log.exception("monthly reports failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def enqueue_due_reports(service: AlertingService, engine: Engine, config: Config, now: datetime) -> int:
    """Put the reports due at `now` and not sent yet in the outbox; returns how many.

    Each report is read and rendered outside any write transaction (a big month must not hold the SQLite
    writer), then recorded and enqueued in one short transaction whose key (client, month, contact) makes
    it once: an earlier run, a restart or another daemon that got there first leaves nothing to do.
    """
    from veille.notify.render import to_payload
    from veille.reports import monthly_report
    from veille.reports.period import report_due
    from veille.store import reports as report_store
    from veille.store.alerts import enqueue
    from veille.store.engine import read_conn, write_tx

    month = report_due(now, config.tz, config.reports.at)
    if month is None:
        return 0
    contacts = [c for c in service.settings.contacts if c.id in config.reports.contacts]
    with read_conn(engine) as conn:
        done = report_store.reports_sent(conn, str(month))
    count = 0
    for client in config.clients:
        waiting = [c for c in contacts if c.covers(client.id) and (client.id, c.id) not in done]
        if not waiting:
            continue
        with read_conn(engine) as conn:
            report = monthly_report(
                conn,
                client_id=client.id,
                client_name=client.name,
                month=month,
                timezone=config.timezone,
                now=now,
                failing_after=config.alerting.source_failing_after,
            )
        for contact in waiting:
            notification = report_notification(report, contact.id, contact.lang, config.reports.format, now)
            with write_tx(engine) as conn:
                if not report_store.claim_report_send(
                    conn, client_id=client.id, month=str(month), contact=contact.id, now=now
                ):
                    continue
                channel, address = service.route(conn, contact)
                outbox_id = enqueue(
                    conn,
                    incident_id=None,
                    client_id=client.id,
                    contact=contact.id,
                    channel=channel,
                    address=address,
                    kind=Kind.REPORT.value,
                    urgency=Urgency.LOW.value,
                    silent=True,
                    payload=to_payload(notification),
                    now=now,
                )
                report_store.set_report_outbox(
                    conn, client_id=client.id, month=str(month), contact=contact.id, outbox_id=outbox_id
                )
            count += 1
    return count


def report_notification(
    report: MonthlyReport, contact: str, lang: str, file_format: str, now: datetime
) -> Notification:
    """The report as a message in the contact's language: its title and summary lines, the whole report as
    the attached file (self-contained HTML with its charts, or Markdown)."""
    from zoneinfo import ZoneInfo

    from veille.reports import EXTENSIONS, render
    from veille.reports.layout import document

    doc = document(report, lang, ZoneInfo(report.timezone))
    return Notification(
        outbox_id=0,
        incident_id=None,
        tag=f"#REPORT-{report.client_id}-{report.month}",
        kind=Kind.REPORT.value,
        client_id=report.client_id,
        client_name=report.client_name,
        contact=contact,
        urgency=Urgency.LOW,
        silent=True,
        title=doc.title,
        reasons=doc.sections[0].lines if doc.sections else (),
        lang=lang,
        created_at=now,
        extra={"wakes": "false", "month": str(report.month)},
        attachment=Attachment(
            f"{report.client_id}-{report.month}.{EXTENSIONS[file_format]}",
            render([report], file_format, lang),
            "text/html" if file_format == "html" else "text/markdown",
        ),
    )
