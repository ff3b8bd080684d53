"""The fast path for plain feeds gives exactly what feedparser gives, or declines.

Each accepted document is parsed twice through `parse_document`, once with the fast path and once
with feedparser only, and the two `ParsedFeed`s must be equal field by field. Hypothesis builds
RSS 2.0 and Atom documents from hostile field values (markup, entities, odd URLs, mojibake, C1
characters, dates in several formats); the shared corpus is checked in tests/shared.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import feeds
from veille.sources.rss.entries import parse_document, repair_charset, trim_entries
from veille.sources.rss.fastpath import parse_plain_feed

URL = "https://exemple.fr/flux/actu.xml"
RSS_TYPE = "application/rss+xml"


def accepted(body: bytes, content_type: str = RSS_TYPE) -> bool:
    """Whether parse_document would take the fast path for this body (same preparation steps)."""
    prepared, _ = trim_entries(body, 200)
    prepared, content_type = repair_charset(prepared, content_type)
    return parse_plain_feed(prepared, URL, content_type) is not None


def assert_same_as_feedparser(body: bytes, content_type: str = RSS_TYPE) -> None:
    headers = {"content-type": content_type}
    fast = parse_document(body, URL, headers, now=1.8e9)
    reference = parse_document(body, URL, headers, now=1.8e9, fast=False)
    assert fast == reference


def rss_document(items: list[str], channel_extra: str = "", namespaces: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<rss version="2.0"{namespaces}><channel><title>Actu &amp; avis</title>'
        f"<link>https://exemple.fr/</link>{channel_extra}{''.join(items)}</channel></rss>"
    ).encode()


NAMESPACES = (
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:media="http://search.yahoo.com/mrss/"'
)


def atom_document(entries: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        '<title type="text">Alertes Google</title><id>tag:google.com,2005:reader/user/1/state</id>'
        f"{''.join(entries)}</feed>"
    ).encode()


# -- documents written by hand: the shapes users poll --------------------------------------------
GOOGLE_NEWS_ITEM = (
    "<item><title>Chez Gégé : la pizzeria rouvre - Ouest-France</title>"
    "<link>https://news.google.com/rss/articles/CBMiSGh0dHBzOi8vd3d3Lm91ZXN0LWZyYW5jZS5mci9hcnRpY2xlLmh0bWzSAQA?oc=5</link>"
    '<guid isPermaLink="false">CBMiSGh0dHBzOi8vd3d3</guid><pubDate>Mon, 23 Nov 2026 07:45:00 GMT</pubDate>'
    '<description>&lt;a href="https://news.google.com/rss/articles/CBMi?oc=5" target="_blank"&gt;Chez Gégé&lt;/a&gt;'
    '&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;Ouest-France&lt;/font&gt;</description>'
    '<source url="https://www.ouest-france.fr">Ouest-France</source></item>'
)
WORDPRESS_ITEM = (
    "<item><title>Nouveau tapis &#8211; soldes</title><link>https://tapis-royal.fr/?p=12</link>"
    "<comments>https://tapis-royal.fr/?p=12#respond</comments><dc:creator><![CDATA[Zoé]]></dc:creator>"
    "<pubDate>Sun, 22 Nov 2026 18:00:00 +0000</pubDate><category><![CDATA[Soldes]]></category>"
    '<guid isPermaLink="false">https://tapis-royal.fr/?p=12</guid>'
    "<description><![CDATA[Le résumé [&#8230;]]]></description>"
    "<content:encoded><![CDATA[<p>Le texte <b>entier</b> de l'article</p>]]></content:encoded>"
    '<media:thumbnail url="https://tapis-royal.fr/t.jpg"/></item>'
)
GOOGLE_ALERTS_ENTRY = (
    "<entry><id>tag:google.com,2013:googlealerts/feed:1029384756</id>"
    '<title type="html">Avis sur &lt;b&gt;Cabinet Ostéo&lt;/b&gt; Lemoine</title>'
    '<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://avis.fr/osteo&amp;ct=ga"/>'
    "<published>2026-11-23T06:00:00Z</published><updated>2026-11-23T06:00:00Z</updated>"
    '<content type="html">Un &lt;b&gt;excellent&lt;/b&gt; ostéopathe</content>'
    "<author><name></name></author></entry>"
)


WORDPRESS_IMAGE = (
    "<image><url>https://tapis-royal.fr/logo-32.png</url><title>Tapis Royal</title>"
    "<link>https://tapis-royal.fr</link><width>32</width><height>32</height></image>"
)
RSS_ITEM = "<item><title>Chez Gégé</title><link>https://exemple.fr/1</link><guid>https://exemple.fr/1</guid></item>"
ATOM_ENTRY = '<entry><id>tag:exemple.fr,1</id><title>Chez Gégé</title><link href="https://exemple.fr/1"/></entry>'


@pytest.mark.parametrize(
    "body",
    [
        rss_document([GOOGLE_NEWS_ITEM] * 3),
        rss_document(
            [WORDPRESS_ITEM],
            '<atom:link href="https://tapis-royal.fr/feed/" rel="self" type="application/rss+xml"/>',
            NAMESPACES,
        ),
        atom_document([GOOGLE_ALERTS_ENTRY]),
        feeds.rss(30),
        feeds.atom(5).replace(b' xml:base="https://blog.example.org/"', b""),
        rss_document([GOOGLE_NEWS_ITEM], WORDPRESS_IMAGE),
        atom_document(["<author><name>Zoé</name><uri>https://exemple.fr/</uri></author>", GOOGLE_ALERTS_ENTRY]),
    ],
    ids=[
        "google-news",
        "wordpress",
        "google-alerts",
        "generated-rss",
        "atom-relative-links",
        "rss-channel-image",
        "atom-feed-author",
    ],
)
def test_usual_feeds_take_the_fast_path_and_agree(body: bytes) -> None:
    assert accepted(body)
    assert_same_as_feedparser(body)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (feeds.Feed(encoding="iso-8859-1").bytes(), RSS_TYPE),  # another declared encoding
        (feeds.rss(2), "application/rss+xml; charset=windows-1252"),
        (feeds.rss(2), "text/html"),  # feedparser's non-XML media type handling
        (
            feeds.Feed(
                doctype='<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
            ).bytes(),
            RSS_TYPE,
        ),
        (feeds.atom(2), RSS_TYPE),  # xml:base changes how links resolve
        (
            rss_document(
                [
                    '<item><title>x</title><itunes:author xmlns:itunes="http://www.itunes.com/dtds/'
                    'podcast-1.0.dtd">A</itunes:author></item>'
                ]
            ),
            RSS_TYPE,
        ),  # an unknown namespace
        (rss_document(["<item><title>a</title><title>b</title></item>"]), RSS_TYPE),  # a repeated field
        (rss_document(["<item><description><p>du XHTML brut</p></description></item>"]), RSS_TYPE),
        (rss_document(["<item><title>a</title>"]), RSS_TYPE),  # malformed: feedparser's loose parser
        (
            b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            b'xmlns="http://purl.org/rss/1.0/"><channel><title>t</title></channel></rdf:RDF>',
            RSS_TYPE,
        ),
        (b'<rss version="0.91"><channel><title>t</title></channel></rss>', RSS_TYPE),
        (
            atom_document(
                [
                    '<entry><id>x</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
                    "<p>x</p></div></content></entry>"
                ]
            ),
            RSS_TYPE,
        ),
    ],
    ids=[
        "latin1",
        "charset-header",
        "html-type",
        "doctype",
        "xml-base",
        "itunes",
        "repeated",
        "raw-xhtml",
        "truncated",
        "rdf",
        "rss091",
        "atom-xhtml",
    ],
)
def test_anything_unusual_goes_to_feedparser(body: bytes, content_type: str) -> None:
    assert not accepted(body, content_type)
    try:
        reference = parse_document(body, URL, {"content-type": content_type}, now=1.8e9, fast=False)
    except Exception as exc:
        with pytest.raises(type(exc)):
            parse_document(body, URL, {"content-type": content_type}, now=1.8e9)
        return
    assert parse_document(body, URL, {"content-type": content_type}, now=1.8e9) == reference


@pytest.mark.parametrize(
    "body",
    [
        atom_document(['<item><title>Un item</title><link href="https://exemple.fr/2"/></item>', ATOM_ENTRY]),
        atom_document(["<item/>", ATOM_ENTRY]),  # even empty, an <item> is an entry for feedparser
        atom_document([f"<wrap>{ATOM_ENTRY}</wrap>"]),
        rss_document([f"<wrap>{RSS_ITEM}</wrap>"]),
        rss_document([f"<items>{RSS_ITEM}</items>"]),
        rss_document([RSS_ITEM], f"<image><url>https://exemple.fr/i.png</url>{RSS_ITEM}</image>"),
        atom_document([f"<author><name>a</name><title>Titre de l'auteur</title></author>{ATOM_ENTRY}"]),
        atom_document(
            ['<entry><id>x</id><category term="c"><title>Titre dans la catégorie</title></category></entry>']
        ),
        rss_document([RSS_ITEM], "<textInput><title>Chercher</title><name>q</name></textInput>"),
    ],
    ids=[
        "atom-item",
        "atom-empty-item",
        "atom-wrapped-entry",
        "rss-wrapped-item",
        "rss-items-item",
        "item-in-image",
        "title-in-feed-author",
        "title-in-entry-category",
        "title-in-textinput",
    ],
)
def test_an_unread_element_with_children_goes_to_feedparser(body: bytes) -> None:
    """feedparser acts on element names at any depth, so an element this path skips must be a leaf."""
    assert not accepted(body, "application/atom+xml")
    headers = {"content-type": "application/atom+xml"}
    assert parse_document(body, URL, headers, now=1.8e9) == parse_document(body, URL, headers, now=1.8e9, fast=False)


# -- generated documents: the two readers must agree whenever the fast one accepts --------------
TEXT_PIECES = st.sampled_from(
    [
        "Chez Gégé",
        "pizza",
        " ",
        "  ",
        "\n",
        "\t",
        "<b>gras</b>",
        "<p>",
        "</p>",
        "<br/>",
        "&amp;",
        "&eacute;",
        "&#233;",
        "&nbsp;",
        "&bogus;",
        "é",
        "Ã©",
        "\u0080",
        "\u0092",
        "€",
        "😥",
        "<script>x()</script>",
        "a < b",
        "5 > 3",
        '"',
        "'",
        "</em>",
        "<unknowntag>",
        "http://x.fr/?a=1&b=2",
        "\x1b[31m",
        "\u200b",
    ]
)
TEXT = st.lists(TEXT_PIECES, max_size=8).map("".join)
URLS = st.sampled_from(
    [
        "https://exemple.fr/a/1",
        "http://exemple.fr/a?b=1&c=2",
        "https://exemple.fr/a;p?q=1",
        "/relatif/2",
        "relatif",
        "../haut",
        "https://exemple.fr/a/../b",
        "HTTPS://Exemple.fr/A",
        "urn:uuid:1234",
        "tag:g.com,2013:x",
        "mailto:a@b.fr",
        "https://exemple.fr/a?",
        "https://exemple.fr/a#frag",
        "https:///trois",
        "",
        " https://e.fr/x ",
        "javascript:alert(1)",
        "https://exemple.fr/é",
        "//autre.fr/x",
        "https://exemple.fr:8443/x?y=1#z",
        "https://exemple.fr/a?x=&amp;y",
        "ftp://exemple.fr/f",
    ]
)
DATES = st.sampled_from(
    [
        "Mon, 23 Nov 2026 07:45:00 GMT",
        "Mon, 23 Nov 2026 07:45:00 +0100",
        "23 Nov 2026 07:45 EST",
        "2026-11-23T07:45:00Z",
        "2026-11-23T07:45:00+01:00",
        "2026-11-23",
        "lundi 23 novembre",
        "",
        "Sun, 31 Feb 2026 25:99:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Fri, 31 Dec 2099 00:00:00 GMT",
    ]
)


@st.composite
def rss_items(draw: st.DrawFn) -> str:
    parts = []
    for tag in draw(
        st.permutations(
            [
                "title",
                "link",
                "guid",
                "pubDate",
                "description",
                "author",
                "content:encoded",
                "dc:creator",
                "category",
                "category2",  # a second <category>: repeatable
                "media:thumbnail",
            ]
        )
    ):
        if not draw(st.booleans()):
            continue
        if tag == "link":
            parts.append(f"<link>{escape(draw(URLS))}</link>")
        elif tag == "guid":
            permalink = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"']))
            parts.append(f"<guid{permalink}>{escape(draw(st.one_of(URLS, TEXT)))}</guid>")
        elif tag == "pubDate":
            parts.append(f"<pubDate>{escape(draw(DATES))}</pubDate>")
        elif tag == "media:thumbnail":
            parts.append('<media:thumbnail url="https://exemple.fr/t.jpg"/>')
        elif draw(st.booleans()):
            name = tag.rstrip("2")
            parts.append(f"<{name}><![CDATA[{draw(TEXT).replace(']]>', '')}]]></{name}>")
        else:
            name = tag.rstrip("2")
            parts.append(f"<{name}>{escape(draw(TEXT))}</{name}>")
    return "<item>" + "".join(parts) + "</item>"


@st.composite
def atom_entries(draw: st.DrawFn) -> str:
    parts = []
    for tag in draw(
        st.permutations(
            ["id", "title", "link", "link2", "published", "updated", "summary", "content", "author", "cat", "cat2"]
        )
    ):
        if not draw(st.booleans()):
            continue
        if tag.startswith("link"):
            rel = draw(st.sampled_from(["", ' rel="alternate"', ' rel="self"', ' rel="enclosure"']))
            kind = draw(st.sampled_from(["", ' type="text/html"', ' type="application/pdf"', ' type="HTML"']))
            parts.append(f"<link{rel}{kind} href={quoteattr(draw(URLS))}/>")
        elif tag.startswith("cat"):
            attributes = "".join(
                f" {name}={quoteattr(draw(TEXT))}" for name in ("term", "scheme", "label") if draw(st.booleans())
            )
            parts.append(f"<category{attributes}/>")
        elif tag == "id":
            parts.append(f"<id>{escape(draw(st.one_of(URLS, TEXT)))}</id>")
        elif tag in ("published", "updated"):
            parts.append(f"<{tag}>{escape(draw(DATES))}</{tag}>")
        elif tag == "author":
            name = draw(st.one_of(st.none(), TEXT))
            email = draw(st.one_of(st.none(), st.just("zoe@exemple.fr")))
            inner = (f"<name>{escape(name)}</name>" if name is not None else "") + (
                f"<email>{email}</email>" if email else ""
            )
            parts.append(f"<author>{inner}</author>")
        else:
            kind = draw(st.sampled_from(["", ' type="text"', ' type="html"']))
            parts.append(f"<{tag}{kind}>{escape(draw(TEXT))}</{tag}>")
    return "<entry>" + "".join(parts) + "</entry>"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rss_items(), min_size=1, max_size=4))
def test_generated_rss_agrees_with_feedparser(items: list[str]) -> None:
    body = rss_document(items, "", NAMESPACES)
    if accepted(body):
        assert_same_as_feedparser(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(atom_entries(), min_size=1, max_size=4))
def test_generated_atom_agrees_with_feedparser(entries: list[str]) -> None:
    body = atom_document(entries)
    if accepted(body, "application/atom+xml"):
        assert_same_as_feedparser(body, "application/atom+xml")


def test_generated_documents_mostly_take_the_fast_path() -> None:
    """The agreement tests above would pass vacuously if the fast path refused everything."""
    assert accepted(rss_document([GOOGLE_NEWS_ITEM, WORDPRESS_ITEM], "", NAMESPACES))
    assert accepted(
        atom_document([GOOGLE_ALERTS_ENTRY, "<entry><id>x</id><title>t</title></entry>"]), "application/atom+xml"
    )


# -- known elements nested inside unknown ones, and unknown inside known ---------------------------
NESTED_TEXT = st.sampled_from(
    ["", "Chez Gégé", "https://exemple.fr/n/1", "Mon, 23 Nov 2026 07:45:00 GMT", "2026-11-23"]
)
RSS_NAMES = [
    *("item", "title", "link", "guid", "pubDate", "description", "author", "category", "image", "url", "source"),
    *("wrap", "items", "textInput", "skipHours", "cloud", "entry", "channel"),
]
ATOM_NAMES = [
    *("entry", "item", "title", "link", "id", "published", "updated", "summary", "content", "author", "name"),
    *("email", "category", "wrap", "items", "source", "feed"),
]


def nested(names: list[str]) -> st.SearchStrategy[str]:
    """Small element trees over `names`: leaves with text, or elements holding 1 to 3 others."""

    def leaf(name: str, text: str) -> str:
        if name == "link" and "entry" in names:  # an Atom link is an href, not text
            return '<link href="https://exemple.fr/n/2"/>'
        return f"<{name}>{escape(text)}</{name}>"

    leaves = st.builds(leaf, st.sampled_from(names), NESTED_TEXT)
    return st.recursive(
        leaves,
        lambda inner: st.builds(
            lambda name, kids: f"<{name}>{''.join(kids)}</{name}>",
            st.sampled_from(names),
            st.lists(inner, min_size=1, max_size=3),
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nested_rss_elements_agree_with_feedparser_or_are_handed_off(data: st.DataObject) -> None:
    extra = data.draw(st.lists(nested(RSS_NAMES), min_size=1, max_size=3))
    inside = data.draw(st.lists(nested(RSS_NAMES), max_size=2))
    item = f"<item><title>Chez Gégé</title>{''.join(inside)}<link>https://exemple.fr/1</link></item>"
    pieces = data.draw(st.permutations([item, RSS_ITEM, *extra]))
    body = rss_document(pieces)
    if accepted(body):
        assert_same_as_feedparser(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nested_atom_elements_agree_with_feedparser_or_are_handed_off(data: st.DataObject) -> None:
    extra = data.draw(st.lists(nested(ATOM_NAMES), min_size=1, max_size=3))
    inside = data.draw(st.lists(nested(ATOM_NAMES), max_size=2))
    entry = f"<entry><id>tag:exemple.fr,2</id>{''.join(inside)}<title>Chez Gégé</title></entry>"
    body = atom_document(data.draw(st.permutations([entry, ATOM_ENTRY, *extra])))
    if accepted(body, "application/atom+xml"):
        assert_same_as_feedparser(body, "application/atom+xml")


def test_nested_documents_are_not_all_handed_off() -> None:
    """Leaves the fast path skips (and the <image> and feed <author> it reads) keep it: the two tests
    above are not vacuous."""
    assert accepted(rss_document([RSS_ITEM], f"<wrap>texte</wrap><items/>{WORDPRESS_IMAGE}"))
    assert accepted(atom_document(["<wrap/>", "<author><name>Zoé</name></author>", ATOM_ENTRY]), "application/atom+xml")
