"""The reader's contract: a problem for every missing or wrong value; with a default the result keeps its type."""

from __future__ import annotations

from datetime import timedelta

from veille.core.configreader import Reader
from veille.core.errors import Problems


def read(raw: dict[str, object]) -> tuple[Reader, Problems]:
    problems = Problems()
    return Reader(raw, "section", problems), problems


def paths(problems: Problems) -> list[str]:
    return [item.path for item in problems.items]


def test_good_values_come_back_typed() -> None:
    reader, problems = read(
        {
            "name": "a",
            "on": True,
            "n": 3,
            "ratio": 1,
            "every": "10m",
            "tags": ["x"],
            "token_env": "T",
            "url": "https://e.org",
        }
    )
    assert reader.str("name") == "a"
    assert reader.bool("on") is True
    assert reader.int("n", min=1, max=5) == 3
    ratio = reader.float("ratio")
    assert ratio == 1.0 and isinstance(ratio, float)
    assert reader.duration("every") == timedelta(minutes=10)
    assert reader.str_list("tags") == ["x"]
    assert reader.env_name("token_env") == "T"
    assert reader.url("url") == "https://e.org"
    reader.finish()
    assert not problems


def test_a_wrong_value_with_a_default_gives_the_default_and_a_problem() -> None:
    reader, problems = read(
        {"lang": "de", "n": 99, "every": "soon", "token_env": "sk-secret", "url": "ftp://e.org", "on": "yes"}
    )
    assert reader.str("lang", "fr", choices=("fr", "en")) == "fr"
    assert reader.int("n", 5, max=10) == 5
    assert reader.duration("every", timedelta(hours=1)) == timedelta(hours=1)
    assert reader.env_name("token_env", "VEILLE_TOKEN") == "VEILLE_TOKEN"
    assert reader.url("url", "https://default.org") == "https://default.org"
    assert reader.bool("on", False) is False
    assert paths(problems) == [f"section.{key}" for key in ("lang", "n", "every", "token_env", "url", "on")]


def test_a_missing_or_wrong_required_value_is_none_and_a_problem() -> None:
    reader, problems = read({"n": "three", "tags": ["a", 2]})
    assert reader.str("name") is None
    assert reader.int("n") is None
    assert reader.str_list("tags") == ["a"]
    assert reader.url("url") is None
    assert paths(problems) == ["section.name", "section.n", "section.tags[1]", "section.url"]


def test_an_optional_key_left_out_is_none_without_a_problem() -> None:
    reader, problems = read({})
    assert reader.str("handle", None) is None
    assert reader.duration("keep", None) is None
    assert reader.table("headers") is None
    assert reader.tables("contacts") == []
    assert not problems


def test_an_unread_key_is_reported() -> None:
    reader, problems = read({"nmae": "typo"})
    reader.str("name", "")
    reader.finish()
    assert paths(problems) == ["section.nmae"]
