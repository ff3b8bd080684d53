"""config.toml -> frozen, validated values.

Everything is validated before anything starts, and every problem is reported at once with its
dotted path and a fix (`clients[0].sources[2].url: scheme must be http or https`). Secrets are
named by environment variable (`*_env` keys) and read only when used; no value ever lands here.

`VEILLE_CONFIG` overrides the config path and `VEILLE_DATABASE_URL` the database URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from veille.alerting.deadlines import InboxSettings, parse_inbox
from veille.alerting.settings import AlertingSettings, parse_alerting, parse_clock
from veille.core.configreader import Reader
from veille.core.errors import ConfigError, ConfigProblem, Problems
from veille.core.i18n import N_, available_languages
from veille.core.matching import validate_keywords
from veille.core.tomlfile import parse as parse_toml
from veille.net.options import HttpConfig
from veille.notify.telegram.settings import TelegramSettings, parse_telegram
from veille.scoring.settings import SentimentSettings, parse_sentiment
from veille.sources.base import SourceOptions
from veille.sources.registry import get_driver, known_kinds

DEFAULT_CONFIG = "config.toml"
DEFAULT_DATABASE_URL = "sqlite:///veille.db"
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    concurrency: int = 50  # polls in flight at once
    jitter: float = 0.1  # each interval varies by +/- this fraction
    max_backoff: timedelta = timedelta(hours=24)
    failing_notice_after: timedelta = timedelta(hours=6)
    gone_after: timedelta = timedelta(days=7)  # a source failing with 404 this long is GONE, like a 410
    drain_timeout: float = 8.0
    health_file: str | None = None  # defaults to veille.core.paths.data_dir()/veille-health.json
    startup_spread: timedelta = timedelta(seconds=60)  # first polls spread over this window
    parse_workers: int = 0  # 0 = one per core
    parse_timeout: float = 5.0
    max_entries: int = 200  # newest entries processed per feed
    lease: timedelta = timedelta(minutes=2)  # a source's poller is taken over this long after it dies (G7)
    capacity: float = 1.0  # this daemon's weight when several share the sources (a bigger machine: 2.0)


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long hits are kept (G10); None keeps them forever, the default."""

    keep: timedelta | None = None


