"""`[telegram]`: the bot token's variable name, contacts' chats, allow-lists, API base URL, pacing.

Alert routes usually come from `[[contacts]]` (channel "telegram", address = chat id); see
`with_alerting_contacts`. `[[telegram.contacts]]` is for people who only use commands, or to narrow
someone's clients.

```toml
[telegram]
token_env = "VEILLE_TELEGRAM_TOKEN"          # the NAME of the variable holding the token (or NAME_FILE)
api_base_url = "https://api.telegram.org/bot" # a self-hosted Bot API server or a test server; ends in /bot
commands = true               # poll getUpdates for commands and button presses (one poller per token)
allowed_chats = []            # extra group chats where contacts may use commands, e.g. [-1001234567890]
lang = "fr"                   # language of command replies: fr | en
max_parts = 4                 # a long alert is split in at most this many messages, then "…tronqué"
request_timeout = 10.0        # seconds per Bot API call
command_rate_per_minute = 20  # per user; more is refused with one notice
callback_ttl = "7d"           # buttons stop working after this
per_chat_interval = 1.0       # seconds between two messages to one chat
group_per_minute = 20         # messages per minute to one group (Telegram's limit)
global_per_second = 30        # messages per second overall (Telegram's limit)
merge_above = 3               # more alerts than this waiting for one chat are merged into one message

[telegram.users]              # for contacts whose address is a group: who may use commands there
camille = 123456789

[[telegram.contacts]]         # people who only use commands (or a narrower client list)
name = "stagiaire"
user_id = 555555555           # commands from their private chat (a private chat id = the user id)
clients = ["resto"]
```

Both the chat and the user must be allow-listed for a command (H1, H2): a contact's own chat and any
`allowed_chats`; users are the contacts' `user_id`s. Nobody is ever enrolled by `/start` (H8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from veille.core.configreader import Reader
from veille.core.i18n import N_, available_languages

DEFAULT_API = "https://api.telegram.org/bot"
_CHAT_ID_MAX = 10**16


class RoutedContact(Protocol):
    """What Telegram needs of an `[[contacts]]` entry (veille.alerting.settings.Contact)."""

    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def clients(self) -> tuple[str, ...]: ...


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
    users: tuple[tuple[str, int], ...] = ()  # [telegram.users]: contact id -> Telegram user id

    def with_alerting_contacts(self, contacts: Iterable[RoutedContact]) -> TelegramSettings:
        """Add the `[[contacts]]` whose channel is telegram (id, address = chat id, clients).

        A private chat's id IS its user's id, so such a contact may use commands with no extra
        setting; a group address needs `[telegram.users] <contact id> = <user id>` for commands.
        Entries of `[[telegram.contacts]]` with the same name win.
        """
        known = {c.name for c in self.contacts}
        users = dict(self.users)
        extra = []
        for contact in contacts:
            if contact.channel != "telegram" or contact.id in known:
                continue
            try:
                chat_id: int | None = int(contact.address)
            except ValueError:
                chat_id = None
            user_id = users.get(contact.id, chat_id if chat_id is not None and chat_id > 0 else None)
            extra.append(TelegramContact(contact.id, chat_id, user_id, tuple(contact.clients) or ("*",)))
        return replace(self, contacts=self.contacts + tuple(extra))

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
    if client_ids is None:  # config.py passes only the root: read the ids (validated there) ourselves
        raw_clients = root.raw.get("clients")
        client_ids = (
            {c["id"] for c in raw_clients if isinstance(c, dict) and isinstance(c.get("id"), str)}
            if isinstance(raw_clients, list)
            else set()
        )
    base = TelegramSettings()
    api = section.url("api_base_url", DEFAULT_API) or DEFAULT_API
    if not api.rstrip("/").endswith("/bot"):
        section.add(
            "api_base_url",
            N_("must end with /bot (the token is appended to it)"),
            N_('write e.g. api_base_url = "{url}"').format(url=DEFAULT_API),
        )
        api = DEFAULT_API
    contacts = _parse_contacts(section, client_ids)
    chats = []
    for index, value in enumerate(section.raw_list("allowed_chats", "a list of chat ids")):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _CHAT_ID_MAX:
            section.add(
                f"allowed_chats[{index}]",
                N_("must be a chat id (an integer)"),
                N_("find it with the bot's getUpdates, e.g. -1001234567890"),
            )
        else:
            chats.append(value)
    users = []
    users_table = section.table("users")
    if users_table is not None:
        for key, value in users_table.raw.items():
            users_table.ignore(key)
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _CHAT_ID_MAX:
                users_table.add(
                    key,
                    N_("must be a Telegram user id (an integer)"),
                    N_("the user sends /start to the bot, which answers with the id"),
                )
            else:
                users.append((str(key), value))
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
        lang=section.str("lang", "fr", choices=available_languages()) or "fr",
        max_parts=section.int("max_parts", base.max_parts, min=1, max=10),
        request_timeout=section.float("request_timeout", base.request_timeout, min=1.0, max=120.0),
        command_rate_per_minute=section.int("command_rate_per_minute", base.command_rate_per_minute, min=1, max=600),
        callback_ttl=section.duration("callback_ttl", base.callback_ttl, min=timedelta(minutes=1)),
        pacing=pacing,
        users=tuple(users),
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
                reader.add("name", N_("duplicate contact {name!r}").format(name=name), N_("list each contact once"))
            seen.add(name)
        chat_id = _id(reader, "chat_id")
        user_id = _id(reader, "user_id")
        clients = reader.str_list("clients", ["*"]) or []
        if client_ids is not None:
            for index, client in enumerate(clients):
                if client != "*" and client not in client_ids:
                    reader.add(
                        f"clients[{index}]",
                        N_("unknown client {client!r}").format(client=client),
                        N_('use an id from [[clients]] or "*" for all'),
                    )
        if chat_id is None and user_id is None:
            reader.add(
                "chat_id",
                N_("a contact needs a chat_id (alerts) or a user_id (commands)"),
                N_("send /start to the bot, then read the id with getUpdates"),
            )
        reader.finish()
        if name:
            contacts.append(TelegramContact(name, chat_id, user_id, tuple(clients) or ("*",)))
    return contacts


def _id(reader: Reader, key: str) -> int | None:
    value = reader.int(key, None)
    if value is not None and abs(value) > _CHAT_ID_MAX:
        reader.add(key, N_("is not a Telegram id"), N_("copy the number given by getUpdates"))
        return None
    return value
