"""Storing hits exactly once, and querying them.

A hit is unique on (source, external id): inserts use ON CONFLICT DO NOTHING, so a re-seen post or
a concurrent insert never raises. The same post reached through two sources of one client (same
canonical URL, or same normalised text) is stored with `duplicate_of` pointing at the first copy,
so it is linked, not double-counted. Re-seen posts add an engagement observation when their counts
moved, and an entry whose content churns is updated (and re-scored) at most CONTENT_CHANGE_LIMIT times.

The single writer stores a whole batch of polls with `store_batch`: a fixed handful of set-based
statements (known ids, duplicates, one insert, executemany updates) instead of a dozen per source,
because per-statement overhead, not the database, was the writer's CPU. `store_items` is one part of it.
"""

from __future__ import annotations

import json
import typing
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    or_,
    select,
    union_all,
    update,
)

from veille.core.matching import MatchResult, fold
from veille.core.models import Engagement, Item, SentimentLabel, SentimentResult, StoredHit
from veille.store import bulk
from veille.store.schema import engagement, hits, sources
from veille.store.search import folded, needle, search_text
from veille.store.urls import canonical_url, content_hash, text_fingerprint

CONTENT_CHANGE_LIMIT = 24  # like reader's HASH_CHANGED_LIMIT: churning feeds are not re-scored forever
MAX_FIELD = 64 * 1024


@dataclass(frozen=True, slots=True)
class MatchedItem:
    item: Item
    match: MatchResult
    sentiment: SentimentResult | None = None
    # Its row's columns computed ahead, outside the write transaction (`prepared`); else computed when stored.
    columns: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    key: str
    client_id: str
    kind: str
    reach_prior: float = 0.0  # the driver's (the runtime fills it in): carried on the hits it stores


Pair = tuple[int, str]  # (source id, external id): what makes a hit unique
Part = tuple[SourceRef, Sequence[MatchedItem]]  # one source's matched items, as one poll yields them
PAGE = 1000  # ids per IN list, far below SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class KnownHit:
    id: int
    content_hash: str


def _insert(conn: Connection, table: Any) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(conn: Connection, name: str, build: Callable[[str], Any]) -> Any:
    """Build a statement once per dialect: the same object every batch, so SQLAlchemy's compiled cache
    hits without rebuilding the expression, and one shape whatever the batch size (no IN list per size)."""
    key = (conn.dialect.name, name)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build(conn.dialect.name)
    return statement


def _pairs(dialect: str, name: str, first: Any, second: Any) -> tuple[Any, Any, Any]:
    """A relation of (first, second) pairs bound as one value whatever their number, to join on an index.

    SQLite reads a JSON array with json_each, PostgreSQL unnests two arrays; both probe the unique
    index per pair, where `(a, b) IN (...)` scans the table on SQLite and an IN list per column would
    probe every combination."""
    from sqlalchemy.dialects.postgresql import ARRAY

    if dialect == "postgresql":
        relation = func.unnest(bindparam(f"{name}_a", type_=ARRAY(first)), bindparam(f"{name}_b", type_=ARRAY(second)))
        table = relation.table_valued(column("a", first), column("b", second)).render_derived(name=name)
        return table, table.c.a, table.c.b
    table = func.json_each(bindparam(name, type_=String)).table_valued("value").alias(name)
    return table, func.json_extract(table.c.value, "$[0]"), func.json_extract(table.c.value, "$[1]")


def _pair_params(conn: Connection, name: str, pairs: Collection[tuple[Any, Any]]) -> dict[str, Any]:
    if conn.dialect.name == "postgresql":
        return {f"{name}_a": [a for a, _ in pairs], f"{name}_b": [b for _, b in pairs]}
    return {name: json.dumps(list(pairs), ensure_ascii=False)}


