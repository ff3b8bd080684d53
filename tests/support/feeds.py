"""Feed documents built in code for the feed tests: ordinary RSS/Atom and hostile ones.

Every hostile document here is written from its description in RELIABILITY.md (E1-E11), not copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape


@dataclass
class Entry:
    title: str = "Un titre"
    description: str = "Un texte"
    link: str | None = "https://example.org/a/1"
    guid: str | None = "guid-1"
    author: str | None = None
    pub_date: str | None = "Mon, 16 Nov 2026 10:00:00 GMT"
    raw: str = ""  # extra XML inside <item>, written as is
    cdata: bool = False  # description as CDATA (HTML inside)


@dataclass
class Feed:
    entries: list[Entry] = field(default_factory=lambda: [Entry()])
    title: str = "Le fil"
    encoding: str | None = "utf-8"  # XML declaration; None = no declaration
    doctype: str = ""

    def xml(self) -> str:
        items = "".join(_item(e) for e in self.entries)
        declaration = f'<?xml version="1.0" encoding="{self.encoding}"?>\n' if self.encoding else ""
        return (
            f'{declaration}{self.doctype}<rss version="2.0"><channel><title>{escape(self.title)}</title>'
            f"<link>https://example.org/</link><description>d</description>{items}</channel></rss>"
        )

    def bytes(self, codec: str | None = None) -> bytes:
        return self.xml().encode(codec or self.encoding or "utf-8")


def _item(entry: Entry) -> str:
    parts = [f"<title>{escape(entry.title)}</title>"]
    if entry.link is not None:
        parts.append(f"<link>{escape(entry.link)}</link>")
    if entry.guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(entry.guid)}</guid>')
    if entry.author is not None:
        parts.append(f"<author>{escape(entry.author)}</author>")
    if entry.pub_date is not None:
        parts.append(f"<pubDate>{entry.pub_date}</pubDate>")
    if entry.cdata:
        parts.append(f"<description><![CDATA[{entry.description}]]></description>")
    else:
        parts.append(f"<description>{escape(entry.description)}</description>")
    return "<item>" + "".join(parts) + entry.raw + "</item>"


def rss(n: int = 1, **kwargs: object) -> bytes:
    """A valid RSS 2.0 feed with `n` distinct entries, newest first (one hour apart)."""
    entries = [
        Entry(
            title=f"Article {i}",
            description=f"Texte {i}",
            link=f"https://example.org/a/{i}",
            guid=f"guid-{i}",
            pub_date=f"Mon, 16 Nov 2026 {23 - i % 24:02d}:{i % 60:02d}:00 GMT",
        )
        for i in range(n)
    ]
    return Feed(entries=entries, **kwargs).bytes()  # type: ignore[arg-type]


def atom(n: int = 1) -> bytes:
    entries = "".join(
        f'<entry><title type="html">Entr&amp;eacute;e {i}</title><id>urn:e:{i}</id>'
        f'<link href="/posts/{i}"/><updated>2026-11-16T10:{i % 60:02d}:00Z</updated>'
        f'<content type="html">&lt;p&gt;Bonjour {i}&lt;/p&gt;</content><author><name>Zoé</name></author></entry>'
        for i in range(n)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:base="https://blog.example.org/"><title>Blog</title><id>urn:blog</id>'
        f"<updated>2026-11-16T10:00:00Z</updated>{entries}</feed>"
    ).encode()


# --- hostile documents (RELIABILITY E1-E11) -------------------------------------------------------


def billion_laughs(single_line: bool = False) -> str:
    """E1: ten levels of ten references each."""
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    sep = "" if single_line else "\n"
    subset = sep.join(lines)
    return (
        f'<?xml version="1.0"?>{sep}<!DOCTYPE rss [{sep}{subset}{sep}]>{sep}<rss version="2.0"><channel>'
        f"<title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>"
    )


def quadratic_blowup(entity_kb: int = 100, references: int = 20_000) -> bytes:
    """E2: one large entity referenced many times (about 160 KB of input)."""
    value = "B" * (entity_kb * 1024)
    refs = "&a;" * references
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{value}">]><rss version="2.0"><channel>'
        f"<title>t</title><item><title>x</title><description>{refs}</description></item>"
        f"</channel></rss>"
    ).encode()


def xxe_file(path: str) -> bytes:
    """E3: an external entity naming a local file."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>'
        f'<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title>'
        f"<description>&xxe;</description></item></channel></rss>"
    ).encode()


def external_dtd(url: str) -> bytes:
    """E4: a DOCTYPE naming an external DTD (no entity declaration in the document itself)."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{url}">'
        f'<rss version="2.0"><channel><title>t</title><item><title>ok</title><guid>g1</guid>'
        f"</item></channel></rss>"
    ).encode()


def parameter_entity(url: str) -> bytes:
    """E4: an external parameter entity, expanded inside the internal subset."""
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % remote SYSTEM "{url}"> %remote;]>'
        f'<rss version="2.0"><channel><title>t</title><item><title>x</title></item></channel></rss>'
    ).encode()


def redos_authors(count: int = 20, size: int = 8000) -> bytes:
    """E5 (feedparser#562): author values that make the e-mail regex backtrack quadratically.

    Declared ISO-8859-1 (the bytes are ASCII) so that it goes to feedparser, not to the fast path
    (which never runs that regex): these tests are about bounding feedparser."""
    author = "a@" + "a." * (size // 2) + "!"
    entries = [Entry(title=f"t{i}", guid=f"g{i}", author=author) for i in range(count)]
    return Feed(entries=entries, encoding="iso-8859-1").bytes()


def deep_nesting(depth: int = 20_000) -> bytes:
    """E7: a description with `depth` nested divs."""
    html = "<div>" * depth + "profond" + "</div>" * depth
    return Feed(entries=[Entry(description=html, cdata=True)]).bytes()


ACTIVE_HTML = (
    '<p>Bonjour <script>alert("s")</script><iframe src="https://evil.example/">cadre</iframe>'
    '<a href="javascript:alert(1)" onclick="steal()">lien</a><img src=x onerror="boom()">'
    '<style>body{display:none}</style> <b onmouseover="x()">gras</b></p>'
)
ANSI_TEXT = "rouge \x1b[31mALERTE\x1b[0m \x1b]0;titre\x07 bip\x07 nul\x00 fin\x1b[2J"
BROKEN_TRUNCATED = Feed(entries=[Entry(guid=f"g{i}", title=f"T{i}") for i in range(3)]).xml()[:-60].encode()
NUL_BYTES = b'<?xml version="1.0"?><rss version="2.0"><channel><title>a\x00b</title><item>\x01<title>x\x00</title>'
GARBAGE = b"\x00\x01\x02 not xml at all <<<>>> &&& \xff\xfe"
HTML_LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Connexion</title></head><body><form>"
    b'<input name="user"><input type="password"></form></body></html>'
)
