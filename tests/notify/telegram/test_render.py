"""Rendering: escaping (B1), length and splitting (B2), link schemes (B9), markup in titles (B10)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fake_telegram import EntityError, parse_telegram_html
from veille.core.incidents import Urgency
from veille.notify.base import HitSummary, Notification
from veille.notify.telegram.render import (
    TELEGRAM_LIMIT,
    render_merged,
    render_notification,
    safe_link,
    utf16_len,
)


def make(
    title: str = "Avis négatifs en hausse",
    *,
    text: str = "c'est nul",
    url: str | None = "https://ex.org/1",
    author: str | None = "@bob",
    reasons: tuple[str, ...] = ("risque 0.91",),
    hits: int = 1,
    incident_id: int | None = 42,
    urgency: Urgency = Urgency.HIGH,
    lang: str = "fr",
    client_name: str = "Chez Gégé",
) -> Notification:
    summaries = tuple(
        HitSummary(
            hit_id=i,
            source_kind="rss",
            text=text,
            url=url,
            author=author,
            author_followers=1200,
            engagement="312 partages",
            sentiment="neg -0.82",
            published_at=None,
        )
        for i in range(hits)
    )
    return Notification(
        outbox_id=1,
        incident_id=incident_id,
        tag=f"#INC-{incident_id}",
        kind="opened",
        client_id="gege",
        client_name=client_name,
        contact="alice",
        urgency=urgency,
        silent=False,
        title=title,
        reasons=reasons,
        hits=summaries,
        lang=lang,
    )


def visible(parts: tuple[str, ...]) -> str:
    return "".join(parse_telegram_html(p) for p in parts)


_pieces = st.one_of(
    st.sampled_from(
        [
            "<",
            ">",
            "&",
            '"',
            "'",
            "/",
            "=",
            ";",
            "#",
            "\u200f",
            "\u202e",
            "😀",
            "👩‍👩‍👧",
            "\ud800",
            "\udfff",
            "&amp;",
            "<b>",
            "</a>",
            "<tg-spoiler>",
            "&#0;",
            "\x00",
            "\n",
            "javascript:",
            "https://ex.org/",
            " ",
        ]
    ),
    st.characters(),
)
nasty = st.lists(_pieces, max_size=120).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=nasty, text=nasty, author=nasty, reason=nasty, url=nasty, client=nasty)
def test_b1_any_outside_text_renders_valid_telegram_html(
    title: str, text: str, author: str, reason: str, url: str, client: str
) -> None:
    n = make(title, text=text, author=author, reasons=(reason,), url=url, client_name=client, hits=2)
    rendered = render_notification(n)
    for part in rendered.parts:
        parse_telegram_html(part)  # raises EntityError where Telegram would answer 400
        assert utf16_len(part) <= TELEGRAM_LIMIT
        part.encode("utf-8")  # no lone surrogate survives (it could not even be sent)
    for link in re.findall(r'<a href="([^"]*)"', "".join(rendered.parts)):
        assert link.startswith(("http://", "https://"))


def test_b2_emoji_flood_is_split_on_utf16_units_without_cutting_pairs() -> None:
    rendered = render_notification(make("😀" * 3000))
    assert len(rendered.parts) >= 2
    for part in rendered.parts:
        assert utf16_len(part) <= TELEGRAM_LIMIT
        part.encode("utf-8")
        parse_telegram_html(part)
    assert visible(rendered.parts).count("😀") == 3000


def test_b2_huge_snippet_is_bounded_with_a_truncation_note() -> None:
    big = "<b>&amp; " * 2500  # 22 KB, escapes triple its size
    n = make(big, reasons=tuple(big for _ in range(4)))
    rendered = render_notification(n, max_parts=3)
    assert rendered.truncated
    assert len(rendered.parts) == 3
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in rendered.parts)
    assert "…tronqué, voir <code>veille hits --incident 42</code>" in rendered.parts[-1]
    for part in rendered.parts:
        parse_telegram_html(part)


def test_b2_plain_fallback_is_split_too() -> None:
    rendered = render_notification(make("x" * 9000), html_mode=False)
    assert not rendered.html
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in rendered.parts)


def test_b9_only_http_and_https_become_links() -> None:
    for bad in (
        "javascript:alert(1)",
        "data:text/html,<script>x</script>",
        "file:///etc/passwd",
        "tg://resolve?domain=x",
        "JaVaScRiPt:alert(1)",
        "https://",
        "http://ex.org/a b",
    ):
        assert safe_link(bad) is None
        rendered = render_notification(make(url=bad))
        joined = "".join(rendered.parts)
        assert "<a " not in joined
        assert "&lt;script&gt;" in joined or "<script>" not in joined
    assert safe_link("https://ex.org/?q=1&r=<2>") == "https://ex.org/?q=1&r=<2>"
    rendered = render_notification(make(url='https://ex.org/?q="><b>x'))
    assert '<a href="https://ex.org/?q=&quot;&gt;&lt;b&gt;x">' in rendered.parts[0]
    parse_telegram_html(rendered.parts[0])


def test_b10_markup_in_titles_is_shown_literally() -> None:
    title = "<b>gras</b> </a> <tg-spoiler>x</tg-spoiler> <i>unbalanced"
    rendered = render_notification(make(title))
    assert title in visible(rendered.parts)
    assert "<tg-spoiler>" not in rendered.parts[0]


def test_english_and_merged_rendering() -> None:
    rendered = render_notification(make(lang="en"))
    assert "urgency high" in visible(rendered.parts)
    merged = render_merged([make(incident_id=i) for i in range(1, 30)])
    text = visible(merged.parts)
    assert "29 alertes groupées" in text
    assert "#INC-29" in text


def test_entity_validator_of_the_fake_is_strict() -> None:
    for bad in ("a < b", "<x>y</x>", "<b>y", "&nbsp;", "<a href='x'>y</a>"):
        try:
            parse_telegram_html(bad)
        except EntityError:
            continue
        raise AssertionError(bad)
