"""RELIABILITY E7-E9, E11, B10: feed HTML becomes bounded, plain, terminal-safe text."""

from __future__ import annotations

from html import unescape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import feeds
from veille.sources.rss.entries import parse_document
from veille.sources.rss.text import MAX_FIELD, clean_text, html_to_text, merge_summary_and_content


def test_deep_nesting_raises_no_recursion_error() -> None:
    for tag in ("div", "blockquote", "dir", "menu", "rt", "span", "a", "table"):
        html = f"<{tag}>" * 20_000 + "profond" + f"</{tag}>" * 20_000
        assert html_to_text(html) == "profond"


def test_deep_nesting_through_the_parser() -> None:
    parsed = parse_document(feeds.deep_nesting(), "https://example.org/feed")
    assert parsed.entries[0].text == "profond"


def test_active_content_is_stripped() -> None:
    text = html_to_text(feeds.ACTIVE_HTML)
    assert text == "Bonjour lien gras"
    for word in ("alert", "script", "iframe", "cadre", "onclick", "onerror", "javascript", "display", "<", ">"):
        assert word not in text


def test_block_tags_become_line_breaks_and_entities_are_decoded() -> None:
    assert html_to_text("<p>Un &amp; deux</p><p>trois<br>quatre</p>cinq\nsix &lt;b&gt;") == (
        "Un & deux\n\ntrois\nquatre\ncinq six <b>"
    )


def test_ansi_and_control_characters_are_removed() -> None:
    text = clean_text(feeds.ANSI_TEXT)
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert text == "rouge ALERTE bip nul fin"
    assert "\x1b" not in html_to_text(f"<p>{feeds.ANSI_TEXT}</p>")
    assert clean_text("a\x85b\x9bc\x7fd") == "abcd"  # C1 controls (\x9b is a one-byte CSI) and DEL


def test_lone_surrogates_become_replacement_characters() -> None:
    text = clean_text("a\ud800b") + html_to_text("<p>c\udfffd</p>")
    assert text == "a\ufffdbc\ufffdd"
    text.encode("utf-8")  # valid UTF-8


def test_emoji_and_newlines_survive() -> None:
    assert clean_text("Bravo 😀\r\nsuite\n\n\n\nfin") == "Bravo 😀\nsuite\n\nfin"


def test_oversized_fields_are_truncated() -> None:
    big = "x" * (5 * 1024 * 1024)
    assert len(clean_text(big)) == MAX_FIELD
    assert len(html_to_text(f"<p>{big}</p>")) == MAX_FIELD
    feed = feeds.Feed(entries=[feeds.Entry(description=big, title="t" * 200_000)])
    entry = parse_document(feed.bytes(), "https://example.org/feed").entries[0]
    assert len(entry.text) == MAX_FIELD and len(entry.title) == MAX_FIELD


def test_markup_in_a_plain_text_title_is_kept_literally() -> None:
    feed = feeds.Feed(entries=[feeds.Entry(title="<b>Promo</b> </a> <tg-spoiler>x")])
    entry = parse_document(feed.bytes(), "https://example.org/feed").entries[0]
    assert entry.title == "<b>Promo</b> </a> <tg-spoiler>x"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_input_gives_clean_valid_text(value: str) -> None:
    for text in (clean_text(value), html_to_text(value)):
        text.encode("utf-8")
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in text)
        assert "\x1b" not in text and len(text) <= MAX_FIELD


@pytest.mark.parametrize(
    ("summary", "content", "stored"),
    [
        ("Le chapô.", "Le corps.", "Le chapô.\n\nLe corps."),  # the lead only in the summary: both, lead first
        ("Le chapô.", "Le chapô.\n\nLe corps.", "Le chapô.\n\nLe corps."),  # repeated by the content: once
        ("Le chapô\n\net la suite.", "Le chapô et la suite. Le corps.", "Le chapô et la suite. Le corps."),
        ("Le début du corps […]", "Le début du corps et la fin.", "Le début du corps et la fin."),  # a cut
        ("Le début du corps...", "Le début du corps et la fin.", "Le début du corps et la fin."),
        ("Un long résumé qui dit tout.", "Un long résumé", "Un long résumé qui dit tout."),
        ("", "Le corps.", "Le corps."),
        ("Le chapô.", "", "Le chapô."),
    ],
)
def test_summary_and_content_are_stored_without_repeating_what_they_share(
    summary: str, content: str, stored: str
) -> None:
    assert merge_summary_and_content(summary, content) == stored


