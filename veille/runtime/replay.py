"""Backtesting: run the real scoring, detection and escalation over a recorded timeline.

A community manager replays last month's hits to tune thresholds before trusting them at night.
Nothing is sent: the real `AlertingService` runs on a throw-away SQLite database and a simulated
clock, and every notification it would have sent (and every one it would have held for the
digest) is read back from its outbox and audit trail.

One hit per line (JSON): `{"ts": "2026-11-20T02:13:00+01:00", "client": "resto", "source": "mastodon",
"author": "...", "author_followers": 1200, "text": "...", "url": "...", "likes": 3, "reposts": 1,
"replies": 0}`; optional `"direct": true`, `"title"` (an article's) and `"published"` (when the post was
published, if earlier than `ts`, the time it reached veille). Later lines with the same `url` update its
engagement.
The reply inbox runs too when a line says where it sits: `"kind"` (`post`, `comment`, `message`, `review`),
`"thread"` (the conversation or parent id; default: the line's url) and `"from_client": true` (written by the
client's own account: it answers the thread); its reminders and overdue incidents come out with the rest.
`source` is a source kind (`rss`, `mastodon`...): a hit gets that kind's reach prior, as in the daemon.
`export_timeline` writes a client's stored history in this format (`veille export --format replay`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, insert

from veille.config import Config
from veille.core.clock import FakeClock, utc
from veille.core.i18n import N_
from veille.core.incidents import Kind, Summary, summary_line
from veille.core.models import Channel, Engagement, SentimentResult, StoredHit
from veille.notify.render import incident_title
from veille.runtime.alerting import AlertingService
from veille.runtime.inbox import record_hits as record_inbox
from veille.scoring.base import Scorer
from veille.scoring.excerpt import sentiment_excerpt
from veille.scoring.own_terms import OwnTerms
from veille.sources.registry import reach_prior
from veille.store import alerts as store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.export import Observation, client_history
from veille.store.schema import clients

MAX_STEP = timedelta(minutes=10)  # `tick` reports exact due times; resolutions land within this step
DEFAULT_TAIL = timedelta(hours=12)


class ReplayError(ValueError):
    """A timeline line is malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class Line:
    ts: datetime
    client: str
    url: str | None
    text: str | None
    source: str = "replay"
    author: str | None = None
    author_followers: int | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    direct: bool = False
    kind: Channel | None = None  # where it sits, for the reply inbox
    thread: str | None = None
    from_client: bool = False
    title: str = ""
    published: datetime | None = None  # None: at `ts`


@dataclass(frozen=True, slots=True)
class Simulated:
    """One notification the pipeline would have produced."""

    at: datetime
    client: str | None
    contact: str
    kind: str
    urgency: str
    wakes: bool
    mode: str  # wake | silent | held
    incident: int | None
    title: str
    cause: str | None = None  # buzz | volume | source | silence | reply_due | reply (None for digests)
    summary: str | None = None  # what the incident's posts are about, as the alert says it (buzz and volume)

    def as_json(self, tz: Any) -> dict[str, Any]:
        return {
            "at": self.at.astimezone(tz).isoformat(),
            "client": self.client,
            "contact": self.contact,
            "kind": self.kind,
            "urgency": self.urgency,
            "wakes": self.wakes,
            "mode": self.mode,
            "incident": self.incident,
            "cause": self.cause,
            "title": self.title,
            "summary": self.summary,
        }