def _known_statement(dialect: str) -> Any:
    wanted, source_id, external_id = _pairs(dialect, "wanted", BigInteger(), Text())
    return (
        select(hits.c.id, hits.c.source_id, hits.c.external_id, hits.c.content_hash)
        .select_from(wanted)
        .join(hits, and_(hits.c.source_id == source_id, hits.c.external_id == external_id))
    )


def known_hits(conn: Connection, pairs: Collection[Pair]) -> dict[Pair, KnownHit]:
    """The stored hits among these (source id, external id) pairs, in one statement for a whole batch."""
    if not pairs:
        return {}
    rows = conn.execute(_statement(conn, "known", _known_statement), _pair_params(conn, "wanted", pairs))
    return {(row.source_id, row.external_id): KnownHit(row.id, row.content_hash) for row in rows}


def prepared(source: SourceRef, matched: MatchedItem) -> MatchedItem:
    """`matched` with its row computed ahead (folding, fingerprints, the search text: most of the CPU of storing
    an article), so that the writer does it before taking the write lock, not while holding it (issue 17)."""
    return replace(matched, columns=_columns(source, matched))


def _row(source: SourceRef, matched: MatchedItem, now: datetime) -> dict[str, Any]:
    """The row to insert (a dict of its own: the caller fills `duplicate_of` in)."""
    columns = matched.columns if matched.columns is not None else _columns(source, matched)
    return {
        **columns,
        "published_at": matched.item.published_at or now,
        "fetched_at": now,
        "scored_at": now if matched.sentiment else None,
    }


def _columns(source: SourceRef, matched: MatchedItem) -> dict[str, Any]:
    """The row's columns that do not depend on when it is stored."""
    item = matched.item
    text = item.text[:MAX_FIELD]
    title = item.title[:MAX_FIELD]
    sentiment = matched.sentiment
    folded = (fold(title), fold(text))  # for the duplicate fingerprint and the search column: folded once
    return {
        "source_id": source.id,
        "client_id": source.client_id,
        "external_id": item.external_id[:512],
        "canonical_url": canonical_url(item.url),
        "text_hash": text_fingerprint(f"{title} {text}", f"{source.kind}:{item.external_id}", folded=" ".join(folded)),
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
        # A post in a language the scorer does not score: its language, no label, no score (issue 16).
        "sentiment_label": sentiment.label.value if sentiment and sentiment.label is not None else None,
        "sentiment_score": sentiment.score if sentiment and sentiment.scored else None,
        "sentiment_lang": sentiment.lang if sentiment else None,
        "sentiment_reasons": list(sentiment.reasons) if sentiment else None,
        "extra": ({**item.extra, "stars": str(item.stars)} if item.stars is not None else item.extra) or None,
        "private": item.private,
        "thread_id": item.thread_id and item.thread_id[:512],
        "parent_id": item.parent_id and item.parent_id[:512],
        "from_client": item.from_client,
        "search_text": search_text(title, text, (item.author or None) and item.author[:300], folded=folded),
        "duplicate_of": None,
    }


def inbox_view(item: Item) -> dict[str, Any]:
    """What the reply inbox reads of a hit addressed to the client (StoredHit.channel, conversation...)."""
    if not item.direct:
        return {}
    return {"channel": item.channel, "conversation": item.conversation[:512], "from_client": item.from_client}


# The keys of `_row`, in order: one array each on PostgreSQL.
ROW_COLUMNS = tuple(
    _row(SourceRef(0, "", "", ""), MatchedItem(Item("", ""), MatchResult(True, False, ())), datetime(2000, 1, 1))
)
JSON_COLUMNS = frozenset(name for name in ROW_COLUMNS if isinstance(hits.c[name].type, JSON))


@dataclass(slots=True)
class _Fresh:
    """A row to insert; `part` is its source's place in the batch, `original` an earlier row it copies."""

    part: int
    source: SourceRef
    row: dict[str, Any]
    original: _Fresh | None = None

    @property
    def key(self) -> Pair:
        return (self.source.id, self.row["external_id"])


