"""The dashboard's pages (overview, client, incidents, sources) and the phone's actions on incidents.

Reads go through `veille.store` on read connections; actions go through `veille.runtime.actions`,
the same audited functions the Telegram buttons use, with `web:<user>` as the actor.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode, urlsplit

from markupsafe import Markup
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from veille.core.incidents import Incident, Status, Urgency, summary_line
from veille.reports.figures import Ranked, split_terms
from veille.reports.svg import TimelineChart, buckets, draw, timeline
from veille.runtime import actions
from veille.sources.registry import get_driver, known_kinds
from veille.store import alerts as alert_store
from veille.store import dashboard
from veille.store import inbox as inbox_store
from veille.store.engine import read_conn
from veille.store.hits import HitQuery, query_hits
from veille.store.sources import list_sources
from veille.web.context import Viewer, WebState, action, db, flash, lang_of, not_found, page, render, state_of
from veille.web.wording import translator

log = logging.getLogger("veille.web")

SNOOZE = timedelta(hours=1)  # "remind me in 1 h", as the phone's button
MUTE = timedelta(hours=24)  # "mute 24 h", as the phone's button
PERIODS = {"24h": (timedelta(hours=24), False), "7d": (timedelta(days=7), True), "30d": (timedelta(days=30), True)}
LABELS = ("neg", "neu", "pos")
TEXT_CHARS = 400
EVIDENCE = 20  # hits shown behind an incident that names none


# -- overview --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientLine:
    id: str
    name: str
    activity: dashboard.Activity
    open_incidents: int
    high_incidents: int
    failing_sources: int
    muted_until: datetime | None
    waiting_replies: int = 0

    @property
    def surge(self) -> bool:
        """Clearly above its usual level: twice the usual week, and not a handful of hits."""
        return self.activity.week >= max(10, 2 * self.activity.usual_week)

    @property
    def attention(self) -> tuple[int, int, int, int, int, float, int]:
        share = self.activity.negative_share or 0.0
        return (
            self.high_incidents,
            self.open_incidents,
            int(self.surge),
            self.failing_sources,
            self.waiting_replies,
            share,
            self.activity.week,
        )


class ActivityCache:
    """The overview's counts per client and past hour, read once and then only for the hours that
    closed since: a page load reads the current hour's hits and adds up at most 35 days x 24 numbers
    per client. A hit is stored with the time it was fetched, so a past hour gains no hit; a label
    changed by hand, a purge or a copy linked later shows after a restart of the dashboard."""

    KEEP = timedelta(days=35)  # the last 7 days and the 28 before (the usual level)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hours: dict[str, dict[datetime, tuple[int, int, int]]] = {}  # client -> hour -> hits, neg, scored
        self._read_until: dict[str, datetime] = {}  # client -> first hour not read yet
        self._sums: dict[tuple[str, datetime, datetime], dashboard.Activity] = {}  # for this hour only

    def _catch_up(self, conn: Connection, client_ids: list[str], hour: datetime) -> None:
        oldest = hour - self.KEEP
        behind: dict[datetime, list[str]] = {}
        for client in client_ids:
            since = max(self._read_until.get(client, oldest), oldest)
            if since < hour:
                behind.setdefault(since, []).append(client)
        for since, clients in behind.items():
            for client, at, total, negative, scored in dashboard.hourly_by_client(conn, clients, since, hour):
                self._hours.setdefault(client, {})[at] = (total, negative, scored)
            for client in clients:
                self._read_until[client] = hour
                kept = self._hours.setdefault(client, {})
                for stale in [at for at in kept if at < oldest]:
                    del kept[stale]

    def activity(self, conn: Connection, client_ids: list[str], now: datetime, day_start: datetime) -> dict[str, Any]:
        hour = now.replace(minute=0, second=0, microsecond=0)
        week_start = hour - timedelta(days=7)
        with self._lock:
            self._catch_up(conn, client_ids, hour)
            if any(key[2] != hour for key in self._sums):
                self._sums.clear()
            closed = {}
            for client in client_ids:
                key = (client, day_start, hour)
                if key not in self._sums:
                    self._sums[key] = self._summary(client, day_start, week_start)
                closed[client] = self._sums[key]
        current = dashboard.activity(conn, client_ids, day_start=day_start, week_start=week_start, since=hour)
        empty = dashboard.Activity()
        return {client: closed[client] + current.get(client, empty) for client in client_ids}

    def _summary(self, client: str, day_start: datetime, week_start: datetime) -> dashboard.Activity:
        today = week = negative = scored = before = 0
        for at, (total, neg, rated) in self._hours.get(client, {}).items():
            if at >= week_start:
                week, negative, scored = week + total, negative + neg, scored + rated
                today += total if at >= day_start else 0
            else:
                before += total
        return dashboard.Activity(today, week, negative, scored, before)


def local_day_start(now: datetime, tz: tzinfo) -> datetime:
    return now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)


def activity_cache(state: WebState) -> ActivityCache:
    cache = state.extra.setdefault("activity", ActivityCache())
    assert isinstance(cache, ActivityCache)
    return cache


def warm_overview(state: WebState) -> None:
    """Read every configured client's past hours now (a second or two over a million hits), so that
    the first person to open the overview does not wait for it. Runs in a thread at start."""
    try:
        now = state.clock.now()
        with read_conn(state.engine) as conn:
            clients = [c.id for c in state.config.clients]
            activity_cache(state).activity(conn, clients, now, local_day_start(now, state.config.tz))
    except Exception as exc:  # the overview reads them itself at its first load
        log.warning("could not prepare the overview's counts at start: %s", exc)


def _overview_data(
    conn: Connection, cache: ActivityCache, client_ids: list[str], now: datetime, day_start: datetime
) -> dict[str, Any]:
    return {
        "activity": cache.activity(conn, client_ids, now, day_start),
        "incidents": dashboard.open_incidents(conn, client_ids),
        "failing": dashboard.failing_counts(conn, client_ids),
        "mutes": alert_store.active_mutes(conn, now),
        "waiting": inbox_store.waiting_counts(conn, client_ids),
    }


@page
async def overview(request: Request, viewer: Viewer) -> Response:
    state = state_of(request)
    now = state.clock.now()
    day_start = local_day_start(now, state.config.tz)
    data = await db(request, _overview_data, activity_cache(state), viewer.client_ids, now, day_start)
    lines = []
    for c in viewer.clients:
        open_count, high_count = data["incidents"].get(c.id, (0, 0))
        activity = data["activity"].get(c.id, dashboard.Activity())
        failing, muted = data["failing"].get(c.id, 0), data["mutes"].get(c.id)
        waiting = data["waiting"].get(c.id, 0)
        lines.append(ClientLine(c.id, c.name, activity, open_count, high_count, failing, muted, waiting))
    lines.sort(key=lambda line: (tuple(-v for v in line.attention), line.name.lower()))
    return render(request, "overview.html", {"user": viewer.user, "lines": lines, "page_name": "overview"})


# -- a client ----------------------------------------------------------------------------------------------


def _client_data(conn: Connection, client_id: str, since: datetime, query: HitQuery) -> dict[str, Any]:
    terms: Counter[str] = Counter()
    negative_terms: Counter[str] = Counter()
    for stored, count, negative in dashboard.term_groups(conn, client_id, since):
        for term in set(split_terms(stored)):
            terms[term] += count
            negative_terms[term] += negative
    ordered = sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "hourly": dashboard.hourly_counts(conn, client_id, since),
        "labels": dashboard.label_counts(conn, client_id, since),
        "authors": dashboard.top_authors(conn, client_id, since, 10),
        "terms": [Ranked(name, count, negative_terms[name]) for name, count in ordered],
        "hits": query_hits(conn, query),
        "sources": dashboard.source_keys(conn, client_id),
    }


def safe_link(url: str | None) -> str | None:
    """Only http(s) links are shown as links (never javascript: or data:)."""
    if not url:
        return None
    return url if urlsplit(url).scheme.lower() in ("http", "https") else None


def _hit_line(row: dict[str, Any]) -> dict[str, Any]:
    text = row.get("text") or ""
    return {
        "id": row["id"],
        "fetched_at": row["fetched_at"],
        "published_at": row["published_at"],
        "kind": row["kind"],
        "source_key": row.get("source_key"),
        "author": row.get("author_name") or row.get("author") or "",
        "title": row.get("title") or "",
        "text": text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "…",
        "url": safe_link(row.get("url")),
        "label": row.get("sentiment_label"),
        "score": row.get("sentiment_score"),
    }


def _shares(counts: dict[str | None, int]) -> list[tuple[str, int, float]]:
    scored = sum(counts.get(label, 0) for label in LABELS)
    return [(label, counts.get(label, 0), counts.get(label, 0) / scored if scored else 0.0) for label in LABELS]


@page
async def client_page(request: Request, viewer: Viewer) -> Response:
    client = viewer.client(request.path_params["client_id"])
    if client is None:
        return not_found(request)
    state = state_of(request)
    params = request.query_params
    period = params.get("period") or "7d"
    if period not in PERIODS:
        period = "7d"
    span, daily = PERIODS[period]
    label = params.get("sentiment") if params.get("sentiment") in LABELS else None
    search = (params.get("q") or "").strip()[:200] or None
    source = params.get("source") or None
    try:
        page_number = max(1, min(int(params.get("page") or 1), 10_000))
    except ValueError:
        page_number = 1
    size = state.config.web.page_size
    now = state.clock.now()
    since = now - span
    query = HitQuery(
        client_id=client.id,
        source_key=source,
        since=since,
        search=search,
        label=label,
        limit=size + 1,
        offset=(page_number - 1) * size,
    )
    data = await db(request, _client_data, client.id, since, query)
    if source is not None and source not in data["sources"]:
        source = None
    hits = [_hit_line(row) for row in data["hits"][:size]]
    chart = timeline(buckets(data["hourly"], since, now, state.config.tz, daily=daily), daily=daily)
    _ = translator(lang_of(request))
    tooltips = tuple(
        f"{bar.label} : {bar.total} hits, " + _("{count} negative").format(count=bar.negative) for bar in chart.bars
    )
    chart_svg = Markup(draw(TimelineChart(_("Hits and negative hits"), chart, tooltips)))  # noqa: S704 - escaped by draw
    filters = {"period": period, "source": source or "", "sentiment": label or "", "q": search or ""}

    def link(**changes: Any) -> str:
        merged = {**filters, **changes}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None, 1)})

    return render(
        request,
        "client.html",
        {
            "user": viewer.user,
            "page_name": "client",
            "client": client,
            "filters": filters,
            "periods": list(PERIODS),
            "labels": LABELS,
            "chart": chart,
            "chart_svg": chart_svg,
            "shares": _shares(data["labels"]),
            "not_scored_yet": data["labels"].get(None, 0),
            "other_languages": data["labels"].get(dashboard.UNSCORED_LANGUAGE, 0),
            "authors": data["authors"],
            "terms": data["terms"],
            "hits": hits,
            "sources": data["sources"],
            "page": page_number,
            "previous_link": link(page=page_number - 1) if page_number > 1 else None,
            "next_link": link(page=page_number + 1) if len(data["hits"]) > size else None,
            "period_links": {p: link(period=p, page=1) for p in PERIODS},
        },
    )


# -- incidents ---------------------------------------------------------------------------------------------


@page
async def incidents_page(request: Request, viewer: Viewer) -> Response:
    show_all = request.query_params.get("all") == "1"
    found = await db(
        request, alert_store.list_incidents, client_ids=viewer.client_ids, active_only=not show_all, limit=200
    )
    names = {c.id: c.name for c in viewer.clients}
    return render(
        request,
        "incidents.html",
        {"user": viewer.user, "page_name": "incidents", "incidents": found, "names": names, "show_all": show_all},
    )


def _incident_data(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    incident = alert_store.get_incident(conn, incident_id)
    if incident is None:
        return None
    hit_ids = tuple(incident.top_hits)
    if hit_ids:
        rows = query_hits(
            conn, HitQuery(client_id=incident.client_id, ids=hit_ids, limit=len(hit_ids), include_duplicates=True)
        )
    else:  # a volume incident names no hit: its period's negative hits, else all of them (as `veille hits --incident`)
        period = HitQuery(
            client_id=incident.client_id,
            since=incident.opened_at - alert_store.INCIDENT_LEAD,
            until=incident.resolved_at,
            label="neg",
            limit=EVIDENCE,
        )
        rows = query_hits(conn, period) or query_hits(conn, replace(period, label=None))
    return {
        "incident": incident,
        "events": alert_store.events_for(conn, [incident_id]),
        "deliveries": alert_store.outbox_rows(conn, incident_ids=[incident_id]),
        "hits": rows,
    }


async def _visible_incident(request: Request, viewer: Viewer) -> Incident | None:
    incident: Incident | None = await db(request, alert_store.get_incident, request.path_params["incident_id"])
    if incident is None or viewer.client(incident.client_id) is None:
        return None
    return incident


@page
async def incident_page(request: Request, viewer: Viewer) -> Response:
    data = await db(request, _incident_data, request.path_params["incident_id"])
    if data is None or viewer.client(data["incident"].client_id) is None:
        return not_found(request)
    incident: Incident = data["incident"]
    order = {hit_id: index for index, hit_id in enumerate(incident.top_hits)}
    hits = sorted((_hit_line(row) for row in data["hits"]), key=lambda h: order.get(h["id"], 0))
    return render(
        request,
        "incident.html",
        {
            "user": viewer.user,
            "page_name": "incidents",
            "incident": incident,
            "client": viewer.client(incident.client_id),
            "active": incident.status is not Status.RESOLVED,
            "high": incident.urgency is Urgency.HIGH,
            "events": data["events"],
            "deliveries": data["deliveries"],
            "hits": hits,
            "summary": summary_line(incident.summary, lang_of(request)) if incident.summary else None,
        },
    )


def _back_to(incident_id: int) -> Response:
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


async def _acknowledge(request: Request, viewer: Viewer, duration: timedelta | None) -> Response:
    incident = await _visible_incident(request, viewer)
    if incident is None or incident.id is None:
        return not_found(request)
    state = state_of(request)
    _ = translator(lang_of(request))
    try:
        done = await run_in_threadpool(
            actions.ack,
            state.engine,
            state.clock,
            state.config.alerting,
            incident.id,
            contact=viewer.user.name,
            actor=f"web:{viewer.user.name}",
            duration=duration,
        )
    except actions.UnknownIncident:
        return not_found(request)
    if not done:
        flash(request, _("This incident is already resolved."))
    elif duration is None:
        flash(request, _("You have taken this incident."))
    else:
        flash(request, _("Reminder in 1 h."))
    return _back_to(incident.id)


@action
async def take_incident(request: Request, viewer: Viewer) -> Response:
    return await _acknowledge(request, viewer, None)


@action
async def snooze_incident(request: Request, viewer: Viewer) -> Response:
    return await _acknowledge(request, viewer, SNOOZE)


@action
async def mute_client(request: Request, viewer: Viewer) -> Response:
    incident = await _visible_incident(request, viewer)
    if incident is None or incident.id is None:
        return not_found(request)
    state = state_of(request)
    _ = translator(lang_of(request))
    until = await run_in_threadpool(
        actions.mute,
        state.engine,
        state.clock,
        incident.client_id,
        MUTE,
        actor=f"web:{viewer.user.name}",
        reason=f"incident {incident.id}",
    )
    flash(
        request,
        _("Notifications about {client} are muted until {until}.").format(
            client=incident.client_id, until=until.astimezone(state.config.tz).strftime("%d/%m %H:%M")
        ),
    )
    return _back_to(incident.id)


# -- sources -------------------------------------------------------------------------------------------------


@page
async def sources_page(request: Request, viewer: Viewer) -> Response:
    rows: list[dict[str, Any]] = [dict(row) for row in await db(request, list_sources, client_ids=viewer.client_ids)]
    lang = lang_of(request)
    kinds = set(known_kinds())
    for row in rows:
        if row["kind"] in kinds:  # a driver's own note (a budget left, a feed that moved), in the reader's language
            row["note"] = get_driver(row["kind"]).describe_state(row["cursor"], row["target"], lang) or row["note"]
        row["trouble"] = row["failing_since"] is not None or row["status"] not in ("ok", "new")
    rows.sort(key=lambda r: (not r["trouble"], r["client_id"], r["key"]))
    names = {c.id: c.name for c in viewer.clients}
    return render(
        request, "sources.html", {"user": viewer.user, "page_name": "sources", "sources": rows, "names": names}
    )
