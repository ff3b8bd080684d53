"""A fast reader for the plainest feeds, giving exactly what feedparser gives, or nothing.

feedparser costs 8 to 17 ms of CPU per ordinary feed: its SAX handlers run in Python for every
element and character chunk. Most feeds a community manager polls (Google News, Google Alerts,
WordPress, news sites) are small, well-formed UTF-8 RSS 2.0 or Atom 1.0 documents using a handful
of elements. For those, this module reads the document with the C parser behind ElementTree and
then applies feedparser's own rules to the fields veille uses (entry id, link, title, text, author,
dates): the same date parser, URL joining, HTML guessing for RSS titles and the same text repairs
(`_cp1252`, the doubly-encoded UTF-8 fix), borrowed from feedparser itself rather than re-written.

It is deliberately narrow: anything it does not recognise (another encoding, a DOCTYPE, xml:base,
an unknown element or namespace inside an entry, a repeated field, markup inside a text element,
RSS 0.9x or RDF, Atom xhtml content, a malformed document...) returns None and the document goes
to feedparser, which stays the reference for everything broken or unusual. feedparser acts on element
names at any depth (an <item> inside <image> or <items> is an entry, a <title> inside <category> the
entry's title), so an element this path skips must be a leaf: one with children, anywhere, means
feedparser. The result is the small subset of feedparser's result dictionary that
`veille.sources.rss.entries` reads, so everything after the parse is shared.
`tests/sources/rss/test_fastpath.py` checks field by field that both agree on every document this path
accepts, over generated and nested feeds; `tests/shared/test_feed_fastpath_corpus.py` over the shared corpus.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import uses_relative
from xml.etree import ElementTree

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"

_XML_MEDIA_TYPES = frozenset(
    {
        "application/xml",
        "text/xml",
        "application/rss+xml",
        "application/atom+xml",
    }
)
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_XML_DECLARATION = re.compile(rb"""\A\s*<\?xml\s[^>]*?\?>""")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
# URLs that `urllib.parse.urljoin` returns unchanged whatever the base: an absolute http(s) URL with a
# plain host, a path without parameters and an optional non-empty query (its parse/unparse round trip
# is exact), or a URI whose scheme urljoin never resolves against a base (urn:, tag:, mailto:...).
_PLAIN_ABSOLUTE_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%!$&'()*+,=:@/-]*)?(?:\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]+)?"
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")

# Children of an RSS <item> that this path understands; anything else means feedparser.
_RSS_ITEM_TEXT = frozenset({"title", "link", "guid", "pubDate", "description", "author", CONTENT_ENCODED, DC_CREATOR})
_MEDIA = ("{http://search.yahoo.com/mrss/}", "{http://search.yahoo.com/mrss}")
# Elements that set none of the fields veille reads (checked against feedparser's handlers).
_RSS_ITEM_IGNORED = frozenset(
    {
        "comments",
        "enclosure",
        "source",
        "{http://wellformedweb.org/CommentAPI/}commentRss",
        "{http://purl.org/rss/1.0/modules/slash/}comments",
        *(prefix + name for prefix in _MEDIA for name in ("thumbnail", "content")),
    }
)
_ATOM_ENTRY_IGNORED = frozenset(prefix + "thumbnail" for prefix in _MEDIA)
_RSS_CHANNEL_IGNORED = frozenset(
    {
        ATOM + "link",
        *(
            "{http://purl.org/rss/1.0/modules/syndication/}" + name
            for name in ("updatePeriod", "updateFrequency", "updateBase")
        ),
    }
)
_ATOM_ENTRY_TEXT = frozenset(
    {ATOM + "id", ATOM + "title", ATOM + "published", ATOM + "updated", ATOM + "summary", ATOM + "content"}
)
_ATOM_TEXT_TYPES = {"text": "text/plain", "html": "text/html"}
_ATOM_PERSON = frozenset({ATOM + "name", ATOM + "email", ATOM + "uri"})
# What an RSS <image> may hold: feedparser keeps these in `feed.image` (its `inimage` context).
_RSS_IMAGE_PARTS = frozenset({"url", "title", "link", "width", "height", "description"})


class Unsupported(Exception):
    """The document is outside what this path reproduces exactly: use feedparser."""


def parse_plain_feed(body: bytes, base_url: str, content_type: str) -> dict[str, Any] | None:
    """feedparser's result (the fields veille reads) for a plain RSS 2.0 / Atom 1.0 document, or None."""
    try:
        if not _plain_document(body, content_type):
            return None
        root = ElementTree.fromstring(body)  # noqa: S314 - DOCTYPE refused above, no entity can be declared
        return _Reader(base_url).read(root)
    except (Unsupported, ElementTree.ParseError, ValueError, RecursionError):
        return None


