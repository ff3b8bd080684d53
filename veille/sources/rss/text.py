"""Feed HTML and text fields turned into bounded, plain, terminal-safe text.

Everything a feed says is hostile until proven otherwise: markup is removed (the sanitiser, nh3,
drops scripts, iframes and `on*` handlers with their content, RELIABILITY E8), ANSI escapes and
control characters are stripped (E9), lone surrogates become U+FFFD so the text is valid UTF-8
(D13), and each field is cut at 64 KB (E11). Every step is linear in the input size: html5ever
(inside nh3) is quadratic in the nesting depth of block elements (measured: 20,000 nested divs
took 0.9 s, 40,000 took 4.7 s), so block tags are first flattened into `<br>` by a regex (keeping the
line breaks) and other tags are dropped, leaving nothing to nest (E7).
"""

from __future__ import annotations

import html
import re

import nh3

from veille.core.textsafe import ANSI_ESCAPE

MAX_FIELD = 64 * 1024  # characters kept per field (RELIABILITY E11)
MAX_HTML_INPUT = 4 * MAX_FIELD  # markup examined per field; the rest cannot survive the cut anyway

# Block-level tags become line breaks before sanitising (see the module docstring).
_BLOCK_TAG = re.compile(
    r"<\s*/?\s*(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|blockquote|pre|section|article|header|footer|aside|nav|"
    r"main|figure|figcaption|table|thead|tbody|tfoot|tr|td|th|caption|form|fieldset|address|details|"
    r"summary|center|hr|br)\b[^>]*>",
    re.IGNORECASE,
)
# Removed with their content: active content and things that are not text for a reader.
_DROP_WITH_CONTENT = {"script", "style", "iframe", "noscript", "template", "object", "embed", "svg", "math"}
# Any other tag is removed before sanitising, so nh3 never sees deep nesting (dir, menu, rt... are
# quadratic too); only the tags whose content must go are left for it to handle.
_OTHER_TAG = re.compile(r"<\s*/?\s*(?!(?:br|" + "|".join(sorted(_DROP_WITH_CONTENT)) + r")\b)[a-zA-Z][^>]*>")
_BR = re.compile(r"<br\s*/?>")
_TAG = re.compile(r"<[^>]*>")
# C0 controls except tab and newline, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# What the escape, control and surrogate passes of clean_text remove (ESC and CSI are controls).
_NEEDS_SCRUB = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\r]")
# A run of blanks, except a lone plain space (replacing each of those by itself was most of the cost).
_SPACES = re.compile(r"[\t\u00a0\u2000-\u200b\u3000][ \t\u00a0\u2000-\u200b\u3000]*| [ \t\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# What _SPACES needs besides a double space: scanning for it costs a fifth of the substitution, and most
# text has nothing to collapse (the substitution was a quarter of a parse worker's time on articles).
_ODD_BLANK = re.compile(r"[\t\u00a0\u2000-\u200b\u3000]")


def _has_blanks_to_collapse(text: str) -> bool:
    """Whether _SPACES would change `text`: it only matches an odd blank or a space followed by a blank."""
    return "  " in text or _ODD_BLANK.search(text) is not None


def _collapse_blanks(text: str) -> str:
    return _SPACES.sub(" ", text) if _has_blanks_to_collapse(text) else text


def _without_surrogates(text: str) -> str:
    """Lone surrogates as U+FFFD; the strict UTF-8 encoder finds them in C, the regex pass only runs then."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def clean_text(value: str | None, *, limit: int = MAX_FIELD, single_line: bool = False) -> str:
    """Plain text from a feed: no escapes, no control characters, valid UTF-8, at most `limit` chars."""
    if not value:
        return ""
    text = value[: limit * 2]
    if _NEEDS_SCRUB.search(text) is not None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = ANSI_ESCAPE.sub("", text)
        text = _CONTROL.sub("", text)
        text = _SURROGATE.sub("\ufffd", text)
    if single_line:
        text = _collapse_blanks(text.replace("\n", " ").replace("\t", " "))
        return text.strip()[:limit]
    if "\n" not in text:
        return _collapse_blanks(text).strip()[:limit]
    collapse = _has_blanks_to_collapse(text)
    lines = [(_SPACES.sub(" ", line) if collapse else line).strip() for line in text.split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text[:limit]


def html_to_text(fragment: str | None, *, limit: int = MAX_FIELD, single_line: bool = False) -> str:
    """Sanitise an HTML fragment with nh3, then reduce it to text in one linear pass."""
    if not fragment:
        return ""
    markup = fragment[:MAX_HTML_INPUT]
    if len(fragment) > MAX_HTML_INPUT and markup.rfind("<") > markup.rfind(">"):
        markup = markup[: markup.rfind("<")]  # do not leave half a tag to be shown as text
    flat = _without_surrogates(_OTHER_TAG.sub("", _BLOCK_TAG.sub("<br>", markup)))
    safe = _plain_serialised(flat)
    if safe is None:
        safe = nh3.clean(flat, tags={"br"}, attributes={}, clean_content_tags=_DROP_WITH_CONTENT, strip_comments=True)
    # In HTML a raw newline is a space; only <br> and block ends (already <br>) break lines.
    safe = _collapse_blanks(safe.replace("\r", " ").replace("\n", " "))
    text = html.unescape(_TAG.sub("", _BR.sub("\n", safe)))
    return clean_text(text, limit=limit, single_line=single_line)


def _plain_serialised(flat: str) -> str | None:
    """What nh3 returns for flattened markup that is only text and `<br>`, or None for anything else.

    Most feed HTML is that once flattened (paragraphs, links, emphasis), and sanitising it was most of a
    parse worker's time on full articles. With no other `<` there is nothing to drop: the sanitiser's
    output is the text with its character references decoded (as `html.unescape` does) and `&`, NBSP, `<`
    and `>` escaped again. NUL characters and references to code points that `html.unescape` drops but
    html5ever keeps (noncharacters) go to nh3, so that both paths give the same text."""
    if flat.count("<") != flat.count("<br>") or "\x00" in flat:
        return None
    if "&#" in flat and any(_reference_dropped(m) for m in _NUMERIC_REFERENCE.finditer(flat)):
        return None
    decode = html.unescape if "&" in flat else str
    return "<br>".join(
        decode(part).replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")
        for part in flat.split("<br>")
    )


_NUMERIC_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+))")


def _reference_dropped(match: re.Match[str]) -> bool:
    """A numeric reference `html.unescape` turns into nothing (html5ever keeps the character)."""
    hexadecimal, decimal = match.groups()
    number = int(hexadecimal, 16) if hexadecimal else int(decimal)
    return html.unescape(f"&#{number};") == ""


_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.)\s*$")


def _flat(text: str) -> str:
    """The text on one line. For `clean_text`'s output (lines stripped, blanks collapsed, at most one blank
    line in a row) this is `" ".join(text.split())`, at a fraction of the cost on a long article."""
    return text.replace("\n\n", "\n").replace("\n", " ")


def merge_summary_and_content(summary: str, content: str, *, limit: int = MAX_FIELD) -> str:
    """One text holding an entry's summary and its content, without saying twice what they share.

    News sites often put the lead paragraph in the summary (`description`) and the body in the
    content (`content:encoded`), sometimes repeating the lead, sometimes not; blogs put a cut of the
    body, ending in "…" or "[...]", in the summary. The rule: when one holds the other (white space
    aside), or the summary is a cut of the content's beginning, keep the longer one; otherwise the
    summary, a blank line, then the content.
    """
    if not summary or not content:
        return (summary or content)[:limit]
    flat_summary, flat_content = _flat(summary), _flat(content)
    if flat_summary in flat_content:
        return content[:limit]
    if flat_content in flat_summary:
        return summary[:limit]
    cut = _ELLIPSIS.sub("", flat_summary)
    if cut != flat_summary and cut and flat_content.startswith(cut):
        return content[:limit]
    return f"{summary}\n\n{content}"[:limit]