@dataclass(frozen=True, slots=True)
class ReportsConfig:
    """`[reports]`: each client's report of the month before, sent on the first day of the month."""

    send: bool = False
    at: time = time(8, 0)  # local time (`timezone`) on the 1st from which the reports go out
    contacts: tuple[str, ...] = ()  # contact ids; each receives the reports of the clients it covers
    format: str = "html"  # the file sent: html (self-contained, with charts) or md


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`[web]`: the dashboard (`veille web`, or inside `veille run` when enabled)."""

    enabled: bool = False  # also serve the dashboard from `veille run`
    host: str = "127.0.0.1"  # loopback by default: put a reverse proxy with HTTPS in front
    port: int = 8080
    public_url: str | None = None  # e.g. "https://veille.example.org": https makes session cookies Secure
    secret_env: str = "VEILLE_WEB_SECRET"  # noqa: S105 - the NAME of the variable holding the cookie-signing key
    session_max_age: timedelta = timedelta(hours=12)
    login_attempts: int = 5  # failed logins per name or address within login_window, then refused
    login_window: timedelta = timedelta(minutes=15)
    page_size: int = 50  # hits per page on a client's page
    # Meta webhooks (POST /webhooks/meta): the NAMES of the variables holding the app secret (checks
    # X-Hub-Signature-256) and the verify token (the subscription handshake); unset secret: no webhooks.
    webhook_secret_env: str = "VEILLE_META_APP_SECRET"  # noqa: S105
    webhook_verify_token_env: str = "VEILLE_META_VERIFY_TOKEN"  # noqa: S105
    webhook_max_body: int = 1_048_576  # bytes; a larger delivery is refused (413)

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.lower().startswith("https://"))


@dataclass(frozen=True, slots=True)
class SourceConfig:
    key: str  # stable identity across restarts: "<client>/<id>"
    client_id: str
    kind: str
    every: timedelta
    options: SourceOptions  # what the kind's driver validated
    enabled: bool = True

    @property
    def target(self) -> str:
        return self.options.target


@dataclass(frozen=True, slots=True)
class ClientConfig:
    id: str
    name: str
    keywords: tuple[str, ...]
    sources: tuple[SourceConfig, ...]
    crisis_words: tuple[str, ...] = ()
    lang: str = "fr"
    severe_words: tuple[str, ...] = ()  # added to [alerting] severe_words for this client
    inbox: InboxSettings = field(default_factory=InboxSettings)  # [clients.inbox]: reply deadlines


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    database_url: str
    lang: str
    timezone: str
    http: HttpConfig
    daemon: DaemonConfig
    sentiment: SentimentSettings
    alerting: AlertingSettings
    telegram: TelegramSettings
    clients: tuple[ClientConfig, ...] = field(default_factory=tuple)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    web: WebConfig = field(default_factory=WebConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)

    def client(self, client_id: str) -> ClientConfig | None:
        return next((c for c in self.clients if c.id == client_id), None)

    @property
    def sources(self) -> list[SourceConfig]:
        return [s for c in self.clients for s in c.sources]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def config_path(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """--config, else VEILLE_CONFIG, else ./config.toml."""
    return explicit or (os.environ if environ is None else environ).get("VEILLE_CONFIG") or DEFAULT_CONFIG


def load_config(path: str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    file = config_path(path, env)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            file,
            [ConfigProblem("(file)", N_("not found"), N_("create it from the example config.toml or pass --config"))],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, [ConfigProblem("(file)", N_("cannot be read: {exc}").format(exc=exc))]) from None
    return parse_config(text, file=file, environ=env)


def parse_config(text: str, *, file: str = "config.toml", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    try:
        raw = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, [ConfigProblem("(syntax)", str(exc), N_("fix the TOML syntax at that line"))]) from None
    problems = Problems()
    root = Reader(raw, "", problems)
    lang = root.str("lang", "fr", choices=available_languages())
    timezone = root.str("timezone", "Europe/Paris")
    try:
        ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        root.add(
            "timezone",
            N_("{timezone!r} is not a known time zone").format(timezone=timezone),
            N_('use an IANA name like "Europe/Paris"'),
        )
        timezone = "UTC"
    database_url = _parse_database(root)
    http = _parse_http(root)
    daemon = _parse_daemon(root)
    retention = _parse_retention(root)
    web = _parse_web(root)
    clients = _parse_clients(root)
    client_ids = {c.id for c in clients}
    sentiment = parse_sentiment(root)
    alerting = parse_alerting(root, client_ids)
    telegram = parse_telegram(root)
    reports = _parse_reports(root, alerting)
    root.finish()
    override = env.get("VEILLE_DATABASE_URL")
    problem = database_url_problem(override) if override else None
    if problem:
        problems.add("VEILLE_DATABASE_URL (environment)", *problem)
    if problems:
        raise ConfigError(file, problems.items)
    return Config(
        path=file,
        database_url=env.get("VEILLE_DATABASE_URL") or database_url,
        lang=lang,
        timezone=timezone,
        http=http,
        daemon=daemon,
        sentiment=sentiment,
        alerting=alerting,
        telegram=telegram,
        clients=tuple(clients),
        retention=retention,
        web=web,
        reports=reports,
    )


def _parse_database(root: Reader) -> str:
    section = root.table("database")
    if section is None:
        return DEFAULT_DATABASE_URL
    url = section.str("url", DEFAULT_DATABASE_URL)
    problem = database_url_problem(url) if url else None
    if problem:
        section.add("url", *problem)
    if url and "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        section.add(
            "url",
            N_("must not contain a password"),
            N_("set VEILLE_DATABASE_URL in the environment, or use a .pgpass file"),
        )
    section.finish()
    return url or DEFAULT_DATABASE_URL


_DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
_DATABASE_URL_FIX = 'use "sqlite:///veille.db" or "postgresql+psycopg://user@host/db"'


def database_url_problem(url: str) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) for a database URL veille cannot use, else None: checked when the
    config is read, so a bad URL (or VEILLE_DATABASE_URL) is one config problem, not a driver's traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number only fails when read
    except (ArgumentError, ValueError):
        return "is not a database URL", _DATABASE_URL_FIX
    if parsed.drivername not in _DATABASE_DRIVERS:
        return f"{parsed.drivername!r}: only SQLite and PostgreSQL (psycopg) are supported", _DATABASE_URL_FIX
    return None


def _parse_http(root: Reader) -> HttpConfig:
    section = root.table("http")
    if section is None:
        return HttpConfig()
    base = HttpConfig()
    timeout = section.duration("timeout", timedelta(seconds=base.timeout), min=timedelta(seconds=1))
    config = HttpConfig(
        allow_private_addresses=section.bool("allow_private_addresses", False),
        timeout=timeout.total_seconds() if timeout else base.timeout,
        max_body_bytes=section.int("max_body_mb", 15, min=1, max=1024) * 1024 * 1024,
        max_redirects=section.int("max_redirects", base.max_redirects, min=0, max=20),
        per_host_limit=section.int("per_host_limit", base.per_host_limit, min=1, max=100),
        proxy=section.url("proxy", None, schemes=("http", "https", "socks5")),
    )
    section.finish()
    return config


def _parse_daemon(root: Reader) -> DaemonConfig:
    section = root.table("daemon")
    if section is None:
        return DaemonConfig()
    base = DaemonConfig()
    config = DaemonConfig(
        concurrency=section.int("concurrency", base.concurrency, min=1, max=1000),
        jitter=section.float("jitter", base.jitter, min=0.0, max=0.5),
        max_backoff=section.duration("max_backoff", base.max_backoff, min=timedelta(minutes=1)),
        failing_notice_after=section.duration("failing_notice_after", base.failing_notice_after),
        gone_after=section.duration("gone_after", base.gone_after, min=timedelta(hours=1)),
        health_file=section.str("health_file", None),
        startup_spread=section.duration("startup_spread", base.startup_spread),
        parse_workers=section.int("parse_workers", 0, min=0, max=64),
        parse_timeout=section.float("parse_timeout", base.parse_timeout, min=0.5, max=120),
        max_entries=section.int("max_entries", base.max_entries, min=1, max=10_000),
        lease=section.duration("lease", base.lease, min=timedelta(seconds=3)),
        capacity=section.float("capacity", base.capacity, min=0.1, max=100.0),
    )
    section.finish()
    return config


def _parse_retention(root: Reader) -> RetentionConfig:
    section = root.table("retention")
    if section is None:
        return RetentionConfig()
    config = RetentionConfig(keep=section.duration("keep", None, min=timedelta(days=1)))
    section.finish()
    return config


REPORT_FORMATS = ("html", "md")


def _parse_reports(root: Reader, alerting: AlertingSettings) -> ReportsConfig:
    section = root.table("reports")
    if section is None:
        return ReportsConfig()
    base = ReportsConfig()
    raw_at = section.str("at", None)
    at = parse_clock(raw_at) if raw_at is not None else base.at
    if at is None:
        section.add(
            "at", N_("{raw!r} is not a time of day").format(raw=raw_at), N_('write e.g. "08:00" (24-hour clock)')
        )
    config = ReportsConfig(
        send=section.bool("send", base.send),
        at=at or base.at,
        contacts=tuple(section.str_list("contacts", []) or ()),
        format=section.str("format", base.format, choices=REPORT_FORMATS) or base.format,
    )
    known = {contact.id for contact in alerting.contacts}
    for contact in config.contacts:
        if contact not in known:
            section.add(
                "contacts",
                N_("unknown contact {contact!r}").format(contact=contact),
                N_("name the id of a [[contacts]] entry"),
            )
    if config.send and not config.contacts:
        section.add("contacts", N_("is empty while send = true"), N_('list who receives the reports, e.g. ["manager"]'))
    if config.send and not alerting.enabled:
        section.add(
            "send",
            N_("reports go out through the alerting outbox, which is off"),
            N_("set [alerting] enabled = true, or send = false"),
        )
    section.finish()
    return config


def _parse_web(root: Reader) -> WebConfig:
    section = root.table("web")
    if section is None:
        return WebConfig()
    base = WebConfig()
    public_url = section.url("public_url", None)
    config = WebConfig(
        enabled=section.bool("enabled", base.enabled),
        host=section.str("host", base.host) or base.host,
        port=section.int("port", base.port, min=1, max=65535),
        public_url=public_url.rstrip("/") if public_url else None,
        secret_env=section.env_name("secret_env", base.secret_env) or base.secret_env,
        session_max_age=section.duration("session_max_age", base.session_max_age, min=timedelta(minutes=5)),
        login_attempts=section.int("login_attempts", base.login_attempts, min=1, max=100),
        login_window=section.duration("login_window", base.login_window, min=timedelta(minutes=1)),
        page_size=section.int("page_size", base.page_size, min=10, max=500),
        webhook_secret_env=section.env_name("webhook_secret_env", base.webhook_secret_env) or base.webhook_secret_env,
        webhook_verify_token_env=section.env_name("webhook_verify_token_env", base.webhook_verify_token_env)
        or base.webhook_verify_token_env,
        webhook_max_body=section.int("webhook_max_body", base.webhook_max_body, min=10_000, max=50_000_000),
    )
    section.finish()
    return config


def _parse_clients(root: Reader) -> list[ClientConfig]:
    clients: list[ClientConfig] = []
    seen: set[str] = set()
    readers = root.tables("clients")
    for reader in readers:
        client_id = reader.str("id")
        if client_id is not None:
            if not _CLIENT_ID.match(client_id):
                reader.add(
                    "id",
                    N_("{client_id!r} is not a valid id").format(client_id=client_id),
                    N_('use lower-case letters, digits, - and _ (e.g. "resto")'),
                )
            elif client_id in seen:
                reader.add(
                    "id",
                    N_("duplicate client id {client_id!r}").format(client_id=client_id),
                    N_("give each client its own id"),
                )
            seen.add(client_id)
        name = reader.str("name", client_id or "")
        keywords = reader.str_list("keywords", [])
        for message in validate_keywords(keywords or []):
            reader.add("keywords", message, N_("see the keyword syntax in config.toml"))
        if keywords == []:
            reader.add("keywords", N_("is empty"), N_('list at least one term, e.g. keywords = ["chez gégé"]'))
        crisis_words = reader.str_list("crisis_words", [])
        severe_words = reader.str_list("severe_words", [])
        lang = reader.str("lang", "fr", choices=available_languages())
        sources = _parse_sources(reader, client_id or "?")
        inbox = parse_inbox(reader.table("inbox"))
        reader.finish()
        if client_id:
            clients.append(
                ClientConfig(
                    client_id,
                    name or client_id,
                    tuple(keywords or ()),
                    tuple(sources),
                    tuple(crisis_words or ()),
                    lang or "fr",
                    tuple(severe_words or ()),
                    inbox,
                )
            )
    return clients


def _parse_sources(client: Reader, client_id: str) -> list[SourceConfig]:
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for reader in client.tables("sources"):
        kind = reader.str("kind", choices=known_kinds())
        every = reader.duration("every", timedelta(minutes=15), min=timedelta(seconds=30))
        enabled = reader.bool("enabled", True)
        source_id = reader.str("id", None)
        if source_id is not None and not _SOURCE_ID.match(source_id):
            reader.add(
                "id",
                N_("{source_id!r} is not a valid id").format(source_id=source_id),
                N_("use lower-case letters, digits, . - _"),
            )
            source_id = None
        if kind is None:
            reader.ignore(*reader.raw.keys())
            continue
        options_raw = {k: v for k, v in reader.raw.items() if k not in {"kind", "every", "enabled", "id"}}
        options = get_driver(kind).parse_options(options_raw, reader.path, reader.problems)
        reader.ignore(*options_raw.keys())  # the driver reported its own unknown keys
        if options is None:
            continue
        local_id = source_id or f"{kind}-{hashlib.sha256(options.target.encode()).hexdigest()[:10]}"
        if local_id in seen:
            reader.add(
                "id",
                N_("duplicate source {local_id!r} in client {client_id!r}").format(
                    local_id=local_id, client_id=client_id
                ),
                N_("remove the duplicate or give each an explicit id"),
            )
            continue
        seen.add(local_id)
        sources.append(SourceConfig(f"{client_id}/{local_id}", client_id, kind, every, options, enabled))
    return sources


def runtime_problems(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """What `veille config check` reports beyond the file's validity: source addresses the SSRF
    guard will refuse and source secrets that are not set. `veille run` (and a reload) refuses the same
    files, so check and run never disagree. Names of variables only, never values."""
    from veille.net.guard import check_url_static

    problems = []
    for source in config.sources:
        url = getattr(source.options, "url", None)
        if isinstance(url, str):
            http_url = re.sub(r"^ws(s?):", r"http\1:", url)  # websockets: same address rules
            reason = check_url_static(http_url, allow_private=config.http.allow_private_addresses)
            if reason:
                problems.append(
                    N_(
                        "{path}: {reason} (set [http] allow_private_addresses = true only for lab or local feeds)"
                    ).format(path=f"sources.{source.key}.url", reason=reason)
                )
    for where, name, is_set in describe_secrets(config, environ):
        if not is_set and where != "telegram.token_env" and not where.startswith("web."):
            problems.append(
                N_("{path}: environment variable {name} is not set (export it before `veille run`)").format(
                    path=where, name=name
                )
            )
    return problems


def describe_secrets(config: Config, environ: Mapping[str, str] | None = None) -> list[tuple[str, str, bool]]:
    """(where, variable, is_set) for every secret the config names; values are never returned."""
    from veille.core.secrets import read_secret

    rows = [("telegram.token_env", config.telegram.token_env, bool(read_secret(config.telegram.token_env, environ)))]
    for where in ("webhook_secret_env", "webhook_verify_token_env"):  # optional: webhooks are off without them
        name = getattr(config.web, where)
        rows.append((f"web.{where}", name, bool(read_secret(name, environ))))
    for source in config.sources:
        if not source.enabled:
            continue
        for name in getattr(source.options, "secret_env", ()):
            rows.append((f"sources.{source.key}", name, bool(read_secret(name, environ))))
    return rows