def _int(raw: dict[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReplayError(N_("{where}: {key!r} must be a non-negative integer").format(where=where, key=key))
    return value


def _time(raw: dict[str, Any], key: str, where: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ReplayError(
            N_("{where}: {key!r} must be an ISO 8601 time with offset, e.g. +01:00").format(where=where, key=key)
        )
    return utc(moment)


def parse_lines(lines: Iterable[str], *, name: str = "timeline") -> list[Line]:
    out: list[Line] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{name}:{number}"
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReplayError(N_("{where}: not JSON ({msg})").format(where=where, msg=exc.msg)) from None
        if not isinstance(raw, dict):
            raise ReplayError(N_("{where}: each line must be a JSON object").format(where=where))
        try:
            ts = datetime.fromisoformat(str(raw["ts"]))
        except (KeyError, ValueError):
            raise ReplayError(N_("{where}: 'ts' must be an ISO 8601 time with offset").format(where=where)) from None
        if ts.tzinfo is None:
            raise ReplayError(N_("{where}: 'ts' needs a UTC offset, e.g. +01:00").format(where=where))
        client = raw.get("client")
        if not isinstance(client, str) or not client:
            raise ReplayError(N_("{where}: 'client' is required").format(where=where))
        url = raw.get("url")
        body = raw.get("text")
        if url is None and body is None:
            raise ReplayError(
                N_("{where}: a line needs 'text' (a new post) or 'url' (an engagement update)").format(where=where)
            )
        kind = raw.get("kind")
        if kind is not None and kind not in Channel._value2member_map_:
            raise ReplayError(
                N_("{where}: 'kind' must be one of {kinds}").format(
                    where=where, kinds=", ".join(c.value for c in Channel)
                )
            )
        out.append(
            Line(
                ts=utc(ts),
                client=client,
                url=str(url) if url else None,
                text=str(body) if body is not None else None,
                source=str(raw.get("source", "replay")),
                author=raw.get("author"),
                author_followers=_int(raw, "author_followers", where),
                likes=_int(raw, "likes", where),
                reposts=_int(raw, "reposts", where),
                replies=_int(raw, "replies", where),
                direct=bool(raw.get("direct", False)) or kind is not None,
                kind=Channel(kind) if kind is not None else None,
                thread=str(raw["thread"]) if raw.get("thread") is not None else None,
                from_client=raw.get("from_client") is True,
                title=str(raw.get("title") or ""),
                published=_time(raw, "published", where),
            )
        )
    out.sort(key=lambda line: line.ts)  # stable: same-time lines keep file order
    return out


def read_timeline(path: str | Path) -> list[Line]:
    file = Path(path)
    with file.open(encoding="utf-8") as handle:
        return parse_lines(handle, name=file.name)


def replay(
    config: Config,
    lines: Sequence[Line],
    scorer: Scorer,
    *,
    tail: timedelta = DEFAULT_TAIL,
    workdir: str | Path | None = None,
    on_line: Callable[[int], None] | None = None,
) -> list[Simulated]:
    """Run the timeline through scoring, detection and escalation; return what would have been sent.
    `on_line(1)` runs after each line (the CLI's progress bar)."""
    if not lines:
        return []
    # Only the timeline's clients are watched: the others would all look silent.
    seen = {line.client for line in lines}
    config = replace(config, clients=tuple(c for c in config.clients if c.id in seen))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'replay.db'}")
        event.listen(engine, "connect", _throwaway)
        try:
            import veille.store.schema_alerts
            import veille.store.schema_inbox  # noqa: F401  (and the inbox's)
            from veille.store.schema import metadata

            metadata.create_all(engine)
            return _run(config, engine, lines, scorer, tail, on_line or (lambda _steps: None))
        finally:
            engine.dispose()


def _throwaway(dbapi_connection: Any, _record: Any) -> None:
    """The replay database is deleted afterwards: no fsync per tick."""
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def _run(
    config: Config,
    engine: Engine,
    lines: Sequence[Line],
    scorer: Scorer,
    tail: timedelta,
    on_line: Callable[[int], None],
) -> list[Simulated]:
    clock = FakeClock(lines[0].ts - timedelta(seconds=1))
    service = AlertingService(config, engine, clock, {})
    with write_tx(engine) as conn:  # the inbox's rows belong to a client
        for client in config.clients:
            conn.execute(insert(clients).values(id=client.id, name=client.name, updated_at=clock.now()))
    verdicts = _score(config, lines, scorer)
    known: dict[str, StoredHit] = {}
    next_id = 0
    service.tick()
    for index, line in enumerate(lines):
        on_line(1)
        _advance(service, clock, line.ts)
        engagement = Engagement(likes=line.likes, reposts=line.reposts, replies=line.replies)
        previous = known.get(line.url) if line.url else None
        if previous is not None:
            hit = replace(previous, engagement=engagement, fetched_at=clock.now())
        elif line.text is None:
            continue  # an update for a post the timeline never showed
        else:
            next_id += 1
            hit = StoredHit(
                id=next_id,
                client_id=line.client,
                source_key=f"{line.client}/{line.source}",
                kind=line.source,
                external_id=line.url or f"line-{index}",
                text=line.text,
                title=line.title,
                url=line.url,
                author=line.author,
                author_followers=line.author_followers,
                direct=line.direct,
                published_at=min(line.published, line.ts) if line.published else line.ts,
                fetched_at=line.ts,
                sentiment=verdicts[index],
                engagement=engagement,
                reach_prior=reach_prior(line.source),
                channel=line.kind,
                conversation=(line.thread or line.url or f"line-{index}") if line.kind else None,
                from_client=line.from_client,
            )
        if line.url:
            known[line.url] = hit
        with write_tx(engine) as conn:
            if previous is None:
                record_inbox(conn, [hit])
            service.on_new_hits(conn, [hit])
    _advance(service, clock, lines[-1].ts + tail)
    return _collect(engine, config)


def _score(config: Config, lines: Sequence[Line], scorer: Scorer) -> list[SentimentResult | None]:
    """As the pipeline scores: without the client's own name and keywords."""
    own = {c.id: OwnTerms(c.name, c.keywords) for c in config.clients}
    blank = OwnTerms("", ())
    indexes = [i for i, line in enumerate(lines) if line.text is not None]
    texts = [
        own.get(lines[i].client, blank).without(sentiment_excerpt(lines[i].title, lines[i].text or "")) for i in indexes
    ]
    results = scorer.score_batch(texts) if indexes else []
    verdicts: list[SentimentResult | None] = [None] * len(lines)
    for i, result in zip(indexes, results, strict=True):
        verdicts[i] = result
    return verdicts


def _advance(service: AlertingService, clock: FakeClock, target: datetime) -> None:
    """Tick at every moment something is due (and at least every MAX_STEP) until `target`."""
    while True:
        due = service.tick()
        now = clock.now()
        if now >= target:
            return
        step_to = min(target, now + MAX_STEP, due if due is not None and due > now else target)
        clock.advance((step_to - now).total_seconds())


def _collect(engine: Engine, config: Config) -> list[Simulated]:
    with read_conn(engine) as conn:
        incidents = {i.id: i for i in store.list_incidents(conn, limit=100_000)}
        causes = {i.id: i.cause.value for i in incidents.values()}
        sent = [
            Simulated(
                at=r.created_at,
                client=r.client_id,
                contact=r.contact,
                kind=r.kind,
                urgency=r.urgency,
                wakes=not r.silent,
                mode="silent" if r.silent else "wake",
                incident=r.incident_id,
                title=str(r.payload.get("title", "")),
                cause=causes.get(r.incident_id),
                summary=_summary_text(Summary.from_dict(r.payload.get("summary")), str(r.payload.get("lang", "fr"))),
            )
            for r in store.outbox_rows(conn)
        ]
        held = []
        for event in store.events_of_kind(conn, "held"):
            detail = event.detail or {}
            incident = incidents.get(event.incident_id)
            kind = str(detail.get("kind", ""))
            title = ""
            if incident is not None:
                client = config.client(incident.client_id)
                title = incident_title(
                    incident.cause,
                    Kind(kind) if kind in Kind._value2member_map_ else Kind.OPENED,
                    client.name if client else incident.client_id,
                    incident.subject,
                    config.lang,
                )
            held.append(
                Simulated(
                    at=event.at,
                    client=event.client_id,
                    contact=event.contact or "",
                    kind=kind,
                    urgency=str(detail.get("urgency", "low")),
                    wakes=False,
                    mode="held",
                    incident=event.incident_id,
                    title=title,
                    cause=causes.get(event.incident_id),
                    summary=_summary_text(incident.summary if incident else None, config.lang),
                )
            )
    return sorted(sent + held, key=lambda s: (s.at, s.incident or 0, s.contact))


def _summary_text(summary: Summary | None, lang: str) -> str | None:
    return summary_line(summary, lang) if summary is not None else None


def export_timeline(
    conn: Connection, client_id: str, since: datetime, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """A client's stored history as timeline lines, oldest first: each post at the time veille first had it,
    with the engagement it had then, and a line per later engagement observation, so that a replay sees the
    posts arrive and spread as the daemon did."""
    pending: list[dict[str, Any]] = []  # engagement lines not yet due
    for hit, observations in client_history(conn, client_id, since, until):
        pending.sort(key=lambda line: line["ts"])
        while pending and pending[0]["ts"] <= hit.fetched_at:
            yield _dated(pending.pop(0))
        url = hit.url or f"veille:hit/{hit.id}"  # a replay follows a post's engagement by its url
        first = observations[0] if observations and observations[0].observed_at <= hit.fetched_at else None
        line: dict[str, Any] = {"ts": hit.fetched_at, "client": client_id, "source": hit.kind, "url": url}
        line.update({"author": hit.author, "author_followers": hit.author_followers, "text": hit.text})
        if hit.title:
            line["title"] = hit.title
        if hit.published_at < hit.fetched_at:
            line["published"] = hit.published_at.isoformat()
        if hit.direct:
            line["direct"] = True
        yield _dated({**line, **_counts(first)})
        base = {"client": client_id, "source": hit.kind, "url": url}
        pending += [{"ts": o.observed_at, **base, **_counts(o)} for o in observations if o is not first]
    pending.sort(key=lambda line: line["ts"])
    yield from (_dated(line) for line in pending)


def _counts(observation: Observation | None) -> dict[str, int]:
    if observation is None:
        return {}
    values = {"likes": observation.likes, "reposts": observation.reposts, "replies": observation.replies}
    return {key: value for key, value in values.items() if value is not None}


def _dated(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "ts": line["ts"].isoformat()}