def store_items(conn: Connection, source: SourceRef, matched: Sequence[MatchedItem], now: datetime) -> list[StoredHit]:
    """Insert new hits, update churned ones, append engagement; return the hits that are new."""
    return store_batch(conn, [(source, matched)], now)[0]


def store_batch(
    conn: Connection, parts: Sequence[Part], now: datetime, *, same_poll: Mapping[int, int] | None = None
) -> list[list[StoredHit]]:
    """`store_items` for many sources in a handful of statements; the new hits of each part, in order.

    The result is the same as storing the parts one after the other: a post of a later part links to
    the copy an earlier part inserted. A source present twice is stored in two rounds, so its second
    part sees what its first inserted (a churned entry, not a new one).

    `same_poll`: hit id -> source id of the rows that earlier transactions inserted for these same polls
    (a poll too large for one transaction is stored in several): never originals of that source's rows,
    since the rows of one poll never point at each other."""
    stored: list[list[StoredHit]] = [[] for _ in parts]
    segment: list[int] = []
    in_segment: set[int] = set()
    for index, (source, matched) in enumerate(parts):
        if not matched:
            continue
        if source.id in in_segment:
            _store_segment(conn, parts, segment, now, stored, same_poll or {})
            segment, in_segment = [], set()
        segment.append(index)
        in_segment.add(source.id)
    if segment:
        _store_segment(conn, parts, segment, now, stored, same_poll or {})
    return stored


def _store_segment(
    conn: Connection,
    parts: Sequence[Part],
    indexes: list[int],
    now: datetime,
    stored: list[list[StoredHit]],
    same_poll: Mapping[int, int],
) -> None:
    """Store parts of distinct sources: one lookup, one insert, then one statement per kind of update."""
    known = known_hits(conn, {(parts[i][0].id, m.item.external_id[:512]) for i in indexes for m in parts[i][1]})
    fresh: list[_Fresh] = []
    churned: list[dict[str, Any]] = []
    for position, index in enumerate(indexes):
        source, matched = parts[index]
        taken: set[str] = set()
        for m in matched:
            external_id = m.item.external_id[:512]
            old = known.get((source.id, external_id))
            if old is None:
                if external_id not in taken:
                    taken.add(external_id)
                    fresh.append(_Fresh(position, source, _row(source, m, now)))
            elif old.content_hash != content_hash(m.item.title[:MAX_FIELD], m.item.text[:MAX_FIELD]):
                churned.append(_row(source, m, now))
    _find_originals(conn, fresh, same_poll)
    inserted: dict[Pair, int] = {}
    if fresh:
        inserted = _insert_rows(conn, [f.row for f in fresh])
        _link_to_batch_originals(conn, fresh, inserted)
        added = Counter(source_id for source_id, _ in inserted)
        if added:
            conn.execute(
                _statement(conn, "hits_count", _count_statement),
                [{"_source_id": source_id, "_added": n} for source_id, n in added.items()],
            )
    _update_churned(conn, churned)
    by_id = [{m.item.external_id[:512]: m for m in parts[i][1]} for i in indexes]
    _record_engagement(conn, [(parts[i][0], by_id[p]) for p, i in enumerate(indexes)], inserted, known, now)
    for f in fresh:
        hit_id = inserted.get(f.key)
        if hit_id is None:
            continue
        r, source = f.row, f.source
        m = by_id[f.part][r["external_id"]]
        stored[indexes[f.part]].append(
            StoredHit(
                id=hit_id,
                client_id=source.client_id,
                source_key=source.key,
                kind=source.kind,
                external_id=r["external_id"],
                text=r["text"],
                title=r["title"],
                url=r["url"],
                author=r["author"],
                author_followers=r["author_followers"],
                direct=r["direct"],
                published_at=r["published_at"],
                fetched_at=now,
                sentiment=m.sentiment,
                engagement=m.item.engagement,
                duplicate_of=r["duplicate_of"],
                reach_prior=source.reach_prior,
                **inbox_view(m.item),
                matched_terms=m.match.terms,
            )
        )


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> dict[Pair, int]:
    """Insert (ON CONFLICT DO NOTHING) in one statement per page; the ids of the rows really inserted.

    PostgreSQL gets one array per column and unnests them: psycopg re-parses the text of every
    multi-row VALUES statement (30 placeholders a row), which cost more than the insert itself."""
    if conn.dialect.name != "postgresql":  # SQLite: the driver's own parameters (see veille.store.bulk)
        returned = bulk.insert_rows(conn, hits, ROW_COLUMNS, rows, _SQLITE_INSERT_SUFFIX)
        return {(source_id, external_id): hit_id for hit_id, source_id, external_id in returned}
    params = {
        name: [json.dumps(r[name]) for r in rows] if name in JSON_COLUMNS else [r[name] for r in rows]
        for name in ROW_COLUMNS
    }
    result = conn.execute(_statement(conn, "insert", _insert_statement), params)
    return {(row.source_id, row.external_id): row.id for row in result}


