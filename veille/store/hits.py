"""Storing hits exactly once, and querying them.

A hit is unique on (source, external id): inserts use ON CONFLICT DO NOTHING, so a re-seen post or
a concurrent insert never raises. The same post reached through two sources of one client (same
canonical URL, or same normalised text) is stored with `duplicate_of` pointing at the first copy,
so it is linked, not double-counted. Re-seen posts add an engagement observation when their counts
moved, and an entry whose content churns is updated (and re-scored) at most CONTENT_CHANGE_LIMIT times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from veille.matching import MatchResult
from veille.models import Engagement, Item, SentimentLabel, SentimentResult, StoredHit
from veille.store.schema import engagement, hits, sources
from veille.store.urls import canonical_url, content_hash, text_fingerprint

CONTENT_CHANGE_LIMIT = 24  # like reader's HASH_CHANGED_LIMIT: churning feeds are not re-scored forever
MAX_FIELD = 64 * 1024


@dataclass(frozen=True, slots=True)
class MatchedItem:
    item: Item
    match: MatchResult
    sentiment: SentimentResult | None = None


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    key: str
    client_id: str
    kind: str


def _insert(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def known_external_ids(conn: Connection, source_id: int, external_ids: Sequence[str]) -> dict[str, str]:
    """external_id -> content_hash for the ids already stored for this source."""
    found: dict[str, str] = {}
    for start in range(0, len(external_ids), 500):
        chunk = list(external_ids[start : start + 500])
        rows = conn.execute(
            select(hits.c.external_id, hits.c.content_hash).where(
                hits.c.source_id == source_id, hits.c.external_id.in_(chunk)
            )
        )
        found.update({row.external_id: row.content_hash for row in rows})
    return found


def _row(source: SourceRef, matched: MatchedItem, now: datetime) -> dict[str, Any]:
    item = matched.item
    text = item.text[:MAX_FIELD]
    title = item.title[:MAX_FIELD]
    sentiment = matched.sentiment
    return {
        "source_id": source.id,
        "client_id": source.client_id,
        "external_id": item.external_id[:512],
        "canonical_url": canonical_url(item.url),
        "text_hash": text_fingerprint(f"{title} {text}", f"{source.kind}:{item.external_id}"),
        "content_hash": content_hash(title, text),
        "content_changes": 0,
        "kind": source.kind,
        "url": item.url,
        "title": title,
        "text": text,
        "author": (item.author or None) and item.author[:300],
        "author_name": (item.author_name or None) and item.author_name[:300],
        "author_followers": item.author_followers,
        "lang": item.lang,
        "direct": item.direct or matched.match.direct,
        "matched_terms": ", ".join(matched.match.terms) or None,
        "published_at": item.published_at or now,
        "fetched_at": now,
        "sentiment_label": sentiment.label.value if sentiment else None,
        "sentiment_score": sentiment.score if sentiment else None,
        "sentiment_lang": sentiment.lang if sentiment else None,
        "sentiment_reasons": list(sentiment.reasons) if sentiment else None,
        "scored_at": now if sentiment else None,
        "extra": item.extra or None,
        "duplicate_of": None,
    }


def _find_originals(conn: Connection, client_id: str, rows: list[dict[str, Any]]) -> None:
    """Point each row at an earlier copy of the same post from another source of the client."""
    urls = {r["canonical_url"] for r in rows if r["canonical_url"]}
    texts = {r["text_hash"] for r in rows}
    if not urls and not texts:
        return
    by_url: dict[str, int] = {}
    by_text: dict[str, int] = {}
    condition = hits.c.text_hash.in_(texts)
    if urls:
        condition = or_(condition, hits.c.canonical_url.in_(urls))
    query = select(hits.c.id, hits.c.canonical_url, hits.c.text_hash, hits.c.source_id).where(
        hits.c.client_id == client_id, hits.c.duplicate_of.is_(None), condition
    ).order_by(hits.c.id)
    for row in conn.execute(query):
        if row.canonical_url:
            by_url.setdefault(row.canonical_url, row.id)
        by_text.setdefault(row.text_hash, row.id)
    for r in rows:
        r["duplicate_of"] = by_url.get(r["canonical_url"] or "") or by_text.get(r["text_hash"])


def store_items(
    conn: Connection, source: SourceRef, matched: Sequence[MatchedItem], now: datetime
) -> list[StoredHit]:
    """Insert new hits, update churned ones, append engagement; return the hits that are new."""
    if not matched:
        return []
    rows = [_row(source, m, now) for m in matched]
    known = known_external_ids(conn, source.id, [r["external_id"] for r in rows])
    fresh = [r for r in rows if r["external_id"] not in known]
    seen_in_batch: set[str] = set()
    unique_fresh = []
    for r in fresh:
        if r["external_id"] not in seen_in_batch:
            seen_in_batch.add(r["external_id"])
            unique_fresh.append(r)
    _find_originals(conn, source.client_id, unique_fresh)
    inserted: dict[str, int] = {}
    if unique_fresh:
        statement = _insert(conn, hits).on_conflict_do_nothing(
            index_elements=[hits.c.source_id, hits.c.external_id]
        ).returning(hits.c.id, hits.c.external_id)
        for row in conn.execute(statement, unique_fresh):
            inserted[row.external_id] = row.id
        if inserted:
            conn.execute(
                update(sources).where(sources.c.id == source.id)
                .values(hits_count=sources.c.hits_count + len(inserted))
            )
    _update_churned(conn, source, rows, known)
    by_id = {m.item.external_id[:512]: m for m in matched}
    _record_engagement(conn, source, by_id, inserted, now)
    result = []
    for r in unique_fresh:
        hit_id = inserted.get(r["external_id"])
        if hit_id is None:
            continue
        m = by_id[r["external_id"]]
        result.append(StoredHit(
            id=hit_id, client_id=source.client_id, source_key=source.key, kind=source.kind,
            external_id=r["external_id"], text=r["text"], title=r["title"], url=r["url"], author=r["author"],
            author_followers=r["author_followers"], direct=r["direct"], published_at=r["published_at"],
            fetched_at=now, sentiment=m.sentiment, engagement=m.item.engagement, duplicate_of=r["duplicate_of"],
        ))
    return result


def _update_churned(conn: Connection, source: SourceRef, rows: list[dict[str, Any]], known: dict[str, str]) -> None:
    for r in rows:
        old_hash = known.get(r["external_id"])
        if old_hash is None or old_hash == r["content_hash"]:
            continue
        values = {k: r[k] for k in ("title", "text", "content_hash", "text_hash", "sentiment_label",
                                     "sentiment_score", "sentiment_lang", "sentiment_reasons", "scored_at")
                  if r[k] is not None or k in ("title", "text")}
        values["content_changes"] = hits.c.content_changes + 1
        conn.execute(update(hits).where(
            hits.c.source_id == source.id, hits.c.external_id == r["external_id"],
            hits.c.content_changes < CONTENT_CHANGE_LIMIT,
        ).values(**values))


def _record_engagement(conn: Connection, source: SourceRef, by_id: dict[str, MatchedItem],
                       inserted: dict[str, int], now: datetime) -> None:
    observed = {eid: m.item.engagement for eid, m in by_id.items() if m.item.engagement is not None}
    if not observed:
        return
    ids = dict(inserted)
    missing = [eid for eid in observed if eid not in ids]
    if missing:
        rows = conn.execute(select(hits.c.id, hits.c.external_id).where(
            hits.c.source_id == source.id, hits.c.external_id.in_(missing)))
        ids.update({row.external_id: row.id for row in rows})
    latest = _latest_engagement(conn, [ids[e] for e in observed if e in ids])
    new_rows = []
    for eid, value in observed.items():
        hit_id = ids.get(eid)
        if hit_id is None or latest.get(hit_id) == value:
            continue
        new_rows.append({"hit_id": hit_id, "observed_at": now, "likes": value.likes, "reposts": value.reposts,
                         "replies": value.replies, "score": value.score, "views": value.views})
    if new_rows:
        conn.execute(engagement.insert(), new_rows)


def _latest_engagement(conn: Connection, hit_ids: list[int]) -> dict[int, Engagement]:
    if not hit_ids:
        return {}
    newest = (select(engagement.c.hit_id, func.max(engagement.c.id).label("eid"))
              .where(engagement.c.hit_id.in_(hit_ids)).group_by(engagement.c.hit_id).subquery())
    rows = conn.execute(select(engagement).join(newest, and_(engagement.c.id == newest.c.eid)))
    return {r.hit_id: Engagement(r.likes, r.reposts, r.replies, r.score, r.views) for r in rows}


def hits_for_refresh(conn: Connection, hit_ids: Sequence[int]) -> dict[str, list[str]]:
    """source key -> external ids of these hits (the re-fetch goes through the hit's own source)."""
    grouped: dict[str, list[str]] = {}
    rows = conn.execute(select(sources.c.key, hits.c.external_id).join(sources, sources.c.id == hits.c.source_id)
                        .where(hits.c.id.in_(list(hit_ids))))
    for row in rows:
        grouped.setdefault(row.key, []).append(row.external_id)
    return grouped


def stored_versions(conn: Connection, source: SourceRef, matched: Sequence[MatchedItem]) -> list[StoredHit]:
    """The stored hits behind re-fetched items, carrying the engagement just observed."""
    by_id = {m.item.external_id[:512]: m for m in matched}
    if not by_id:
        return []
    rows = conn.execute(select(hits).where(hits.c.source_id == source.id, hits.c.external_id.in_(list(by_id))))
    result = []
    for r in rows:
        item = by_id[r.external_id].item
        sentiment = (SentimentResult(SentimentLabel(r.sentiment_label), r.sentiment_score or 0.0,
                                     r.sentiment_lang or "und", tuple(r.sentiment_reasons or ()))
                     if r.sentiment_label else None)
        result.append(StoredHit(
            id=r.id, client_id=r.client_id, source_key=source.key, kind=r.kind, external_id=r.external_id,
            text=r.text, title=r.title, url=r.url, author=r.author, author_followers=item.author_followers
            if item.author_followers is not None else r.author_followers, direct=r.direct,
            published_at=r.published_at, fetched_at=r.fetched_at, sentiment=sentiment, engagement=item.engagement,
            duplicate_of=r.duplicate_of))
    return result


@dataclass(frozen=True, slots=True)
class HitQuery:
    client_id: str | None = None
    source: str | None = None  # source key, kind, or part of the target
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    label: str | None = None
    include_duplicates: bool = False
    limit: int = 50


def query_hits(conn: Connection, q: HitQuery) -> list[dict[str, Any]]:
    """Newest first (by fetch time, so a post dated 2099 never pins the top)."""
    statement = (
        select(hits, sources.c.key.label("source_key"), sources.c.target.label("source_target"))
        .join(sources, sources.c.id == hits.c.source_id)
        .order_by(hits.c.fetched_at.desc(), hits.c.id.desc())
        .limit(q.limit)
    )
    if q.client_id:
        statement = statement.where(hits.c.client_id == q.client_id)
    if q.source:
        pattern = f"%{_escape_like(q.source)}%"
        statement = statement.where(or_(sources.c.key == q.source, sources.c.kind == q.source,
                                        sources.c.key.like(pattern, escape="\\"),
                                        sources.c.target.like(pattern, escape="\\")))
    if q.since:
        statement = statement.where(hits.c.fetched_at >= q.since)
    if q.until:
        statement = statement.where(hits.c.fetched_at < q.until)
    if q.search:
        pattern = f"%{_escape_like(q.search.lower())}%"
        statement = statement.where(or_(func.lower(hits.c.text).like(pattern, escape="\\"),
                                        func.lower(hits.c.title).like(pattern, escape="\\"),
                                        func.lower(hits.c.author).like(pattern, escape="\\")))
    if q.label:
        statement = statement.where(hits.c.sentiment_label == q.label)
    if not q.include_duplicates:
        statement = statement.where(hits.c.duplicate_of.is_(None))
    return [dict(row._mapping) for row in conn.execute(statement)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
