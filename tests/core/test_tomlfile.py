"""The config file is parsed once per command: the CLI's language peek hands its parse to the command."""

from __future__ import annotations

import tomllib

import pytest

from veille.core.tomlfile import parse, peek


def test_the_peeked_parse_is_handed_over_once_for_the_same_text() -> None:
    text = 'lang = "en"\n[database]\nurl = "sqlite:///x.db"\n'
    peeked = peek(text)
    assert peeked == {"lang": "en", "database": {"url": "sqlite:///x.db"}}
    assert parse(text) is peeked  # the command takes it
    again = parse(text)  # handed over once: the next parse is the command's own
    assert again == peeked and again is not peeked


def test_another_text_is_parsed_afresh() -> None:
    peek('lang = "en"\n')
    assert parse('lang = "fr"\n') == {"lang": "fr"}
    assert parse('lang = "en"\n') == {"lang": "en"}  # the peek was dropped, not kept for later


def test_errors_are_tomllibs() -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        peek("lang = \n")
    with pytest.raises(tomllib.TOMLDecodeError):
        parse("lang = \n")
