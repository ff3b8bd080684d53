"""One feed document -> compact plain data, and that data -> `Item`s.

`parse_document` is what a parse worker runs (and what the driver runs in-process when no pool
is wired): safety pre-filter, charset repair, feedparser, classification of failures, and the
conversion of the newest entries to plain text. Its result holds only strings, floats and tuples,
so it crosses a process boundary cheaply and never carries a feedparser object.

`to_items` is the pure half that runs in the daemon: identity (D14), date sanity against the
injected clock (D15) and the per-source entry cap. `keep_matching` lets a parse worker do the
selection and the keyword matching too, so that the daemon neither matches nor receives the
entries that do not concern the client (most of them).

Identity (RELIABILITY D14), in order: the entry's guid/id, else its link as written in the feed,
else `sha256:` + hash of title and text. Raw values are used, not the unwrapped URL, so that an
improvement of link unwrapping never changes the key of a stored hit; a key longer than 512
characters (the column size) is replaced by `sha256:` + its hash. Within one document the first
(newest) entry with a key wins and later duplicates are dropped.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import io
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from veille.core.errors import PermanentFetchError
from veille.core.i18n import N_
from veille.core.matching import Matcher
from veille.core.models import ErrorKind, Item
from veille.sources.rss.fastpath import parse_plain_feed
from veille.sources.rss.links import entry_url
from veille.sources.rss.safety import check_xml_safety, root_element_start
from veille.sources.rss.text import MAX_FIELD, clean_text, html_to_text, merge_summary_and_content

DEFAULT_MAX_ENTRIES = 200  # RELIABILITY E6: only the newest entries of a huge feed are processed
MAX_EXTERNAL_ID = 512  # hits.external_id column size
MAX_AUTHOR = 300  # hits.author column size
MAX_CATEGORIES = 20  # categories read per entry (matched, and kept in the hit's `extra`)
MAX_CATEGORY = 200  # characters per category
OLDEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_UTF8_NAMES = {"utf-8", "utf8", "utf_8", "u8"}
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_WIDE_PREFIXES = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00", b"\x4c\x6f\xa7\x94")


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry as plain text; `published` is a UTC POSIX timestamp or None."""

    guid: str | None
    link: str | None  # as written in the feed (identity)
    url: str | None  # http(s) only, Google redirectors unwrapped (what a hit links to)
    title: str
    text: str
    author: str | None
    published: float | None
    terms: tuple[str, ...] | None = None  # keywords it matched, when matched in the parse worker
    direct: bool = False  # it matched a @mention (set with `terms`)
    categories: tuple[str, ...] = ()  # its categories / tags (RSS <category>, Atom category term or label)

    def matching_text(self) -> str:
        """Everything the entry says, for keyword matching: title, text (summary and content), categories."""
        return "\n".join((self.title, self.text, *self.categories))


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed document: its version ("rss20", "atom10"...), title and newest entries.

    `total_entries` counts the entries in the document before the cap; `bozo` names the problem
    feedparser met in a feed it could still read (e.g. "CharacterEncodingOverride"), else None.
    """

    version: str
    title: str
    entries: tuple[ParsedEntry, ...]
    total_entries: int
    bozo: str | None = None

    def to_wire(self) -> tuple[Any, ...]:
        """Plain tuples for the pipe between a parse worker and the daemon."""
        return (
            self.version,
            self.title,
            self.total_entries,
            self.bozo,
            [
                (e.guid, e.link, e.url, e.title, e.text, e.author, e.published, e.terms, e.direct, e.categories)
                for e in self.entries
            ],
        )

    @classmethod
    def from_wire(cls, data: tuple[Any, ...]) -> ParsedFeed:
        version, title, total, bozo, rows = data
        entries = tuple(
            ParsedEntry(
                guid,
                link,
                url,
                entry_title,
                text,
                author,
                published,
                tuple(terms) if terms is not None else None,
                bool(direct),
                tuple(categories),
            )
            for guid, link, url, entry_title, text, author, published, terms, direct, categories in rows
        )
        return cls(version, title, entries, total, bozo)


def parse_document(
    body: bytes,
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    now: float | None = None,
    fast: bool = True,
) -> ParsedFeed:
    """Parse a fetched feed body. Raises PermanentFetchError (unsafe_xml, not_a_feed, parse_error).

    `now` (POSIX seconds) only decides which dates may order the entries when more than
    `max_entries` are present; the final date checks are made by `to_items` with the daemon's clock.
    Plain RSS 2.0 / Atom documents take `veille.sources.rss.fastpath` (same result, ~20 times less CPU)
    unless `fast` is False; everything else, and everything broken, goes to feedparser.
    """
    import feedparser  # imported here: only parse workers (and the in-process fallback) pay for it

    content_type = _header(headers, "content-type")
    if not body.strip():
        raise PermanentFetchError(ErrorKind.NOT_A_FEED, N_("the server returned an empty document"))
    body, counted = trim_entries(body, max_entries)
    body, content_type = repair_charset(body, content_type)
    # Checked on exactly what feedparser will read: trimming joins two distant parts of the
    # document, which could turn text that was inside a comment into a declaration.
    check_xml_safety(body, content_type)
    result = parse_plain_feed(body, url, content_type) if fast else None
    try:
        if result is None:
            result = feedparser.parse(
                io.BytesIO(body),
                response_headers={"content-type": content_type, "content-location": url},
                sanitize_html=False,  # we reduce everything to text with nh3 ourselves; saves ~40% of CPU
                resolve_relative_uris=False,
            )
    except MemoryError:
        raise
    except Exception as exc:
        # feedparser bugs on hostile bytes (found by fuzzing): an encoding name with a NUL byte
        # (ValueError in convert_to_utf8), "&#xD800;" in the loose parser (UnicodeEncodeError)...
        raise PermanentFetchError(
            ErrorKind.PARSE_ERROR,
            N_("the feed parser failed on this document ({name})").format(name=type(exc).__name__),
        ) from exc
    version = result.get("version") or ""
    if not version:
        raise _not_a_feed(body, content_type, result)
    entries = list(result.get("entries") or [])
    stamps = [_timestamp(entry) for entry in entries]
    chosen = select_newest(stamps, max_entries, time.time() if now is None else now)
    feed = result.get("feed") or {}
    exception = result.get("bozo_exception") if result.get("bozo") else None
    return ParsedFeed(
        version=version,
        title=_text_of(feed.get("title_detail"), feed.get("title"), limit=300, single_line=True),
        entries=tuple(_entry(entries[i]) for i in chosen),
        total_entries=max(len(entries), counted),
        bozo=type(exception).__name__ if exception is not None else None,
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _not_a_feed(body: bytes, content_type: str, result: Any) -> PermanentFetchError:
    """Classify a document feedparser found no feed in: an HTML page (D12) or broken XML (E10).

    feedparser's "things nobody cares about" (a charset override, a non-XML media type) are not
    broken XML: such a document is simply not a feed.
    """
    from feedparser import ThingsNobodyCaresAboutButMe

    head = body[:4096].decode("latin-1").lower()
    root = root_element_start(head)
    is_html = (
        content_type.lower().startswith("text/html")
        or head[root : root + 5] == "<html"
        or ("<!doctype html" in head[:root])
    )
    if is_html:
        return PermanentFetchError(ErrorKind.NOT_A_FEED, N_("the server returned an HTML page, not a feed"))
    exception = result.get("bozo_exception")
    if result.get("bozo") and not isinstance(exception, ThingsNobodyCaresAboutButMe):
        problem = type(exception).__name__
        return PermanentFetchError(
            ErrorKind.PARSE_ERROR, N_("the document is not well-formed XML ({problem})").format(problem=problem)
        )
    return PermanentFetchError(ErrorKind.NOT_A_FEED, N_("the document is XML but not RSS, Atom or RDF"))


def trim_entries(body: bytes, keep: int) -> tuple[bytes, int]:
    """Cut the middle out of a huge feed before parsing it, so its cost does not grow with its size.

    feedparser needs seconds for 20,000 entries (RELIABILITY E6: 3.5 s measured, more on a busy
    machine, beyond the parse deadline), though only the newest `keep` are used. When a document
    has more than 4 x `keep` entries, only the first and last 2 x `keep` are kept (feeds list the
    newest first, a few the oldest first; dates then choose among them). The cut runs from the end
    of one `</item>` (or `</entry>`) to the end of a later one, removing whole sibling elements, so
    a well-formed document stays well-formed. Returns the body and the entry count (0 if untouched).
    UTF-16/32 documents are left alone (the tags are not ASCII bytes there).
    """
    if keep <= 0 or body.startswith(_WIDE_PREFIXES) or b"\x00" in body[:4]:
        return body, 0
    tag = b"</item>" if b"</item>" in body else b"</entry>"
    total = body.count(tag)
    if total <= 4 * keep:
        return body, 0
    ends: list[int] = []
    position = body.find(tag)
    while position >= 0:
        ends.append(position + len(tag))
        position = body.find(tag, position + len(tag))
    margin = 2 * keep
    return body[: ends[margin - 1]] + body[ends[total - margin - 1] :], total


def repair_charset(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """Decide the charset feedparser should use, fixing the common lies (RELIABILITY D13).

    A body that is valid UTF-8 with non-ASCII bytes is UTF-8 whatever it declares (a real
    ISO-8859-1 or Windows-1252 text is almost never valid UTF-8). A body declared or defaulting
    to UTF-8 with a few invalid bytes keeps its valid characters: the bad bytes become U+FFFD
    instead of the whole document being re-read as Windows-1252 (mojibake). No Content-Type is
    treated as application/xml, because feedparser would otherwise assume ISO-8859-1.
    """
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower() or "application/xml"
    charset_match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", params, re.IGNORECASE)
    charset = charset_match.group(1).lower() if charset_match else None
    original = f"{media}; charset={charset}" if charset else media
    if body.startswith(_WIDE_PREFIXES) or b"\x00" in body[:4]:
        return body, original  # UTF-16/32/EBCDIC: the parser's own detection is right
    if not _NON_ASCII.search(body):
        return body, original
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return body, f"{media}; charset=utf-8"
    declared = charset
    if declared is None:
        xml_decl = _XML_ENCODING.match(body[:512])
        declared = xml_decl.group(1).decode("ascii").lower() if xml_decl else None
    if declared is not None and declared not in _UTF8_NAMES:
        return body, original
    text = body.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd")
    valid_multibyte = len(text) - len(text.encode("ascii", "ignore")) - replaced
    if valid_multibyte >= replaced:
        return text.encode("utf-8"), f"{media}; charset=utf-8"
    return body, original  # mostly not UTF-8: let feedparser fall back to Windows-1252


def select_newest(stamps: list[float | None], limit: int, now: float) -> list[int]:
    """Indices of the `limit` newest entries (by timestamp), in document order (RELIABILITY E6).

    Dates in the future (beyond a day) or before 1990 do not count, so a feed with a 2099 entry
    cannot pin it at the top. Without usable dates the first entries are kept (feeds list the
    newest first).
    """
    if len(stamps) <= limit:
        return list(range(len(stamps)))
    newest_allowed = now + FUTURE_SLACK.total_seconds()
    oldest_allowed = OLDEST_DATE.timestamp()

    def key(index: int) -> float:
        stamp = stamps[index]
        if stamp is None or not oldest_allowed <= stamp <= newest_allowed:
            return float("-inf")
        return stamp

    ranked = sorted(range(len(stamps)), key=key, reverse=True)  # stable: ties keep document order
    return sorted(ranked[: max(limit, 0)])


def _timestamp(entry: Any) -> float | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: FeedParserDict.get maps a missing key to another with a DeprecationWarning.
        value = dict.get(entry, name) if isinstance(entry, dict) else None
        if value:
            try:
                return float(calendar.timegm(value))
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _text_of(detail: Any, fallback: Any, *, limit: int = MAX_FIELD, single_line: bool = False) -> str:
    """A feedparser text construct as plain text: HTML types are stripped, text/plain kept literal."""
    value = (detail or {}).get("value") if detail else None
    if value is None:
        value = fallback
    if not value:
        return ""
    kind = str((detail or {}).get("type") or "").lower()
    if kind in _HTML_TYPES:
        return html_to_text(str(value), limit=limit, single_line=single_line)
    return clean_text(str(value), limit=limit, single_line=single_line)


def _categories(entry: Any) -> tuple[str, ...]:
    """Distinct category names (a tag's term, else its label), in document order."""
    names: dict[str, None] = {}
    for tag in entry.get("tags") or ():
        name = clean_text(str(tag.get("term") or tag.get("label") or ""), limit=MAX_CATEGORY, single_line=True)
        if name:
            names.setdefault(name, None)
        if len(names) >= MAX_CATEGORIES:
            break
    return tuple(names)


def _entry(entry: Any) -> ParsedEntry:
    """The entry as plain text. Its text holds the summary and the longest content, their shared part once
    (`merge_summary_and_content`): a lead paragraph given only in the summary is kept, and matched."""
    content = entry.get("content") or []
    if content:
        best = max(content, key=lambda c: len(c.get("value") or ""))
        # A summary without its detail is feedparser's own copy of an Atom content, not the feed's.
        detail = entry.get("summary_detail")
        summary = _text_of(detail, entry.get("summary")) if detail else ""
        text = merge_summary_and_content(summary, _text_of(best, None))
    else:
        text = _text_of(entry.get("summary_detail"), entry.get("summary"))
    title = _text_of(entry.get("title_detail"), entry.get("title"), single_line=True)
    link = entry.get("link")
    guid = entry.get("id")
    author = clean_text(str(entry.get("author") or ""), limit=MAX_AUTHOR, single_line=True)
    return ParsedEntry(
        guid=(clean_text(str(guid), limit=MAX_FIELD, single_line=True) or None) if guid else None,
        link=(clean_text(str(link), limit=MAX_FIELD, single_line=True) or None) if link else None,
        url=entry_url(link),
        title=title,
        text=text,
        author=author or None,
        published=_timestamp(entry),
        categories=_categories(entry),
    )


def external_id(entry: ParsedEntry) -> str:
    """The entry's dedup key (see the module docstring for the documented order)."""
    key = entry.guid or entry.link
    if not key:
        digest = hashlib.sha256(f"{entry.title}\n{entry.text}".encode("utf-8", "surrogatepass"))
        return f"sha256:{digest.hexdigest()}"
    if len(key) > MAX_EXTERNAL_ID:
        return f"sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"
    return key


def published_at(stamp: float | None, now: datetime) -> datetime | None:
    """A trustworthy publication date, or None so that the store uses the fetch time (D15)."""
    if stamp is None:
        return None
    try:
        when = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    if when < OLDEST_DATE or when > now + FUTURE_SLACK:
        return None
    return when


def distinct_entries(feed: ParsedFeed, *, now: float, max_entries: int | None) -> list[tuple[str, ParsedEntry]]:
    """(key, entry) for the entries that become items: the newest `max_entries`, the first of each key."""
    entries = list(feed.entries)
    if max_entries is not None and len(entries) > max_entries:
        chosen = select_newest([e.published for e in entries], max_entries, now)
        entries = [entries[i] for i in chosen]
    selected: list[tuple[str, ParsedEntry]] = []
    seen: set[str] = set()
    for entry in entries:
        key = external_id(entry)
        if key not in seen:
            seen.add(key)
            selected.append((key, entry))
    return selected


@functools.lru_cache(maxsize=512)
def matcher_for(keywords: tuple[str, ...]) -> Matcher:
    """Each client's compiled keywords, kept between parses (a parse worker serves every client)."""
    return Matcher(keywords)


def keep_matching(feed: ParsedFeed, matcher: Matcher, *, now: float, max_entries: int | None) -> ParsedFeed:
    """The entries `to_items` would keep that match the client's keywords, each with its terms.

    Matching reads everything the entry says (`ParsedEntry.matching_text`: title, summary and content,
    categories). Every feed is matched here, in the parse worker or in-process by the driver, so the
    pipeline never matches feed items again."""
    kept = []
    for _, entry in distinct_entries(feed, now=now, max_entries=max_entries):
        match = matcher.match(entry.matching_text())
        if match.matched:
            kept.append(replace(entry, terms=match.terms, direct=match.direct))
    return replace(feed, entries=tuple(kept))


def to_items(feed: ParsedFeed, *, now: datetime, max_entries: int | None = None) -> list[Item]:
    """Items for the pipeline: one per distinct key, at most `max_entries`, dates checked."""
    extra = {"feed_title": feed.title} if feed.title else {}

    def facts(entry: ParsedEntry) -> dict[str, str]:
        return {**extra, "categories": ", ".join(entry.categories)[:500]} if entry.categories else dict(extra)

    return [
        Item(
            external_id=key,
            text=entry.text,
            title=entry.title,
            url=entry.url,
            author=entry.author,
            published_at=published_at(entry.published, now),
            direct=entry.direct,
            matched_terms=entry.terms,
            extra=facts(entry),
        )
        for key, entry in distinct_entries(feed, now=now.timestamp(), max_entries=max_entries)
    ]
