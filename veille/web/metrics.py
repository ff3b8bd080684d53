"""`/healthz` and `/metrics` for operators: no login (like every exporter), loopback by default.

Figures come from two places, read at each scrape: the database (hits stored, sources by state,
outbox by channel and state, oldest pending message, open incidents, leases held), which any
`veille web` sees, and the daemon's health file (polls per source kind since it started, database
outage state, heartbeat), which the daemon rewrites every few seconds. The text format is written
by prometheus_client itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from veille.core.clock import Clock
from veille.core.incidents import Status
from veille.store.engine import read_conn
from veille.store.schema import outbox, sources
from veille.store.schema_alerts import incidents


def database_figures(conn: Connection, now: datetime) -> dict[str, Any]:
    """Everything /metrics reads from the database, in a handful of grouped queries."""
    by_kind = conn.execute(
        select(
            sources.c.kind,
            sources.c.status,
            func.count(),
            func.coalesce(func.sum(sources.c.hits_count), 0),
        )
        .where(sources.c.in_config.is_(True))
        .group_by(sources.c.kind, sources.c.status)
    ).all()
    messages = conn.execute(
        select(outbox.c.channel, outbox.c.state, func.count()).group_by(outbox.c.channel, outbox.c.state)
    ).all()
    oldest = conn.execute(
        select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(("pending", "sending")))
    ).scalar()
    open_incidents = conn.execute(
        select(incidents.c.urgency, func.count())
        .where(incidents.c.status != Status.RESOLVED.value)
        .group_by(incidents.c.urgency)
    ).all()
    leases = conn.execute(
        select(sources.c.lease_owner, sources.c.kind, func.count())
        .where(sources.c.lease_owner.is_not(None), sources.c.lease_until > now, sources.c.in_config.is_(True))
        .group_by(sources.c.lease_owner, sources.c.kind)
    ).all()
    return {
        "sources": [(kind, status, int(count), int(stored)) for kind, status, count, stored in by_kind],
        "messages": [(channel, state, int(count)) for channel, state, count in messages],
        "oldest_pending": (now - oldest).total_seconds() if oldest is not None else 0.0,
        "incidents": {urgency: int(count) for urgency, count in open_incidents},
        "leases": {(owner, kind): int(count) for owner, kind, count in leases},
    }


def health_file_figures(path: Path) -> Callable[[], dict[str, Any] | None]:
    """The daemon's last health report (None when no daemon writes one)."""

    def read() -> dict[str, Any] | None:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None  # a file that is JSON but no report: no figures

    return read


class VeilleCollector(Collector):
    """Reads the figures afresh at each scrape; a database that does not answer gives database_up 0."""

    def __init__(self, engine: Engine, clock: Clock, figures: Callable[[], dict[str, Any] | None]) -> None:
        self.engine = engine
        self.clock = clock
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = self.clock.now()
        try:
            with read_conn(self.engine) as conn:
                stored: dict[str, Any] | None = database_figures(conn, now)
        except Exception:  # the scrape itself must answer, saying the database is down
            stored = None
        up = GaugeMetricFamily("veille_database_up", "1 when this service's last database query worked")
        up.add_metric([], 1.0 if stored is not None else 0.0)
        yield up
        if stored is not None:
            yield from self._database(stored)
        daemon = self.figures()
        if daemon is not None:
            yield from self._daemon(daemon, now)

    def _database(self, stored: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
        configured = GaugeMetricFamily("veille_sources", "Sources by kind and state", labels=["kind", "state"])
        hits = GaugeMetricFamily("veille_hits_stored", "Hits stored, by source kind", labels=["kind"])
        stored_by_kind: dict[str, int] = {}
        for kind, status, count, hit_count in stored["sources"]:
            configured.add_metric([kind, status], count)
            stored_by_kind[kind] = stored_by_kind.get(kind, 0) + hit_count
        for kind, hit_count in sorted(stored_by_kind.items()):
            hits.add_metric([kind], hit_count)
        yield configured
        yield hits
        alerts = GaugeMetricFamily(
            "veille_alerts",
            "Outbox messages by channel and state (sent; dead = failed for good; pending/sending = waiting)",
            labels=["channel", "state"],
        )
        depth = 0
        for channel, state, count in stored["messages"]:
            alerts.add_metric([channel, state], count)
            depth += count if state in ("pending", "sending") else 0
        yield alerts
        yield GaugeMetricFamily("veille_outbox_depth", "Messages waiting to be delivered", value=depth)
        yield GaugeMetricFamily(
            "veille_outbox_oldest_pending_seconds",
            "Age of the oldest message waiting to be delivered (0 when none waits)",
            value=stored["oldest_pending"],
        )
        open_incidents = GaugeMetricFamily("veille_incidents_open", "Unresolved incidents", labels=["urgency"])
        for urgency in ("low", "high"):
            open_incidents.add_metric([urgency], stored["incidents"].get(urgency, 0))
        yield open_incidents
        leases = GaugeMetricFamily(
            "veille_leases_held",
            "Sources whose lease a live daemon holds (it alone polls them), per daemon id and source kind",
            labels=["daemon", "kind"],
        )
        for (owner, kind), count in sorted(stored["leases"].items()):
            leases.add_metric([owner, kind], count)
        yield leases

    def _daemon(self, daemon: dict[str, Any], now: datetime) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        extra = daemon.get("extra") or {}
        polls = CounterMetricFamily(
            "veille_polls", "Polls by source kind and outcome since the daemon started", labels=["kind", "outcome"]
        )
        for kind, outcomes in sorted((extra.get("polls") or {}).items()):
            for outcome, count in sorted(outcomes.items()):
                polls.add_metric([kind, outcome], count)
        yield polls
        yield GaugeMetricFamily(
            "veille_daemon_storage_ok",
            "0 while the daemon cannot write to the database (outage), else 1",
            value=1.0 if daemon.get("storage_ok", True) else 0.0,
        )
        yield GaugeMetricFamily(
            "veille_daemon_failing_sources", "Sources whose last poll failed", value=daemon.get("failing_sources", 0)
        )
        try:
            age = (now - datetime.fromisoformat(daemon["updated_at"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            return
        yield GaugeMetricFamily("veille_daemon_heartbeat_age_seconds", "Seconds since the daemon reported", value=age)


def registry_for(engine: Engine, clock: Clock, figures: Callable[[], dict[str, Any] | None]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VeilleCollector(engine, clock, figures))
    return registry


async def metrics(request: Request) -> Response:
    state = request.app.state.web
    registry = state.extra.get("registry")
    if registry is None:
        registry = state.extra["registry"] = registry_for(state.engine, state.clock, state.figures)
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    """200 when the database answers (and the daemon, if one reports, can write); 503 otherwise."""
    state = request.app.state.web

    def probe() -> bool:
        try:
            with read_conn(state.engine) as conn:
                conn.execute(select(1))
            return True
        except Exception:
            return False

    database = await run_in_threadpool(probe)
    daemon = state.figures()
    daemon_ok = daemon is None or bool(daemon.get("storage_ok", True))
    ok = database and daemon_ok
    body = {"status": "ok" if ok else "fail", "database": database, "daemon_storage": daemon_ok}
    return JSONResponse(body, status_code=200 if ok else 503)
