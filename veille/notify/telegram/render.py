"""Notification -> Telegram HTML parts. Pure functions, no I/O.

Why so careful: every string here comes from the outside (feed titles, authors, snippets, URLs) and
Telegram rejects the whole message with a 400 "can't parse entities" on one stray `<` (B1), so
everything is escaped; markup inside titles is shown literally (B10); only http/https URLs become
links (B9, feedparser passes `javascript:` through verbatim); and messages are split at 4096 UTF-16
units (Telegram counts UTF-16 code units, an emoji is 2) without cutting a tag, an entity or a
surrogate pair, in a bounded number of parts (B2).

A message is built from sections of `Block`s. A block renders as balanced markup around escaped
text, so cutting between blocks is always safe, and a block too long for a part is cut inside its
*raw* text (before escaping), which can never cut an entity.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from veille.core.i18n import N_, wording
from veille.core.incidents import Urgency, summary_line
from veille.notify.base import HitSummary, Notification

TELEGRAM_LIMIT = 4096  # UTF-16 code units per message
DEFAULT_MAX_PARTS = 4
SNIPPET_CHARS = 600  # per hit; the CLI shows the full text
MAX_HITS = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean(text: str | None) -> str:
    """Make outside text sendable: pair or replace lone surrogates, drop control characters.

    A lone surrogate cannot be encoded as UTF-8 at all, so it would fail the request before Telegram
    even parses it.
    """
    if not text:
        return ""
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _CONTROL.sub("", fixed)


def escape(text: str | None) -> str:
    return html.escape(clean(text), quote=False)


def safe_link(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL with a host, else None (shown as text instead)."""
    if not url:
        return None
    candidate = clean(url).strip()
    if any(ch.isspace() for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate


@dataclass(frozen=True, slots=True)
class Block:
    """Outside `text` wrapped in at most one tag, with literal `pre`/`post` text around it."""

    text: str
    tag: str | None = None  # "b", "i", "code" or "a" (with href)
    href: str | None = None
    pre: str = ""
    post: str = ""

    def html(self, text: str | None = None) -> str:
        body = escape(self.text if text is None else text)
        if self.tag == "a" and self.href:
            body = f'<a href="{html.escape(self.href, quote=True)}">{body}</a>'
        elif self.tag and self.tag != "a":
            body = f"<{self.tag}>{body}</{self.tag}>"
        return escape(self.pre) + body + escape(self.post)

    def plain(self, text: str | None = None) -> str:
        body = clean(self.text if text is None else text)
        if self.tag == "a" and self.href:
            body = f"{body} ({clean(self.href)})"
        return clean(self.pre) + body + clean(self.post)


Section = Sequence[Block]


@dataclass(frozen=True, slots=True)
class Rendered:
    parts: tuple[str, ...]
    truncated: bool = False
    html: bool = True


# The message's words as English msgids (translated per chat through the wording catalogue).
_TEXTS = {
    "opened": N_("Bad buzz"),
    "reply_opened": N_("Awaiting an answer"),  # an incident of the reply inbox is no bad buzz
    "update": N_("Update"),
    "repeat": N_("Reminder"),
    "escalated": N_("Escalation"),
    "resolved": N_("Resolved"),
    "digest": N_("Digest"),
    "notice": N_("veille notice"),
    "report": N_("Monthly report"),
    "high": N_("urgency high"),
    "low": N_("urgency low"),
    "why": N_("Why:"),
    "hits": N_("Posts:"),
    "link": N_("Open"),
    "truncated": N_("…truncated, see "),
    "ack": N_("I'm on it"),
    "snooze": N_("Remind me in 1 h"),
    "mute": N_("Mute 24 h"),
    "show": N_("Show hits"),
    "answered": N_("Replied"),
    "no_reply": N_("No reply needed"),
    "dup": N_("⚠ possible duplicate"),
}


def text(lang: str, key: str) -> str:
    """One of the message's words in `lang` (an unknown key, e.g. a new kind, is shown as is)."""
    return wording(lang)._(_TEXTS[key]) if key in _TEXTS else key


def cli_hint(notification: Notification) -> str:
    if notification.incident_id is not None:
        return f"veille hits --incident {notification.incident_id}"
    if notification.client_id:
        return f"veille hits --client {clean(notification.client_id)}"
    return "veille hits"


def _header(n: Notification) -> list[Block]:
    lang = n.lang
    icon = {"resolved": "✅", "report": "📊"}.get(n.kind) or ("🔴" if n.urgency == Urgency.HIGH else "🟠")
    reply = n.kind == "opened" and n.extra.get("cause") in ("reply_due", "reply")
    kind = text(lang, "reply_opened" if reply else n.kind)
    blocks = [Block(f"{kind} {n.tag}".strip(), "b", pre=f"{icon} ")]
    client = n.client_name or n.client_id
    if client:
        blocks.append(Block(client, pre=" · "))
    blocks.append(Block(text(lang, "high" if n.urgency == Urgency.HIGH else "low"), pre=" · ", post="\n"))
    if n.possible_duplicate:
        blocks.append(Block(text(lang, "dup"), "i", post="\n"))
    blocks.append(Block(n.title, "b", post="\n"))
    if n.summary is not None:
        blocks.append(Block(summary_line(n.summary, lang), "i", post="\n"))
    return blocks


def _hit_section(index: int, hit: HitSummary, lang: str) -> list[Block]:
    meta = [hit.source_kind]
    if hit.author:
        who = hit.author
        if hit.author_followers is not None:
            followers = wording(lang).ngettext("{n} follower", "{n} followers", hit.author_followers)
            who += f" ({followers.format(n=hit.author_followers)})"
        meta.append(who)
    if hit.engagement:
        meta.append(wording(lang).text(hit.engagement))
    if hit.sentiment:
        meta.append(wording(lang).text(hit.sentiment))  # "unscored (es)" is translated
    snippet = clean(hit.text)
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[:SNIPPET_CHARS].rstrip() + "…"
    blocks = [Block(" · ".join(meta), "i", pre=f"\n{index}. ", post="\n"), Block(snippet, post="\n")]
    link = safe_link(hit.url)
    if link:
        blocks.append(Block(text(lang, "link"), "a", href=link, post="\n"))
    elif hit.url:
        blocks.append(Block(hit.url, "code", post="\n"))  # shown, never clickable (B9)
    return blocks


def sections(n: Notification) -> list[list[Block]]:
    """The message as sections; a split prefers section boundaries."""
    out: list[list[Block]] = [_header(n)]
    if n.reasons:
        # a report's lines are its figures, not the reasons of an alert
        reasons = [] if n.kind == "report" else [Block(text(n.lang, "why"), "b", pre="\n", post="\n")]
        reasons += [Block(wording(n.lang).text(reason), pre="• ", post="\n") for reason in n.reasons]
        out.append(reasons)
    if n.hits:
        out.append([Block(text(n.lang, "hits"), "b", pre="\n")])
        for index, hit in enumerate(n.hits[:MAX_HITS], 1):
            out.append(_hit_section(index, hit, n.lang))
        if len(n.hits) > MAX_HITS:
            more = len(n.hits) - MAX_HITS
            out.append(
                [Block(wording(n.lang).ngettext("and {n} more", "and {n} more", more).format(n=more), "i", pre="\n")]
            )
    return out


def render_notification(
    n: Notification, *, html_mode: bool = True, limit: int = TELEGRAM_LIMIT, max_parts: int = DEFAULT_MAX_PARTS
) -> Rendered:
    """HTML parts (or plain-text parts for the one fallback resend after a 400)."""
    note = _truncation_note(n.lang, cli_hint(n))
    return split(sections(n), html_mode=html_mode, limit=limit, max_parts=max_parts, note=note)


def render_merged(
    notifications: Sequence[Notification],
    *,
    html_mode: bool = True,
    limit: int = TELEGRAM_LIMIT,
    max_parts: int = DEFAULT_MAX_PARTS,
) -> Rendered:
    """One digest for a burst to one chat (B7): each alert's header, most urgent first."""
    lang = notifications[0].lang if notifications else "fr"
    ordered = sorted(notifications, key=lambda n: n.urgency != Urgency.HIGH)
    count = len(notifications)
    merged = wording(lang).ngettext("{n} alert merged for this chat", "{n} alerts merged for this chat", count)
    out: list[list[Block]] = [[Block(merged.format(n=count), "b", post="\n")]]
    for n in ordered:
        header = [Block("", post="\n"), *_header(n)]
        if n.reasons:
            header.append(Block("; ".join(wording(n.lang).text(r) for r in n.reasons), "i", post="\n"))
        out.append(header)
    note = _truncation_note(lang, "veille alerts")
    return split(out, html_mode=html_mode, limit=limit, max_parts=max_parts, note=note)


def _truncation_note(lang: str, hint: str) -> Block:
    return Block(hint, "code", pre="\n" + text(lang, "truncated"))


def split(parts_sections: Iterable[Section], *, html_mode: bool, limit: int, max_parts: int, note: Block) -> Rendered:
    """Pack sections into messages of at most `limit` UTF-16 units and at most `max_parts` parts.

    Every part keeps room for the truncation note, so appending it never overflows.
    """
    render = Block.html if html_mode else Block.plain
    note_text = render(note)
    budget = limit - utf16_len(note_text)
    if budget < 64:
        raise ValueError("limit too small for the truncation note")
    parts: list[str] = []
    current = ""

    def fits(value: str) -> bool:
        return utf16_len(value) <= budget

    def flush() -> None:
        nonlocal current
        if current:
            parts.append(current)
            current = ""

    for section in parts_sections:
        whole = "".join(render(block) for block in section)
        if fits(current + whole):
            current += whole
            continue
        flush()
        if fits(whole):
            current = whole
            continue
        for block in section:
            rendered = render(block)
            if fits(current + rendered):
                current += rendered
                continue
            flush()
            if fits(rendered):
                current = rendered
                continue
            for piece in _cut_block(block, render, budget):
                flush()
                current = piece
    flush()
    truncated = len(parts) > max_parts
    if truncated:
        parts = parts[:max_parts]
        parts[-1] += note_text
    return Rendered(tuple(part.strip("\n") or "…" for part in parts) or ("…",), truncated, html_mode)


def _cut_block(block: Block, render: object, budget: int) -> list[str]:
    """Cut an oversized block inside its raw text, preferring whitespace; each piece is balanced."""
    assert callable(render)
    raw = clean(block.text)
    pieces: list[str] = []
    start = 0
    while start < len(raw):
        low, high = start + 1, len(raw)
        best = start + 1
        while low <= high:  # the longest prefix whose rendered form fits
            mid = (low + high) // 2
            if utf16_len(render(block, raw[start:mid])) <= budget:
                best, low = mid, mid + 1
            else:
                high = mid - 1
        end = best
        if end < len(raw):
            space = raw.rfind(" ", start + 1, end)
            newline = raw.rfind("\n", start + 1, end)
            cut = max(space, newline)
            if cut > start + (end - start) // 2:
                end = cut + 1
        pieces.append(render(block, raw[start:end]))
        start = end
    return pieces
