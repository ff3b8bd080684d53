"""`[telegram]`: the bot token's variable name, contacts' chats, allow-lists, API base URL, pacing.

```toml
[telegram]
token_env = "VEILLE_TELEGRAM_TOKEN"          # the NAME of the variable holding the token
api_base_url = "https://api.telegram.org/bot" # a self-hosted Bot API server or a test server
allowed_chats = [-1001234567890]              # extra chats (groups) where commands are accepted
commands = true                               # poll getUpdates for commands and button presses

[[telegram.contacts]]
name = "alice"          # the contact name used by [alerting]
chat_id = 123456789     # where her alerts go (private chat id, or a group id)
user_id = 123456789     # her Telegram user id: allowed to run commands and press buttons
clients = ["acme"]      # clients she may see; ["*"] for all
```

Both the chat and the user must be allow-listed for a command (H1, H2): a contact's own chat and any
`allowed_chats`; users are the contacts' `user_id`s. Nobody is ever enrolled by `/start` (H8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from veille.configreader import Reader

DEFAULT_API = "https://api.telegram.org/bot"
_CHAT_ID_MAX = 10**16


@dataclass(frozen=True, slots=True)
class TelegramContact:
    name: str
    chat_id: int | None = None
    user_id: int | None = None
    clients: tuple[str, ...] = ("*",)

    def sees(self, client_id: str) -> bool:
        return "*" in self.clients or client_id in self.clients


@dataclass(frozen=True, slots=True)
class Pacing:
    """Telegram's documented limits, with a little margin (B7)."""

    per_chat_interval: float = 1.0  # seconds between two messages to one chat
    group_per_minute: int = 20
    global_per_second: int = 30
    merge_above: int = 3  # more than this many waiting for one chat -> one merged digest


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token_env: str = "VEILLE_TELEGRAM_TOKEN"  # noqa: S105 - a variable name, not a secret
    api_base_url: str = DEFAULT_API
    contacts: tuple[TelegramContact, ...] = ()
    allowed_chats: tuple[int, ...] = ()
    commands: bool = True
    lang: str = "fr"
    max_parts: int = 4
    request_timeout: float = 10.0  # per Bot API call (connect, read, write)
    command_rate_per_minute: int = 20  # per user (H6)
    max_arg_chars: int = 64  # per command argument (H5)
    callback_ttl: timedelta = timedelta(days=7)  # buttons stop working after this
    auth_recheck: timedelta = timedelta(minutes=10)  # after a 401, one probe per this (B5)
    pacing: Pacing = field(default_factory=Pacing)

    def contact(self, name: str) -> TelegramContact | None:
        return next((c for c in self.contacts if c.name == name), None)

    def address_for(self, contact: str) -> str | None:
        """The chat id (as text, the outbox `address`) of a contact, or None if it has none."""
        found = self.contact(contact)
        return str(found.chat_id) if found is not None and found.chat_id is not None else None

    def contacts_for_user(self, user_id: int) -> tuple[TelegramContact, ...]:
        return tuple(c for c in self.contacts if c.user_id == user_id)

    @property
    def allowed_user_ids(self) -> frozenset[int]:
        return frozenset(c.user_id for c in self.contacts if c.user_id is not None)

    @property
    def allowed_chat_ids(self) -> frozenset[int]:
        chats = {c.chat_id for c in self.contacts if c.chat_id is not None}
        return frozenset(chats | set(self.allowed_chats))


def parse_telegram(root: Reader, client_ids: set[str] | None = None) -> TelegramSettings:
    section = root.table("telegram")
    if section is None:
        return TelegramSettings()
    base = TelegramSettings()
    api = section.url("api_base_url", DEFAULT_API) or DEFAULT_API
    if not api.rstrip("/").endswith("/bot"):
        section.add("api_base_url", "must end with /bot (the token is appended to it)",
                    f'write e.g. api_base_url = "{DEFAULT_API}"')
        api = DEFAULT_API
    contacts = _parse_contacts(section, client_ids)
    chats = []
    for index, value in enumerate(section._get("allowed_chats", (list,), [], "a list of chat ids") or []):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _CHAT_ID_MAX:
            section.add(f"allowed_chats[{index}]", "must be a chat id (an integer)",
                        "find it with the bot's getUpdates, e.g. -1001234567890")
        else:
            chats.append(value)
    pacing = Pacing(
        per_chat_interval=section.float("per_chat_interval", base.pacing.per_chat_interval, min=0.0, max=60.0),
        group_per_minute=section.int("group_per_minute", base.pacing.group_per_minute, min=1, max=20),
        global_per_second=section.int("global_per_second", base.pacing.global_per_second, min=1, max=30),
        merge_above=section.int("merge_above", base.pacing.merge_above, min=1, max=100),
    )
    settings = TelegramSettings(
        token_env=section.env_name("token_env", base.token_env) or base.token_env,
        api_base_url=api.rstrip("/"),
        contacts=tuple(contacts),
        allowed_chats=tuple(chats),
        commands=section.bool("commands", True),
        lang=section.str("lang", "fr", choices=("fr", "en")) or "fr",
        max_parts=section.int("max_parts", base.max_parts, min=1, max=10),
        request_timeout=section.float("request_timeout", base.request_timeout, min=1.0, max=120.0),
        command_rate_per_minute=section.int("command_rate_per_minute", base.command_rate_per_minute,
                                            min=1, max=600),
        callback_ttl=section.duration("callback_ttl", base.callback_ttl, min=timedelta(minutes=1)),
        pacing=pacing,
    )
    section.finish()
    return settings


def _parse_contacts(section: Reader, client_ids: set[str] | None) -> list[TelegramContact]:
    contacts: list[TelegramContact] = []
    seen: set[str] = set()
    for reader in section.tables("contacts"):
        name = reader.str("name")
        if name is not None:
            if name in seen:
                reader.add("name", f"duplicate contact {name!r}", "list each contact once")
            seen.add(name)
        chat_id = _id(reader, "chat_id")
        user_id = _id(reader, "user_id")
        clients = reader.str_list("clients", ["*"]) or []
        if client_ids is not None:
            for index, client in enumerate(clients):
                if client != "*" and client not in client_ids:
                    reader.add(f"clients[{index}]", f"unknown client {client!r}",
                               "use an id from [[clients]] or \"*\" for all")
        if chat_id is None and user_id is None:
            reader.add("chat_id", "a contact needs a chat_id (alerts) or a user_id (commands)",
                       "send /start to the bot, then read the id with getUpdates")
        reader.finish()
        if name:
            contacts.append(TelegramContact(name, chat_id, user_id, tuple(clients) or ("*",)))
    return contacts


def _id(reader: Reader, key: str) -> int | None:
    value = reader.int(key, None)
    if value is not None and abs(value) > _CHAT_ID_MAX:
        reader.add(key, "is not a Telegram id", "copy the number given by getUpdates")
        return None
    return value