_SQLITE_INSERT_SUFFIX = "ON CONFLICT (source_id, external_id) DO NOTHING RETURNING id, source_id, external_id"


def _insert_statement(_dialect: str) -> Any:
    """PostgreSQL's insert: one array per column, unnested (SQLite's goes through veille.store.bulk)."""
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    types = {name: Text() if name in JSON_COLUMNS else hits.c[name].type for name in ROW_COLUMNS}
    arrays = func.unnest(*[bindparam(name, type_=ARRAY(types[name])) for name in ROW_COLUMNS])
    fresh = arrays.table_valued(*[column(name, types[name]) for name in ROW_COLUMNS]).render_derived(name="fresh")
    values = [cast(fresh.c[name], hits.c[name].type) if name in JSON_COLUMNS else fresh.c[name] for name in ROW_COLUMNS]
    statement = pg_insert(hits).from_select(list(ROW_COLUMNS), select(*values))
    return statement.on_conflict_do_nothing(index_elements=[hits.c.source_id, hits.c.external_id]).returning(
        hits.c.id, hits.c.source_id, hits.c.external_id
    )


def _count_statement(_dialect: str) -> Any:
    return (
        update(sources)
        .where(sources.c.id == bindparam("_source_id"))
        .values(hits_count=sources.c.hits_count + bindparam("_added", type_=Integer))
    )


def _originals_statement(dialect: str) -> Any:
    """Stored hits with one of these (client, URL) or (client, text) pairs, copies included.

    Copies (`duplicate_of` set) are skipped by the caller, not in SQL: with a `duplicate_of IS NULL`
    condition SQLite chose the index on duplicate_of (nearly every hit is NULL there) over the
    (client_id, text_hash) one and scanned the table for every batch (measured: 20 s of CPU over
    the cold round of bench/poll.py instead of milliseconds)."""
    columns = (hits.c.id, hits.c.client_id, hits.c.canonical_url, hits.c.text_hash, hits.c.duplicate_of)
    by_url, url_client, url = _pairs(dialect, "urls", Text(), Text())
    by_text, text_client, text_hash = _pairs(dialect, "texts", Text(), Text())
    return union_all(
        select(*columns)
        .select_from(by_url)
        .join(hits, and_(hits.c.client_id == url_client, hits.c.canonical_url == url)),
        select(*columns)
        .select_from(by_text)
        .join(hits, and_(hits.c.client_id == text_client, hits.c.text_hash == text_hash)),
    )