def test_merged_text_stays_within_the_field_limit() -> None:
    assert len(merge_summary_and_content("a" * 10, "b" * 10, limit=15)) == 15


_MARKUP_ATOMS = [
    "Chez Gégé",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\xa0",
    "<p>",
    "</p>",
    "<br/>",
    "<b>",
    "</b>",
    '<a href="/x">',
    "</a>",
    "&amp;",
    "&lt;",
    "&gt;",
    "&lt;br&gt;",
    "&nbsp;",
    "&eacute;",
    "&#233;",
    "&#xE9;",
    "&#10;",
    "&#9;",
    "&#13;",
    "&#128;",
    "&#0;",
    "&#xD800;",
    "&#1;",
    "&#xFDD0;",
    "&copy2020",
    "&notin",
    "&bogus;",
    "&",
    "<",
    ">",
    "< 3",
    "a>b",
    "x",
    "é",
    "\x0c",
    "\x00",
    "<!-- c -->",
    "<script>x</script>",
    "</3>",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_MARKUP_ATOMS), max_size=20))
def test_plain_markup_reads_as_the_sanitiser_reads_it(atoms: list[str]) -> None:
    """Text and line breaks skip nh3 (most of a parse worker's time on articles): the text must be the same."""
    import nh3

    from veille.sources.rss import text as module

    fragment = "".join(atoms)
    flat = module._SURROGATE.sub("\ufffd", module._OTHER_TAG.sub("", module._BLOCK_TAG.sub("<br>", fragment)))
    sanitised = nh3.clean(
        flat, tags={"br"}, attributes={}, clean_content_tags=module._DROP_WITH_CONTENT, strip_comments=True
    )
    assert html_to_text(fragment) == _text_of_serialised(sanitised)


def test_an_article_body_skips_the_sanitiser() -> None:
    from veille.sources.rss.text import _plain_serialised

    body = '<p><strong>Le chapô.</strong></p><p>Chez Gégé &amp; fils&#8217;s <a href="/x">lien</a>&nbsp;!</p>'
    flat = "<br><br>Le chapô.<br><br><br>Chez Gégé &amp; fils&#8217;s lien&nbsp;!<br>"
    assert _plain_serialised(flat) == "<br><br>Le chapô.<br><br><br>Chez Gégé &amp; fils’s lien&nbsp;!<br>"
    assert html_to_text(body) == "Le chapô.\n\nChez Gégé & fils’s lien !"
    assert _plain_serialised("a<!-- b -->") is None and _plain_serialised("<script>x</script>") is None


def _text_of_serialised(safe: str) -> str:
    """html_to_text's steps after the sanitiser."""
    from veille.sources.rss import text as module

    safe = module._SPACES.sub(" ", safe.replace("\r", " ").replace("\n", " "))
    return clean_text(unescape(module._TAG.sub("", module._BR.sub("\n", safe))))


_BLANKS_AND_WORDS = st.lists(
    st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u200b", "\u3000", "a", "é", "\ud800", "word"]),
    max_size=30,
).map("".join)


@given(_BLANKS_AND_WORDS)
def test_the_screens_before_the_blank_and_surrogate_passes_change_no_answer(value: str) -> None:
    """html_to_text and clean_text skip their regex passes when a cheap scan finds nothing for them to do."""
    from veille.sources.rss import text

    assert text._collapse_blanks(value) == text._SPACES.sub(" ", value)
    assert text._without_surrogates(value) == text._SURROGATE.sub("\ufffd", value)
