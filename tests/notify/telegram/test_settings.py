"""`[telegram]` parsing: every problem with its dotted path; contacts merged from [[contacts]]."""

from __future__ import annotations

import pytest

from veille.config import parse_config
from veille.core.errors import ConfigError
from veille.notify.telegram.settings import DEFAULT_API, TelegramContact, TelegramSettings

BASE = """
[[clients]]
id = "acme"
keywords = ["acme"]
[[clients]]
id = "beta"
keywords = ["beta"]

[[contacts]]
id = "camille"
channel = "telegram"
address = "123456789"
clients = ["acme"]

[[contacts]]
id = "team"
channel = "telegram"
address = "-1001234"
"""


def test_defaults_without_a_section() -> None:
    config = parse_config(BASE, environ={})
    assert config.telegram == TelegramSettings()
    assert config.telegram.api_base_url == DEFAULT_API


def test_full_section_and_contact_merge() -> None:
    text = (
        BASE
        + """
[telegram]
token_env = "MY_BOT_TOKEN"
api_base_url = "http://127.0.0.1:8081/bot/"
allowed_chats = [-100777]
lang = "en"
per_chat_interval = 1.5
max_parts = 2

[telegram.users]
team = 555

[[telegram.contacts]]
name = "ops"
user_id = 42
clients = ["beta"]
"""
    )
    settings = parse_config(text, environ={}).telegram
    assert settings.token_env == "MY_BOT_TOKEN"
    assert settings.api_base_url == "http://127.0.0.1:8081/bot"
    assert settings.pacing.per_chat_interval == 1.5 and settings.max_parts == 2 and settings.lang == "en"
    config = parse_config(text, environ={})
    merged = settings.with_alerting_contacts(config.alerting.contacts)
    assert merged.contact("camille") == TelegramContact("camille", 123456789, 123456789, ("acme",))
    assert merged.contact("team") == TelegramContact("team", -1001234, 555, ("*",))
    assert merged.allowed_user_ids == {42, 123456789, 555}
    assert merged.allowed_chat_ids == {-100777, 123456789, -1001234}
    assert merged.address_for("camille") == "123456789"


def test_every_problem_is_reported_with_its_path() -> None:
    text = (
        BASE
        + """
[telegram]
token_env = "123:abc-secret"
api_base_url = "https://api.telegram.org/"
allowed_chats = ["x"]
colour = "blue"
group_per_minute = 50

[telegram.users]
bob = "me"

[[telegram.contacts]]
name = "x"
clients = ["nope"]
"""
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={})
    paths = {p.path for p in info.value.problems}
    assert {
        "telegram.token_env",
        "telegram.api_base_url",
        "telegram.allowed_chats[0]",
        "telegram.colour",
        "telegram.group_per_minute",
        "telegram.users.bob",
        "telegram.contacts[0].clients[0]",
        "telegram.contacts[0].chat_id",
    } <= paths
    assert "abc-secret" not in str(info.value)


def test_the_documented_example_parses_and_covers_every_key() -> None:
    import re

    import veille.notify.telegram.settings as module

    block = re.search(r"```toml\n(.*?)```", module.__doc__ or "", re.S).group(1)  # type: ignore[union-attr]
    text = '[[clients]]\nid = "resto"\nkeywords = ["resto"]\n' + block
    settings = parse_config(text, environ={}).telegram
    assert settings.users == (("camille", 123456789),) and settings.contacts[0].name == "stagiaire"
    documented = set(re.findall(r"^(\w+) =", block, re.M))
    assert documented >= {
        "token_env",
        "api_base_url",
        "commands",
        "allowed_chats",
        "lang",
        "max_parts",
        "request_timeout",
        "command_rate_per_minute",
        "callback_ttl",
        "per_chat_interval",
        "group_per_minute",
        "global_per_second",
        "merge_above",
    }
