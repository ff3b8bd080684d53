"""Refuse XML that declares entities, before feedparser sees it (RELIABILITY E1, E2, E3).

Entity declarations are the mechanism behind billion laughs, quadratic blowup and XXE, and no
legitimate feed needs one. feedparser's own defence is a pair of regexes over the bytes before the
first `<\\w` (sanitizer.replace_doctype); it keeps "safe" entities of any length, so a 100 KB entity
referenced 20,000 times still cost 22 s and 1.9 GB (measured). So any `<!ENTITY` in the prolog
(XML declaration, comments, processing instructions, DOCTYPE with its internal subset) is refused
with kind `unsafe_xml`. After the root element starts, a `<!ENTITY` is only tolerated inside a
CDATA section (a blog post about XXE), where no parser treats it as a declaration.

The check runs on every decoding the parser could pick: the raw bytes (exact for ASCII-compatible
encodings), the encoding given by a byte-order mark or by the UTF-16/32/EBCDIC patterns of `<?`,
and any other encoding named by the XML declaration or the HTTP charset (UTF-16 without BOM,
UTF-7, Shift_JIS...). External DTDs are allowed (RSS 0.91 feeds name one) because the parser never
fetches them; a test counts requests on a loopback server to prove it (E4).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

from veille.core.errors import PermanentFetchError
from veille.core.i18n import N_
from veille.core.models import ErrorKind

_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_CDATA_OPEN = "<![CDATA["
_DECL_TOKEN = re.compile(r"[\"'\[\]>]|<!--|<\?")
_NAME_START = re.compile(r"[A-Za-z_:\u00c0-\U0010ffff]")
_XML_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)

# (prefix, codec): byte-order marks first, then the patterns `<?` makes without one (XML 1.0 F.1).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (b"\x00\x00\x00\x3c", "utf-32-be"),
    (b"\x3c\x00\x00\x00", "utf-32-le"),
    (b"\x00\x3c\x00\x3f", "utf-16-be"),
    (b"\x3c\x00\x3f\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),
)
_PROBE = "<!ENTITY[]>\"'-?"


def check_xml_safety(body: bytes, content_type: str | None = None) -> None:
    """Raise PermanentFetchError(UNSAFE_XML) if any plausible decoding declares an entity."""
    for text in _views(body, content_type):
        position = find_entity_declaration(text)
        if position is not None:
            raise PermanentFetchError(
                ErrorKind.UNSAFE_XML,
                N_("the document declares XML entities (refused: entity expansion and XXE attacks)"),
            )


def _views(body: bytes, content_type: str | None) -> Iterator[str]:
    # latin-1 maps each byte to one character: an exact view for every ASCII-compatible encoding.
    yield body.decode("latin-1")
    seen = {"latin-1"}
    for name in _candidate_encodings(body, content_type):
        try:
            info = codecs.lookup(name)
        except LookupError:
            continue
        if info.name in seen:
            continue
        seen.add(info.name)
        if info.name != "utf-7" and _ascii_compatible(info.name):
            continue  # the latin-1 view already shows what this decoding would
        try:
            yield body.decode(info.name, errors="replace")
        except (UnicodeError, LookupError):
            continue


def _candidate_encodings(body: bytes, content_type: str | None) -> list[str]:
    names = [codec for prefix, codec in _SIGNATURES if body.startswith(prefix)][:1]
    if not names and len(body) >= 4 and body[1] == 0 and body[3] == 0 and body[0] and body[2]:
        names.append("utf-16-le")  # UTF-16 without a BOM that does not start with `<?`
    elif not names and len(body) >= 4 and body[0] == 0 and body[2] == 0 and body[1] and body[3]:
        names.append("utf-16-be")
    head = body[:512].decode("latin-1")
    declared = _XML_ENCODING.match(head)
    if declared:
        names.append(declared.group(1))
    if names:  # the declaration of a UTF-16 document is itself UTF-16: read it in that encoding
        try:
            decoded_head = body[:1024].decode(codecs.lookup(names[0]).name, errors="replace")
        except LookupError:
            decoded_head = ""
        declared = _XML_ENCODING.match(decoded_head.lstrip("\ufeff"))
        if declared:
            names.append(declared.group(1))
    if content_type:
        charset = _CHARSET.search(content_type)
        if charset:
            names.append(charset.group(1))
    return names


def _ascii_compatible(codec: str) -> bool:
    try:
        return _PROBE.encode(codec) == _PROBE.encode("ascii") and codec not in _MULTIBYTE
    except (UnicodeError, LookupError):
        return False


# Multi-byte encodings whose trail bytes can look like ASCII: decode them rather than trust bytes.
_MULTIBYTE = {
    "shift_jis",
    "cp932",
    "shift_jis_2004",
    "shift_jisx0213",
    "euc_jp",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "big5hkscs",
    "cp950",
    "euc_kr",
    "cp949",
    "johab",
    "iso2022_jp",
    "iso2022_kr",
    "hz",
}


def find_entity_declaration(text: str) -> int | None:
    """Index of a `<!ENTITY` outside the body's CDATA sections, or None. Linear in len(text)."""
    root = root_element_start(text)
    match = _ENTITY.search(text, 0, root)
    if match:
        return match.start()
    pos = root
    entity = -1
    cdata = -1
    length = len(text)
    while pos < length:
        if entity < pos:
            found = _ENTITY.search(text, pos)
            if not found:
                return None
            entity = found.start()
        if cdata < pos:
            cdata = text.find(_CDATA_OPEN, pos)
            if cdata < 0:
                cdata = length
        if entity < cdata:
            return entity
        end = text.find("]]>", cdata + len(_CDATA_OPEN))
        if end < 0:
            return None  # the rest is one unterminated CDATA section: text, not markup
        pos = end + 3
    return None


def root_element_start(text: str) -> int:
    """Where the root element starts: after the XML declaration, comments, PIs and DOCTYPE.

    Conservative: when a construct is unterminated the whole text counts as prolog, and stray
    characters are skipped, so the answer is never before the first `<name` a parser could
    take for the root (feedparser's own split is at the first `<\\w` anywhere).
    """
    pos = 0
    length = len(text)
    while pos < length:
        lt = text.find("<", pos)
        if lt < 0:
            return length
        if text.startswith("<?", lt):
            end = text.find("?>", lt + 2)
            if end < 0:
                return length
            pos = end + 2
        elif text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            if end < 0:
                return length
            pos = end + 3
        elif text.startswith("<!", lt):
            pos = _declaration_end(text, lt + 2)
        elif _NAME_START.match(text, lt + 1):
            return lt
        else:
            pos = lt + 1
    return length


def _declaration_end(text: str, pos: int) -> int:
    """End of a `<!...>` declaration, skipping quoted literals, comments, PIs and `[...]` subsets."""
    depth = 0
    length = len(text)
    while True:
        token = _DECL_TOKEN.search(text, pos)
        if not token:
            return length
        kind = token.group()
        pos = token.end()
        if kind in ('"', "'"):
            end = text.find(kind, pos)
            if end < 0:
                return length
            pos = end + 1
        elif kind == "<!--":
            end = text.find("-->", pos)
            if end < 0:
                return length
            pos = end + 3
        elif kind == "<?":
            end = text.find("?>", pos)
            if end < 0:
                return length
            pos = end + 2
        elif kind == "[":
            depth += 1
        elif kind == "]":
            depth = max(depth - 1, 0)
        elif depth == 0:  # ">"
            return pos