def _find_originals(conn: Connection, fresh: list[_Fresh], same_poll: Mapping[int, int]) -> None:
    """Point each new row at the first copy of the same post of its client (same URL, else same text).

    The first copy is a stored hit, else a row of an earlier part of this batch (`original`, resolved
    once inserted). Rows of one part never point at each other, as when each poll was stored alone, nor
    at rows an earlier transaction inserted for the same poll (`same_poll`, see `store_batch`)."""
    if not fresh:
        return
    urls = {(f.source.client_id, f.row["canonical_url"]) for f in fresh if f.row["canonical_url"]}
    texts = {(f.source.client_id, f.row["text_hash"]) for f in fresh}
    params = {**_pair_params(conn, "urls", urls), **_pair_params(conn, "texts", texts)}
    stored_url: dict[tuple[str, str], list[int]] = defaultdict(list)
    stored_text: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in conn.execute(_statement(conn, "originals", _originals_statement), params):
        if row.duplicate_of is not None:
            continue
        if row.canonical_url:
            stored_url[(row.client_id, row.canonical_url)].append(row.id)
        stored_text[(row.client_id, row.text_hash)].append(row.id)

    def first(ids: list[int], source_id: int) -> int | None:
        return min((i for i in ids if same_poll.get(i) != source_id), default=None)

    batch_url: dict[tuple[str, str], _Fresh] = {}
    batch_text: dict[tuple[str, str], _Fresh] = {}
    for f in fresh:
        url = f.row["canonical_url"]
        by_url = (f.source.client_id, url)
        by_text = (f.source.client_id, f.row["text_hash"])
        original = first(stored_url.get(by_url, []), f.source.id) if url else None
        if original is not None:
            f.row["duplicate_of"] = original
            continue
        earlier = batch_url.get(by_url) if url else None
        if earlier is None or earlier.part == f.part:
            original = first(stored_text.get(by_text, []), f.source.id)
            if original is not None:
                f.row["duplicate_of"] = original
                continue
            earlier = batch_text.get(by_text)
        if earlier is not None and earlier.part != f.part:
            f.original = earlier
            continue
        if url:
            batch_url.setdefault(by_url, f)
        batch_text.setdefault(by_text, f)


def _link_to_batch_originals(conn: Connection, fresh: list[_Fresh], inserted: dict[Pair, int]) -> None:
    """Copies of a post first inserted by this same batch: their original's id is known only now."""
    links = []
    for f in fresh:
        if f.original is None:
            continue
        f.row["duplicate_of"] = inserted.get(f.original.key)
        hit_id = inserted.get(f.key)
        if hit_id is not None and f.row["duplicate_of"] is not None:
            links.append({"_id": hit_id, "duplicate_of": f.row["duplicate_of"]})
    if links:
        conn.execute(_statement(conn, "link", _by_id_statement), links)


def _by_id_statement(_dialect: str) -> Any:
    return update(hits).where(hits.c.id == bindparam("_id"))  # SET: the other keys of the parameters


CHURN_FIELDS = (
    "title",
    "text",
    "content_hash",
    "text_hash",
    "sentiment_label",
    "sentiment_score",
    "sentiment_lang",
    "sentiment_reasons",
    "scored_at",
    "search_text",
)