def _plain_document(body: bytes, content_type: str) -> bool:
    """UTF-8 (or ASCII) as both the HTTP header and the XML declaration say, no DTD, no xml:base."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() not in _XML_MEDIA_TYPES:
        return False
    charset = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", params, re.IGNORECASE)
    if charset is not None and charset.group(1).lower() not in _UTF8_CHARSETS:
        return False
    if charset is None and media.strip().lower() == "text/xml" and not body.isascii():
        return False  # text/xml without a charset is US-ASCII for feedparser (RFC 3023)
    declaration = _XML_DECLARATION.match(body)
    if declaration is not None:
        encoding = _DECLARED_ENCODING.search(declaration.group(0))
        if encoding is not None and encoding.group(1).decode("ascii").lower() not in _UTF8_CHARSETS:
            return False
    elif body[:1] != b"<":
        return False  # a byte-order mark, leading junk or whitespace: feedparser's own handling
    return b"<!DOCTYPE" not in body and b"<!doctype" not in body and b"xml:base" not in body


class _Reader:
    """Walks a parsed tree the way feedparser's handlers would, for the fields veille reads."""

    def __init__(self, base_url: str) -> None:
        from feedparser.datetimes import _parse_date
        from feedparser.html import _cp1252
        from feedparser.mixin import _FeedParserMixin
        from feedparser.urls import _urljoin, make_safe_absolute_uri

        self.base = make_safe_absolute_uri("", base_url) or make_safe_absolute_uri(base_url) or ""
        self._cp1252 = _cp1252
        self._parse_date = _parse_date
        self._looks_like_html = _FeedParserMixin.looks_like_html
        self._urljoin = _urljoin

    def read(self, root: ElementTree.Element) -> dict[str, Any]:
        if root.tag == "rss" and root.get("version") == "2.0" and set(root.attrib) == {"version"}:
            return self._rss(root)
        if root.tag == ATOM + "feed":
            return self._atom(root)
        raise Unsupported(root.tag)

    # -- RSS 2.0 ------------------------------------------------------------------------------
    def _rss(self, root: ElementTree.Element) -> dict[str, Any]:
        channels = list(root)
        if len(channels) != 1 or channels[0].tag != "channel" or channels[0].attrib:
            raise Unsupported("rss without exactly one channel")
        channel = channels[0]
        feed: dict[str, Any] = {}
        entries = []
        for child in channel:
            if child.tag == "item":
                entries.append(self._rss_item(child))
            elif child.tag == "title" and "title" not in feed:
                self._text_field(feed, "title", child, "text/plain", guess_html=True)
            elif child.tag == "image":
                self._rss_image(child)
            elif ("}" in child.tag and child.tag not in _RSS_CHANNEL_IGNORED) or child.tag in (
                "title",
                "channel",
                "entry",
            ):
                raise Unsupported(child.tag)  # other namespaced elements can set feed fields
            else:
                self._skip(child)
        return {"version": "rss20", "feed": feed, "entries": entries, "bozo": False}

    def _rss_item(self, item: ElementTree.Element) -> dict[str, Any]:
        if item.attrib:
            raise Unsupported("item attributes")
        entry: dict[str, Any] = {}
        seen: set[str] = set()
        for child in item:
            tag = child.tag
            if tag in _RSS_ITEM_IGNORED:
                self._skip(child)
                continue
            if tag == "category":  # repeatable; a `domain` attribute changes feedparser's bookkeeping
                self._leaf(child, ())
                self._tag(entry, self._text(child), None, None)
                continue
            if tag not in _RSS_ITEM_TEXT or tag in seen or len(child):
                raise Unsupported(f"item/{tag}")
            seen.add(tag)
            if tag == "title":
                self._leaf(child, ())
                self._text_field(entry, "title", child, "text/plain", guess_html=True)
            elif tag == "link":
                self._leaf(child, ())
                link = self._link_fix(self._resolve(self._text(child)))
                entry["link"] = link
            elif tag == "guid":
                self._leaf(child, ("isPermaLink",))
                self._guid(entry, child, child.get("isPermaLink", "true") == "true")
            elif tag == "pubDate":
                self._leaf(child, ())
                self._date(entry, "published_parsed", child)
            elif tag == "description":
                self._leaf(child, ())
                self._text_field(entry, "summary", child, "text/html", guess_html=False)
            elif tag == CONTENT_ENCODED:
                self._leaf(child, ())
                entry["content"] = [{"type": "text/html", "value": self._text(child)}]
            else:  # author, dc:creator
                self._leaf(child, ())
                if "author" in entry:
                    raise Unsupported("two authors")
                entry["author"] = self._text(child)
        return entry

    def _rss_image(self, image: ElementTree.Element) -> None:
        """Read only to be sure it holds nothing feedparser would take for a feed or entry field."""
        if image.attrib:
            raise Unsupported("image attributes")
        for child in image:
            if child.tag not in _RSS_IMAGE_PARTS:
                raise Unsupported(f"image/{child.tag}")
            self._leaf(child, ())

    # -- Atom 1.0 -----------------------------------------------------------------------------
    def _atom(self, root: ElementTree.Element) -> dict[str, Any]:
        if any(not name.startswith("{http://www.w3.org/XML/1998/namespace}") for name in root.attrib):
            raise Unsupported("feed attributes")
        feed: dict[str, Any] = {}
        entries = []
        for child in root:
            if child.tag == ATOM + "entry":
                entries.append(self._atom_entry(child))
            elif child.tag == ATOM + "title" and "title" not in feed:
                self._atom_text(feed, "title", child)
            elif child.tag == ATOM + "author":
                self._atom_author(child)  # the feed's own author: not kept, but read to be sure it is one
            elif not child.tag.startswith(ATOM) or child.tag in (ATOM + "title", ATOM + "content", ATOM + "item"):
                raise Unsupported(child.tag)  # feedparser starts an entry at an <item> in any namespace it knows
            else:
                self._skip(child)
        return {"version": "atom10", "feed": feed, "entries": entries, "bozo": False}

    def _atom_entry(self, node: ElementTree.Element) -> dict[str, Any]:
        if node.attrib:
            raise Unsupported("entry attributes")
        entry: dict[str, Any] = {}
        seen: set[str] = set()
        for child in node:
            tag = child.tag
            if tag in _ATOM_ENTRY_IGNORED:
                self._skip(child)
                continue
            if tag == ATOM + "category":
                self._leaf(child, ("term", "scheme", "label"))
                if (child.text or "").strip():
                    raise Unsupported("category with text")
                self._tag(entry, child.get("term"), child.get("scheme"), child.get("label"))
                continue
            if tag == ATOM + "link":
                self._atom_link(entry, child)
                continue
            if tag == ATOM + "author":
                if "author" in seen:
                    raise Unsupported("two authors")
                seen.add("author")
                entry["author"] = self._atom_author(child)
                continue
            if tag not in _ATOM_ENTRY_TEXT or tag in seen:
                raise Unsupported(f"entry/{tag}")
            seen.add(tag)
            if tag == ATOM + "id":
                self._leaf(child, ())
                self._guid(entry, child, True)
            elif tag == ATOM + "title":
                self._atom_text(entry, "title", child)
            elif tag == ATOM + "published":
                self._leaf(child, ())
                self._date(entry, "published_parsed", child)
            elif tag == ATOM + "updated":
                self._leaf(child, ())
                self._date(entry, "updated_parsed", child)
            elif tag == ATOM + "summary":
                self._atom_text(entry, "summary", child)
            else:
                if "src" in child.attrib:
                    raise Unsupported("content src")
                detail: dict[str, Any] = {}
                self._atom_text(detail, "content", child)
                entry["content"] = [detail["content_detail"]]
        return entry

    def _atom_text(self, target: dict[str, Any], name: str, node: ElementTree.Element) -> None:
        self._leaf(node, ("type",))
        kind = _ATOM_TEXT_TYPES.get(node.get("type", "text").lower())
        if kind is None:
            raise Unsupported("atom text type")
        self._text_field(target, name, node, kind, guess_html=False)

    def _atom_link(self, entry: dict[str, Any], node: ElementTree.Element) -> None:
        self._leaf(node, ("href", "rel", "type", "title", "length", "hreflang"))
        href = node.get("href")
        if href is None:
            raise Unsupported("link without href")
        rel = node.get("rel", "alternate")
        kind = node.get("type", "application/atom+xml" if rel == "self" else "text/html").lower()
        if rel == "alternate" and kind in ("text/html", "application/xhtml+xml", "html", "xhtml"):
            entry["link"] = self._urljoin(self.base, href)

    def _atom_author(self, node: ElementTree.Element) -> str:
        if node.attrib or (node.text or "").strip():
            raise Unsupported("author attributes or text")
        parts: dict[str, str] = {}
        for child in node:
            if child.tag not in _ATOM_PERSON or child.tag in parts:
                raise Unsupported(f"author/{child.tag}")
            self._leaf(child, ())
            parts[child.tag] = (child.text or "").strip()  # feedparser pushes these "not expecting text": no repairs
        name, email = parts.get(ATOM + "name"), parts.get(ATOM + "email")
        if name and email:
            return f"{name} ({email})"
        return name or email or ""  # feedparser keeps the element's own (blank) text when there is no name or e-mail

    # -- feedparser's rules for one value ---------------------------------------------------------
    @staticmethod
    def _skip(node: ElementTree.Element) -> None:
        """An element this path does not read: only a leaf may be skipped, because feedparser acts on
        element names at any depth (an <item> in <image> is an entry, a <title> in <category> the
        entry's title...)."""
        if len(node):
            raise Unsupported(f"{node.tag} with children")

    @staticmethod
    def _leaf(node: ElementTree.Element, allowed: tuple[str, ...]) -> None:
        if len(node) or any(name not in allowed for name in node.attrib):
            raise Unsupported(f"{node.tag} with children or attributes")

    def _text(self, node: ElementTree.Element) -> str:
        """What feedparser's `pop` makes of an element's text: stripped, repaired, cp1252-mapped."""
        output = (node.text or "").strip()
        if _NON_ASCII.search(output) is None:
            return output  # both repairs below leave ASCII text as it is
        # UTF-8 that was read as ISO-8859-1 somewhere upstream ("Ã©" -> "é"), repaired as feedparser does
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        if _C1_CONTROLS.search(output) is None:
            return output
        return output.translate(self._cp1252)

    def _text_field(
        self, target: dict[str, Any], name: str, node: ElementTree.Element, kind: str, *, guess_html: bool
    ) -> None:
        value = self._text(node)
        if guess_html and kind == "text/plain" and self._looks_like_html(value):
            kind = "text/html"
        target[name] = value
        target[f"{name}_detail"] = {"type": kind, "value": value}

    def _guid(self, entry: dict[str, Any], node: ElementTree.Element, is_link: bool) -> None:
        value = self._text(node)
        if is_link:
            value = self._resolve(value)
            entry.setdefault("link", value)  # feedparser: a permalink guid is the link unless one came first
        entry["id"] = value

    @staticmethod
    def _tag(entry: dict[str, Any], term: str | None, scheme: str | None, label: str | None) -> None:
        """feedparser's `_add_tag`: an entry's `tags`, each (term, scheme, label) once, empty ones skipped."""
        tags = entry.setdefault("tags", [])
        value = {"term": term, "scheme": scheme, "label": label}
        if (term or scheme or label) and value not in tags:
            tags.append(value)

    def _resolve(self, value: str) -> str:
        """feedparser's `resolve_uri`, skipping urljoin where it provably returns its input."""
        if not value or _PLAIN_ABSOLUTE_URL.fullmatch(value):
            return value
        scheme = _SCHEME.match(value)
        if scheme is not None and "://" not in value and scheme.group(1).lower() not in uses_relative:
            return value
        joined: str = self._urljoin(self.base, value)
        return joined

    @staticmethod
    def _link_fix(value: str) -> str:
        return _LINK_REFERENCE.sub(r"&\g<1>", value.replace("&amp;", "&"))

    def _date(self, entry: dict[str, Any], name: str, node: ElementTree.Element) -> None:
        entry[name] = self._parse_date(self._text(node))
