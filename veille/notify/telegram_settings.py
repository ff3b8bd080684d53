"""`[telegram]`: the bot token's variable name, chats, allow-listed users, API base URL."""

from __future__ import annotations

from dataclasses import dataclass

from veille.configreader import Reader


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token_env: str = "VEILLE_TELEGRAM_TOKEN"  # noqa: S105 - a variable name, not a secret
    api_base_url: str = "https://api.telegram.org/bot"


def parse_telegram(root: Reader) -> TelegramSettings:
    section = root.table("telegram")
    if section is None:
        return TelegramSettings()
    settings = TelegramSettings(
        token_env=section.env_name("token_env", "VEILLE_TELEGRAM_TOKEN"),
        api_base_url=section.url("api_base_url", "https://api.telegram.org/bot"),
    )
    section.finish()
    return settings