def _update_churned(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Entries whose content changed: new text (and verdict, if scored), at most CONTENT_CHANGE_LIMIT times."""
    params = []
    for r in rows:
        values = {k: r[k] for k in CHURN_FIELDS if r[k] is not None or k in ("title", "text")}
        params.append({"_source_id": r["source_id"], "_external_id": r["external_id"], **values})
    # Runs of the same columns keep the order (an entry twice in one poll ends with its last version).
    for _, run in groupby(params, key=tuple):
        conn.execute(_statement(conn, "churn", _churn_statement), list(run))


def _churn_statement(_dialect: str) -> Any:
    return (
        update(hits)
        .where(
            hits.c.source_id == bindparam("_source_id"),
            hits.c.external_id == bindparam("_external_id"),
            hits.c.content_changes < CONTENT_CHANGE_LIMIT,
        )
        .values(content_changes=hits.c.content_changes + 1)
    )  # SET also: the other keys of the parameters


def _record_engagement(
    conn: Connection,
    parts: list[tuple[SourceRef, dict[str, MatchedItem]]],
    inserted: dict[Pair, int],
    known: dict[Pair, KnownHit],
    now: datetime,
) -> None:
    observed = {
        (source.id, eid): m.item.engagement
        for source, by_id in parts
        for eid, m in by_id.items()
        if m.item.engagement is not None
    }
    if not observed:
        return
    ids = {
        key: inserted[key] if key in inserted else known[key].id for key in observed if key in inserted or key in known
    }
    missing = [key for key in observed if key not in ids]
    if missing:  # inserted meanwhile by another writer (PostgreSQL): ON CONFLICT skipped ours
        ids.update({key: hit.id for key, hit in known_hits(conn, missing).items()})
    latest = _latest_engagement(conn, [ids[key] for key in observed if key in ids])
    new_rows = []
    for key, value in observed.items():
        hit_id = ids.get(key)
        if hit_id is None or latest.get(hit_id) == value:
            continue
        new_rows.append(
            {
                "hit_id": hit_id,
                "observed_at": now,
                "likes": value.likes,
                "reposts": value.reposts,
                "replies": value.replies,
                "score": value.score,
                "views": value.views,
            }
        )
    if new_rows:
        conn.execute(engagement.insert(), new_rows)


def _latest_engagement(conn: Connection, hit_ids: list[int]) -> dict[int, Engagement]:
    latest: dict[int, Engagement] = {}
    for start in range(0, len(hit_ids), PAGE):
        page = hit_ids[start : start + PAGE]
        rows = conn.execute(_statement(conn, "latest_engagement", _latest_statement), {"ids": page})
        latest.update({r.hit_id: Engagement(r.likes, r.reposts, r.replies, r.score, r.views) for r in rows})
    return latest


def _latest_statement(_dialect: str) -> Any:
    newest = (
        select(engagement.c.hit_id, func.max(engagement.c.id).label("eid"))
        .where(engagement.c.hit_id.in_(bindparam("ids", expanding=True)))
        .group_by(engagement.c.hit_id)
        .subquery()
    )
    return select(engagement).join(newest, engagement.c.id == newest.c.eid)


def hits_for_refresh(conn: Connection, hit_ids: Sequence[int]) -> dict[str, list[str]]:
    """source key -> external ids of these hits (the re-fetch goes through the hit's own source)."""
    grouped: dict[str, list[str]] = {}
    rows = conn.execute(
        select(sources.c.key, hits.c.external_id)
        .join(sources, sources.c.id == hits.c.source_id)
        .where(hits.c.id.in_(list(hit_ids)))
    )
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
        sentiment = (
            SentimentResult(
                SentimentLabel(r.sentiment_label),
                r.sentiment_score or 0.0,
                r.sentiment_lang or "und",
                tuple(r.sentiment_reasons or ()),
            )
            if r.sentiment_label
            else SentimentResult.unscored(r.sentiment_lang)
            if r.scored_at is not None and r.sentiment_lang
            else None
        )
        result.append(
            StoredHit(
                id=r.id,
                client_id=r.client_id,
                source_key=source.key,
                kind=r.kind,
                external_id=r.external_id,
                text=r.text,
                title=r.title,
                url=r.url,
                author=r.author,
                author_followers=item.author_followers if item.author_followers is not None else r.author_followers,
                direct=r.direct,
                published_at=r.published_at,
                fetched_at=r.fetched_at,
                sentiment=sentiment,
                engagement=item.engagement,
                duplicate_of=r.duplicate_of,
                reach_prior=source.reach_prior,
            )
        )
    return result


class HitListing(TypedDict):
    """A stored hit with its source's key and target, as `veille hits` and the dashboard list it."""

    id: int
    source_id: int
    client_id: str
    external_id: str
    duplicate_of: int | None
    canonical_url: str | None
    text_hash: str
    content_hash: str
    content_changes: int
    kind: str
    url: str | None
    title: str
    text: str
    author: str | None
    author_name: str | None
    author_followers: int | None
    lang: str | None
    direct: bool
    matched_terms: str | None
    published_at: datetime
    fetched_at: datetime
    sentiment_label: str | None
    sentiment_score: float | None
    sentiment_lang: str | None
    sentiment_reasons: list[str] | None
    scored_at: datetime | None
    risk: float | None
    extra: dict[str, Any] | None  # JSON
    private: bool
    thread_id: str | None
    parent_id: str | None
    source_key: str
    source_target: str


_SOURCE_COLUMNS = {"source_key": sources.c.key, "source_target": sources.c.target}
_LISTING_COLUMNS = [
    _SOURCE_COLUMNS[name].label(name) if name in _SOURCE_COLUMNS else hits.c[name]
    for name in HitListing.__annotations__
]


UNSCORED = "unscored"  # HitQuery.lang: the hits without a sentiment (a language veille does not score)


@dataclass(frozen=True, slots=True)
class HitQuery:
    client_id: str | None = None
    source: str | None = None  # source key, kind, or part of the target
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    label: str | None = None
    lang: str | None = None  # the post's language as the scorer found it, or UNSCORED
    include_duplicates: bool = False
    limit: int = 50
    offset: int = 0  # paging (the dashboard)
    source_key: str | None = None  # exactly this source
    ids: tuple[int, ...] | None = None  # only these hits (an incident's evidence)


def original_only() -> ColumnElement[bool]:
    """`duplicate_of IS NULL` (not a linked copy), written `duplicate_of + 0` so that SQLite does not use
    the duplicate_of index for it: without statistics SQLite takes that filter for a selective one and
    walks every hit instead of the client's time range (250 ms instead of 1 for the current hour of 50
    clients over 100,000 hits). PostgreSQL plans it the same either way. The client's own answers
    (`from_client`, kept for the reply inbox) are left out too: they are not what people say about it."""
    return and_((hits.c.duplicate_of + 0).is_(None), hits.c.from_client.is_(false()))


def query_hits(conn: Connection, q: HitQuery) -> list[HitListing]:
    """Newest first (by fetch time, so a post dated 2099 never pins the top)."""
    statement = (
        select(*_LISTING_COLUMNS)
        .select_from(hits)
        .join(sources, sources.c.id == hits.c.source_id)
        .order_by(hits.c.fetched_at.desc(), hits.c.id.desc())
        .limit(q.limit)
        .offset(q.offset)
    )
    if q.source_key:
        statement = statement.where(sources.c.key == q.source_key)
    if q.ids is not None:
        statement = statement.where(hits.c.id.in_(list(q.ids)))
    if q.client_id:
        statement = statement.where(hits.c.client_id == q.client_id)
    if q.source:
        pattern = f"%{_escape_like(q.source)}%"
        statement = statement.where(
            or_(
                sources.c.key == q.source,
                sources.c.kind == q.source,
                sources.c.key.like(pattern, escape="\\"),
                sources.c.target.like(pattern, escape="\\"),
            )
        )
    if q.since:
        statement = statement.where(hits.c.fetched_at >= q.since)
    if q.until:
        statement = statement.where(hits.c.fetched_at < q.until)
    if q.search:
        pattern = f"%{_escape_like(needle(q.search))}%"
        dialect = conn.dialect.name
        in_sql = or_(
            *(
                folded(column, dialect).like(pattern, escape="\\")
                for column in (hits.c.text, hits.c.title, hits.c.author)
            )
        )
        statement = statement.where(
            case(
                (hits.c.search_text.is_not(None), hits.c.search_text.like(pattern, escape="\\")),
                else_=in_sql,  # a row written without it (by older code): folded here, slowly
            )
        )
    if q.label:
        statement = statement.where(hits.c.sentiment_label == q.label)
    if q.lang == UNSCORED:
        statement = statement.where(hits.c.sentiment_label.is_(None))
    elif q.lang:
        statement = statement.where(hits.c.sentiment_lang == q.lang)
    if not q.include_duplicates:
        statement = statement.where(original_only())
    # The rows have exactly HitListing's keys (selected by name above).
    return [typing.cast(HitListing, dict(row._mapping)) for row in conn.execute(statement)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
