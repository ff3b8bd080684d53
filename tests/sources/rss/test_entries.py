"""One document -> entries -> Items: D12-D15, E6, E10, identity, encodings, Google links."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import feeds
from tests.support.feeds import Entry, Feed
from veille.core.errors import PermanentFetchError
from veille.core.matching import Matcher
from veille.core.models import ErrorKind
from veille.sources.rss.entries import (
    ParsedEntry,
    ParsedFeed,
    external_id,
    keep_matching,
    parse_document,
    published_at,
    repair_charset,
    select_newest,
    to_items,
    trim_entries,
)
from veille.sources.rss.safety import check_xml_safety

URL = "https://example.org/feed.xml"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def items_of(body: bytes, content_type: str | None = None, **kwargs: object) -> list:
    headers = {"Content-Type": content_type} if content_type else {}
    return to_items(parse_document(body, URL, headers, **kwargs), now=NOW)  # type: ignore[arg-type]


def kind_of(body: bytes, content_type: str | None = None) -> ErrorKind:
    with pytest.raises(PermanentFetchError) as info:
        parse_document(body, URL, {"content-type": content_type} if content_type else {})
    return info.value.kind


def test_rss_entries_become_items() -> None:
    items = items_of(feeds.rss(3))
    assert [i.external_id for i in items] == ["guid-0", "guid-1", "guid-2"]
    first = items[0]
    assert (first.title, first.text, first.url) == ("Article 0", "Texte 0", "https://example.org/a/0")
    assert first.published_at == datetime(2026, 11, 16, 23, 0, tzinfo=UTC)
    assert first.extra == {"feed_title": "Le fil"}


def test_atom_entries_resolve_relative_links_and_strip_html() -> None:
    items = items_of(feeds.atom(2), "application/atom+xml")
    assert items[0].url == "https://blog.example.org/posts/0"
    assert items[0].title == "Entrée 0"
    assert items[0].text == "Bonjour 0"
    assert items[0].author == "Zoé"
    assert items[0].external_id == "urn:e:0"


# --- D14 identity --------------------------------------------------------------------------------


def test_identity_is_guid_then_link_then_hash() -> None:
    body = Feed(
        entries=[
            Entry(guid="g1", link="https://example.org/1"),
            Entry(guid=None, link="https://example.org/2", title="B"),
            Entry(guid=None, link=None, title="C", description="texte C"),
        ]
    ).bytes()
    keys = [i.external_id for i in items_of(body)]
    expected_hash = "sha256:" + hashlib.sha256(b"C\ntexte C").hexdigest()
    assert keys == ["g1", "https://example.org/2", expected_hash]


def test_duplicate_guids_in_one_document_give_one_item() -> None:
    body = Feed(entries=[Entry(guid="same", title="new"), Entry(guid="same", title="old")]).bytes()
    items = items_of(body)
    assert [(i.external_id, i.title) for i in items] == [("same", "new")]


def test_reused_guid_with_new_content_keeps_its_key() -> None:
    first = items_of(Feed(entries=[Entry(guid="g", description="v1")]).bytes())
    second = items_of(Feed(entries=[Entry(guid="g", description="v2")]).bytes())
    assert first[0].external_id == second[0].external_id == "g"
    assert (first[0].text, second[0].text) == ("v1", "v2")


def test_overlong_keys_are_hashed_to_fit_the_column() -> None:
    entry = ParsedEntry("x" * 600, None, None, "t", "b", None, None)
    assert external_id(entry) == "sha256:" + hashlib.sha256(b"x" * 600).hexdigest()


def test_non_http_links_are_dropped_but_still_identify() -> None:
    body = Feed(entries=[Entry(guid=None, link="javascript:alert(1)")]).bytes()
    item = items_of(body)[0]
    assert item.url is None
    assert item.external_id == "javascript:alert(1)"


def test_google_alerts_links_are_unwrapped() -> None:
    link = "https://www.google.com/url?rct=j&sa=t&url=https://www.exemple.fr/article&ct=ga&usg=AOv"
    item = items_of(Feed(entries=[Entry(link=link, guid=None)]).bytes())[0]
    assert item.url == "https://www.exemple.fr/article"
    assert item.external_id == link  # identity stays the raw link


# --- D15 dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pub_date",
    [
        None,
        "Sun, 01 Jan 2099 00:00:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Fri, 31 Dec 1989 23:00:00 GMT",
        "hier soir",
        "32/13/2026",
        "",
    ],
)
def test_unusable_dates_become_none(pub_date: str | None) -> None:
    body = Feed(entries=[Entry(pub_date=pub_date)]).bytes()
    assert items_of(body)[0].published_at is None


def test_dates_are_converted_to_utc() -> None:
    body = Feed(entries=[Entry(pub_date="Mon, 16 Nov 2026 10:00:00 +0200")]).bytes()
    assert items_of(body)[0].published_at == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def test_published_at_bounds() -> None:
    assert published_at(NOW.timestamp() + 3600, NOW) is not None  # clock skew of an hour is fine
    assert published_at(NOW.timestamp() + 2 * 86400, NOW) is None
    assert published_at(1e20, NOW) is None


# --- E6 entry cap --------------------------------------------------------------------------------


def test_only_the_newest_entries_are_kept() -> None:
    body = feeds.rss(2000)
    parsed = parse_document(body, URL, max_entries=200, now=NOW.timestamp())
    assert parsed.total_entries == 2000 and len(parsed.entries) == 200


def test_selection_ignores_future_dates_and_keeps_document_order() -> None:
    now = NOW.timestamp()
    stamps = [now - 10, 4_000_000_000.0, now - 5, None, now - 1]
    assert select_newest(stamps, 2, now) == [2, 4]
    assert select_newest([None, None, None], 2, now) == [0, 1]


def test_driver_cap_applies_after_parsing() -> None:
    parsed = parse_document(feeds.rss(10), URL)
    assert len(to_items(parsed, now=NOW, max_entries=3)) == 3


# --- D12 / E10 classification --------------------------------------------------------------------


def test_html_page_is_not_a_feed() -> None:
    assert kind_of(feeds.HTML_LOGIN_PAGE, "text/html; charset=utf-8") is ErrorKind.NOT_A_FEED
    assert kind_of(feeds.HTML_LOGIN_PAGE) is ErrorKind.NOT_A_FEED


def test_feed_served_as_text_html_is_still_read() -> None:
    assert len(items_of(feeds.rss(2), "text/html")) == 2


def test_xml_that_is_not_a_feed() -> None:
    assert kind_of(b'<?xml version="1.0"?><note><to>x</to></note>') is ErrorKind.NOT_A_FEED


def test_empty_body_is_not_a_feed() -> None:
    assert kind_of(b"   \n") is ErrorKind.NOT_A_FEED


@pytest.mark.parametrize("body", [feeds.GARBAGE, b"<<<<", b"\x00" * 100])
def test_garbage_is_a_parse_error(body: bytes) -> None:
    assert kind_of(body) in (ErrorKind.PARSE_ERROR, ErrorKind.NOT_A_FEED)
    assert kind_of(b"just some text, no markup at all") in (ErrorKind.PARSE_ERROR, ErrorKind.NOT_A_FEED)


def test_truncated_feed_keeps_what_was_parsed() -> None:
    parsed = parse_document(feeds.BROKEN_TRUNCATED, URL)
    assert parsed.bozo is not None and parsed.version.startswith("rss")
    assert [e.guid for e in parsed.entries][:2] == ["g0", "g1"]


def test_nul_and_control_bytes_are_handled() -> None:
    parsed = parse_document(feeds.NUL_BYTES, URL)
    assert parsed.version
    for entry in parsed.entries:
        assert "\x00" not in entry.title and "\x01" not in entry.title


# --- D13 encodings -------------------------------------------------------------------------------


def test_declared_latin1_but_utf8_bytes() -> None:
    body = Feed(entries=[Entry(title="Café crème 😀")], encoding="iso-8859-1").xml().encode("utf-8")
    assert items_of(body)[0].title == "Café crème 😀"
    assert items_of(body, "application/rss+xml; charset=ISO-8859-1")[0].title == "Café crème 😀"


def test_declared_utf8_but_latin1_bytes() -> None:
    body = Feed(entries=[Entry(title="Crêpes à Noël")], encoding="utf-8").xml().encode("latin-1")
    assert items_of(body)[0].title == "Crêpes à Noël"


def test_a_few_invalid_bytes_do_not_garble_the_rest() -> None:
    body = Feed(entries=[Entry(title="Été XX brûlé")]).bytes().replace(b"XX", b"\xff\xfe")
    title = items_of(body)[0].title
    assert title.startswith("Été") and title.endswith("brûlé")
    title.encode("utf-8")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "windows-1252", "iso-8859-15"])
def test_other_declared_encodings(codec: str) -> None:
    body = Feed(entries=[Entry(title="Noël à Brest €")], encoding=codec).bytes()
    title = items_of(body)[0].title
    assert title == "Noël à Brest €"


def test_no_content_type_means_utf8_not_latin1() -> None:
    body = Feed(entries=[Entry(title="Gérard")], encoding=None).xml().encode()
    assert items_of(body)[0].title == "Gérard"


def test_repair_charset_leaves_ascii_and_wide_encodings_alone() -> None:
    assert repair_charset(b"<rss/>", None) == (b"<rss/>", "application/xml")
    wide = "<rss/>".encode("utf-16")
    assert repair_charset(wide, "text/xml; charset=UTF-16") == (wide, "text/xml; charset=utf-16")


def test_wire_round_trip() -> None:
    parsed = parse_document(feeds.atom(3), URL)
    assert ParsedFeed.from_wire(parsed.to_wire()) == parsed


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_feeds_never_raise_anything_but_fetch_errors(data: st.DataObject) -> None:
    body = bytearray(feeds.rss(3) if data.draw(st.booleans()) else feeds.atom(3))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del body[position:]
            if not body:
                body = bytearray(b"<")
        else:
            body[position:position] = data.draw(
                st.sampled_from(
                    [b"<!ENTITY", b"&amp;", b"<![CDATA[", b"]]>", b"\x00", b"\xff\xfe", b"<item>", b"</", b"&#xD800;"]
                )
            )
    try:
        parsed = parse_document(bytes(body), URL)
    except PermanentFetchError:
        return
    for item in to_items(parsed, now=NOW):
        (item.title + item.text).encode("utf-8")


@pytest.mark.parametrize("oldest_first", [False, True])
def test_huge_feeds_are_trimmed_before_parsing_but_keep_the_newest(oldest_first: bool) -> None:
    count = 5000
    entries = [
        Entry(title=f"T{i}", guid=f"g{i}", pub_date=None, raw=f"<dc:date>{_date(i)}</dc:date>") for i in range(count)
    ]
    if oldest_first:
        entries.reverse()
    body = (
        Feed(entries=entries)
        .xml()
        .replace('<rss version="2.0">', '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">')
    )
    parsed = parse_document(body.encode(), URL, max_entries=100, now=NOW.timestamp())
    assert parsed.total_entries == count and parsed.bozo is None
    assert sorted(int(e.guid[1:]) for e in parsed.entries) == list(range(100))  # g0 is the newest


def test_trim_keeps_a_well_formed_document() -> None:
    body, total = trim_entries(feeds.rss(50), 5)
    assert total == 50 and body.count(b"<item>") == 20
    assert parse_document(body, URL).bozo is None
    assert trim_entries(feeds.rss(20), 5) == (feeds.rss(20), 0)


def _date(i: int) -> str:
    return datetime.fromtimestamp(NOW.timestamp() - 60 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refused_before_trimming(body: bytes) -> bool:
    try:
        check_xml_safety(body)
    except PermanentFetchError:
        return True
    return False


def test_trimming_cannot_smuggle_an_entity_declaration_into_the_prolog() -> None:
    keep = 5
    decoys = "</item>" * (2 * keep)  # the cut starts inside this comment...
    before = "".join(f"<item><title>{i}</title></item>" for i in range(4 * keep))
    after = "".join(f"<item><title>{i}</title></item>" for i in range(2 * keep - 1))  # puts the cut end there
    smuggled = '<![CDATA[</item> --><!ENTITY a "BBBB">]>]]>'  # ...and ends inside this CDATA section
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!-- {decoys} -->]>'  # the cut removes this -->
        f'<rss version="2.0"><channel><title>t</title>{before}<item><description>{smuggled}'
        f"</description></item>{after}</channel></rss>"
    ).encode()
    assert not refused_before_trimming(body)
    assert b"<!ENTITY" in trim_entries(body, keep)[0]
    with pytest.raises(PermanentFetchError) as info:
        parse_document(body, URL, max_entries=keep)
    assert info.value.kind is ErrorKind.UNSAFE_XML


# -- selection and matching in the parse worker (keep_matching) ---------------------------------
KEYWORDS = ("chez gégé", "@chezgege", "pizza -recette")
WORDS = st.sampled_from(["Chez Gégé", "chez gege", "@chezgege", "pizza", "recette", "tapis", "le", "bon", "!"])


def matched_in_daemon(feed: ParsedFeed, max_entries: int | None) -> list[tuple[str, tuple[str, ...], bool]]:
    """What the pipeline stores without worker-side matching: to_items, then the matcher."""
    matcher = Matcher(KEYWORDS)
    kept = []
    for item in to_items(feed, now=NOW, max_entries=max_entries):
        match = matcher.match(f"{item.title}\n{item.text}")
        if match.matched or item.direct:
            kept.append((item.external_id, match.terms, item.direct or match.direct))
    return kept


def matched_in_worker(feed: ParsedFeed, max_entries: int | None) -> list[tuple[str, tuple[str, ...], bool]]:
    selected = keep_matching(feed, Matcher(KEYWORDS), now=NOW.timestamp(), max_entries=max_entries)
    items = to_items(ParsedFeed.from_wire(selected.to_wire()), now=NOW, max_entries=max_entries)
    assert all(item.matched_terms is not None for item in items)
    return [(item.external_id, item.matched_terms or (), item.direct) for item in items]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["g1", "g2", "g3", "g4"]), st.lists(WORDS, max_size=6).map(" ".join), st.integers(0, 48)
        ),
        max_size=12,
    ),
    st.one_of(st.none(), st.integers(1, 6)),
)
def test_worker_side_matching_keeps_exactly_what_the_daemon_would(
    rows: list[tuple[str, str, int]], max_entries: int | None
) -> None:
    """Same hits whatever the duplicates (first key wins) and the per-source cap (newest first)."""
    entries = [
        Entry(guid=guid, title=text, description="avis", pub_date=f"Fri, 20 Nov 2026 {hour % 24:02d}:00:00 GMT")
        for guid, text, hour in rows
    ]
    feed = parse_document(Feed(entries=entries).bytes(), URL, {})
    assert matched_in_worker(feed, max_entries) == matched_in_daemon(feed, max_entries)


def test_a_duplicate_key_that_matches_is_not_resurrected() -> None:
    """The first entry of a key wins even when only a later copy matches (as to_items decides)."""
    feed = parse_document(
        Feed(entries=[Entry(guid="g", title="sans rapport"), Entry(guid="g", title="Chez Gégé, super")]).bytes(),
        URL,
        {},
    )
    assert matched_in_worker(feed, None) == matched_in_daemon(feed, None) == []
    mention = parse_document(Feed(entries=[Entry(guid="m", title="merci @chezgege")]).bytes(), URL, {})
    assert matched_in_worker(mention, None) == [("m", ("@chezgege",), True)]
