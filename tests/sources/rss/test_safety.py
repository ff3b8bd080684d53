"""RELIABILITY E1-E4: entity declarations are refused before feedparser; external DTDs fetch nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import feeds
from tests.support.server import LocalServer, Response
from veille.core.errors import PermanentFetchError
from veille.core.models import ErrorKind
from veille.sources.rss.entries import parse_document
from veille.sources.rss.safety import check_xml_safety, find_entity_declaration, root_element_start


def refused(body: bytes, content_type: str | None = None) -> bool:
    try:
        check_xml_safety(body, content_type)
    except PermanentFetchError as exc:
        assert exc.kind is ErrorKind.UNSAFE_XML
        return True
    return False


@pytest.mark.parametrize("single_line", [False, True])
def test_billion_laughs_is_refused(single_line: bool) -> None:
    body = feeds.billion_laughs(single_line).encode()
    assert refused(body)
    with pytest.raises(PermanentFetchError) as info:
        parse_document(body, "https://example.org/feed")
    assert info.value.kind is ErrorKind.UNSAFE_XML


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_billion_laughs_in_other_encodings_is_refused(codec: str) -> None:
    body = feeds.billion_laughs().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{codec}"?>')
    assert refused(body.encode(codec))


@pytest.mark.parametrize("codec", ["utf-7", "cp037", "utf-16-le", "shift_jis"])
def test_encoding_named_only_by_http_charset_is_checked(codec: str) -> None:
    body = feeds.billion_laughs().replace('<?xml version="1.0"?>', "").encode(codec)
    assert refused(body, f"application/rss+xml; charset={codec}")


def test_quadratic_blowup_is_refused_before_parsing() -> None:
    body = feeds.quadratic_blowup()
    assert len(body) > 150_000
    with pytest.raises(PermanentFetchError) as info:
        parse_document(body, "https://example.org/feed")
    assert info.value.kind is ErrorKind.UNSAFE_XML


def test_xxe_sentinel_never_appears(tmp_path) -> None:
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("SENTINEL-7f3a")
    with pytest.raises(PermanentFetchError) as info:
        parse_document(feeds.xxe_file(str(sentinel)), "https://example.org/feed")
    assert "SENTINEL" not in str(info.value) and "SENTINEL" not in repr(info.value)


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE rss [<!entity a "x">]>',  # lower case
        '<!-- c --><?pi x?><!DOCTYPE rss [<!-- ] > --><!ENTITY a "x">]>',  # comment hiding a bracket
        '<!DOCTYPE rss SYSTEM "a>b[" [<!ENTITY a "x">]>',  # quoted > and [ before the subset
        '<!DOCTYPE rss SYSTEM "<![CDATA[" [<!ENTITY a "x">]>',  # fake CDATA start inside a literal
        '</x>\n<!ENTITY a "BBBB">\n<!DOCTYPE x>',  # junk before: feedparser's own split would keep it
        '<!DOCTYPE rss [<!ATTLIST a b CDATA "]>"><!ENTITY a "x">]>',  # quoted ]> in an attribute default
    ],
)
def test_tricky_prologs_are_refused(prolog: str) -> None:
    body = f'<?xml version="1.0"?>{prolog}<rss version="2.0"><channel><title>&a;</title></channel></rss>'
    assert refused(body.encode())


def test_entity_text_inside_cdata_in_the_body_is_allowed() -> None:
    feed = feeds.Feed(
        entries=[feeds.Entry(description='Exemple XXE : <!ENTITY xxe SYSTEM "file:///etc/passwd">', cdata=True)]
    )
    body = feed.bytes()
    assert not refused(body)
    parsed = parse_document(body, "https://example.org/feed")
    assert parsed.entries[0].text.startswith("Exemple XXE")  # as HTML, <!ENTITY...> is a bogus comment


def test_entity_in_the_body_outside_cdata_is_refused() -> None:
    body = b'<rss version="2.0"><channel><title>t</title><!ENTITY a "x"></channel></rss>'
    assert refused(body)


def test_scan_is_linear_with_many_cdata_sections() -> None:
    # Quadratic code would take minutes here; the test only checks the answer.
    body = "<rss>" + "<![CDATA[x]]>" * 100_000 + "<!ENTITY a 'x'>"
    assert find_entity_declaration(body) is not None
    assert find_entity_declaration("<rss>" + "<![CDATA[" * 100_000) is None


def test_netscape_doctype_without_entities_is_allowed() -> None:
    feed = feeds.Feed(
        doctype='<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    )
    assert not refused(feed.bytes())


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>![]\"'-?ab ENTITYCDA\n")), max_size=200))
def test_root_start_is_within_bounds_and_never_hides_a_prolog_entity(text: str) -> None:
    root = root_element_start(text)
    assert 0 <= root <= len(text)
    if "<!ENTITY" in text[:root].upper():
        assert find_entity_declaration(text) is not None


def _dtd_server(server: LocalServer) -> None:
    server.route("/evil.dtd", Response(200, '<!ENTITY leak "LEAKED">', {"Content-Type": "application/xml-dtd"}))
    server.route("/evil.xml", Response(200, "LEAKED", {"Content-Type": "application/xml"}))


def test_external_dtd_is_never_fetched(server: LocalServer) -> None:
    _dtd_server(server)
    parsed = parse_document(feeds.external_dtd(server.url("/evil.dtd")), "https://example.org/feed")
    assert [e.title for e in parsed.entries] == ["ok"]
    assert server.requests == []


def test_external_parameter_and_general_entities_are_refused_without_a_request(server: LocalServer) -> None:
    _dtd_server(server)
    for body in (
        feeds.parameter_entity(server.url("/evil.dtd")),
        feeds.xxe_file(server.url("/evil.xml").replace("http://", "")).replace(b"file://", b"http://"),
    ):
        with pytest.raises(PermanentFetchError) as info:
            parse_document(body, "https://example.org/feed")
        assert info.value.kind is ErrorKind.UNSAFE_XML
    assert server.requests == []
