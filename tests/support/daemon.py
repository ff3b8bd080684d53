"""Build real configs and pipelines for tests: TOML text -> Config -> migrated database -> Pipeline."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.paths import REPO_ROOT
from veille.config import Config, parse_config
from veille.store.engine import make_engine
from veille.store.migrate import upgrade


def loopback_header(db_url: str, *, timeout: str = "5s") -> str:
    """The [database] and [http] tables of every test daemon: its database, loopback servers allowed."""
    return f'[database]\nurl = "{db_url}"\n\n[http]\nallow_private_addresses = true\ntimeout = "{timeout}"\n'


# The alerting of a test daemon that prints its alerts on the console to one contact, camille, at once.
CONSOLE_ALERTING = """
[alerting]
enabled = true
group_wait = "0s"

[[contacts]]
id = "camille"
name = "Camille"
channel = "console"
clients = ["*"]
digest_at = "off"
"""

# The restaurant most tests watch (its sources and other sub-tables follow it).
RESTO_CLIENT = """
[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
"""


def config_text(
    db_url: str,
    feeds: dict[str, list[str]],
    *,
    keywords: str = '["chez gégé"]',
    extra: str = "",
    every: str = "10m",
    timeout: str = "5s",
) -> str:
    """One client per key of `feeds` (client id -> feed URLs), all with the same keywords."""
    parts = [loopback_header(db_url, timeout=timeout), extra]
    for client, urls in feeds.items():
        parts.append(f'[[clients]]\nid = "{client}"\nname = "{client}"\nkeywords = {keywords}\n')
        for n, url in enumerate(urls):
            parts.append(f'[[clients.sources]]\nkind = "rss"\nid = "f{n}"\nurl = "{url}"\nevery = "{every}"\n')
    return "\n".join(parts)


def make_config(tmp_path: Path, db_url: str, feeds: dict[str, list[str]], **kwargs: str) -> Config:
    text = config_text(db_url, feeds, **kwargs)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return parse_config(text, file=str(path), environ={})


def wait_for(predicate: Any, timeout: float) -> bool:
    """Poll `predicate` every 0.1 s until it is true (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def console_daemon_toml(db_url: str, *, sources: str, extra: str = "", client_extra: str = "") -> str:
    """The config of a daemon that prints its alerts on the console to one contact (camille), sends them at
    once (group_wait 0) and watches one client, resto ("Chez Gégé"). `sources` is the client's
    `[[clients.sources]]` tables, `client_extra` its other sub-tables (inbox...), `extra` more top-level tables
    ([web], [alerting.audience_drop]...)."""
    return f"""{loopback_header(db_url)}
[daemon]
startup_spread = "1s"
{extra}{CONSOLE_ALERTING}{RESTO_CLIENT}{client_extra}
{sources}
"""


def console_daemon_config(
    tmp_path: Path, db_url: str, *, sources: str, extra: str = "", client_extra: str = ""
) -> Path:
    """`console_daemon_toml` written to tmp_path/config.toml, with the database migrated."""
    path = tmp_path / "config.toml"
    path.write_text(console_daemon_toml(db_url, sources=sources, extra=extra, client_extra=client_extra), "utf-8")
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return path


def spawn_veille(args: Sequence[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """`python -m veille <args>` started as a user starts it (from the checkout, its own environment), its
    output written to `log`."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "veille", *args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
