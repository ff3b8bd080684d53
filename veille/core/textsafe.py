"""Text from outside (feeds, posts) made safe for a terminal: no ANSI escapes, no control characters."""

from __future__ import annotations

import re

ANSI_ESCAPE = re.compile(  # CSI, OSC (ended by BEL or ST), two-byte escapes
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    text = ANSI_ESCAPE.sub("", text)
    if not keep_newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", text)
