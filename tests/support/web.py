"""A dashboard to test: a database filled by the real pipeline (feeds served on loopback, `run_once`
with alerting, so an incident opens), users made by `veille web passwd`, and the real app served
by uvicorn on a free loopback port in a thread."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import uvicorn
from click.testing import CliRunner

from tests.support.feedgen import ANGRY, rss
from tests.support.server import LocalServer, Response
from veille.config import Config, load_config
from veille.core.clock import SystemClock
from veille.store.engine import make_engine
from veille.store.migrate import upgrade

PASSWORDS = {"camille": "camille-secret-42", "alex": "alex-secret-4242"}
SCRIPT_POST = "<script>alert('pwned')</script> chez gégé <b>gras</b>"

CONFIG = """
timezone = "Europe/Paris"
[database]
url = "{db_url}"
[http]
allow_private_addresses = true
timeout = "5s"
[web]
login_attempts = 3
login_window = "10m"
page_size = 10
[alerting]
enabled = true
[[contacts]]
id = "camille"
name = "Camille"
channel = "console"
address = "camille"
clients = ["resto"]
[[contacts]]
id = "alex"
name = "Alex"
channel = "console"
address = "alex"
clients = ["tapis"]

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
  [[clients.sources]]
  kind = "rss"
  id = "news"
  url = "{resto_feed}"
  [[clients.sources]]
  kind = "rss"
  id = "broken"
  url = "{broken_feed}"
{resto_own}
[[clients]]
id = "tapis"
name = "Tapis Dupont"
keywords = ["tapis dupont"]
  [[clients.sources]]
  kind = "rss"
  id = "news"
  url = "{tapis_feed}"
{tapis_own}"""

# `filled_site(inbox=True)`: each client's Facebook Page, whose Messenger conversation waits for an answer.
PAGES = {
    "resto": ("104512345678901", "Bonjour, vous avez une table pour 4 ce soir ?"),
    "tapis": ("204512345678902", "Bonjour, où en est ma commande de tapis ?"),
}
FB_TOKEN_ENV = "VEILLE_TEST_FB_TOKEN"
OWN_SOURCE = """
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{page}"
  token_env = "{token_env}"
  api_base = "{api}"
  recent_posts = 0
"""


def _items(texts: list[str], prefix: str) -> list[dict[str, str]]:
    now = format_datetime(datetime.now(UTC))
    return [
        {"title": text[:70], "text": text, "guid": f"urn:{prefix}:{n}", "link": f"https://example.org/{prefix}/{n}"}
        | {"date": now}
        for n, text in enumerate(texts)
    ]


def resto_feed() -> str:
    calm = [f"Dîner tranquille chez Gégé, rien à signaler (soirée {n})" for n in range(14)]
    # The post with markup: its description is HTML whose text is the literal tag, as a feed would carry it.
    items = _items([*ANGRY, *calm], "resto")
    items.append(
        {
            "title": "Un avis chez gégé",
            "text": SCRIPT_POST.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "guid": "urn:resto:script",
            "link": "javascript:alert(1)",
            "date": items[0]["date"],
        }
    )
    return rss(items)


TAPIS_ANGRY = [
    "Tapis Dupont : arnaque totale, je porte plainte, scandale",
    "Tapis Dupont m'a escroqué, honte à eux, fuyez",
    "Scandale chez Tapis Dupont, tapis moisi livré, inadmissible",
    "Tapis Dupont refuse le remboursement, arnaque, avocat contacté",
    "Boycott de Tapis Dupont, service honteux et mensonges",
    "Tapis Dupont : escroquerie, plainte déposée, à éviter",
]


def tapis_feed() -> str:
    return rss(_items([*TAPIS_ANGRY, *(f"Tapis Dupont secret interne numéro {n}" for n in range(5))], "tapis"))


@dataclass
class Site:
    config: Config
    config_path: Path
    feeds: LocalServer


def make_users(config_path: Path) -> None:
    from veille.cli import cli

    runner = CliRunner()
    for name, password in PASSWORDS.items():
        result = runner.invoke(
            cli, ["web", "passwd", name, "--config", str(config_path)], input=f"{password}\n{password}\n"
        )
        assert result.exit_code == 0, result.output


@contextmanager
def _pages_waiting_for_answers() -> Iterator[dict[str, str]]:
    """A local Graph API where each client's page has a customer's message waiting, and its token set."""
    from tests.support.fake_graph import GraphFake, fb_message

    previous = os.environ.get(FB_TOKEN_ENV)
    os.environ[FB_TOKEN_ENV] = "page-token"
    try:
        with LocalServer() as api:
            fake = GraphFake(api, token="page-token")
            now = datetime.now(UTC) - timedelta(hours=2)
            own = {}
            for client, (page, text) in PAGES.items():
                fake.add_page(page)
                fake.conversation(page, f"t_{client}", fb_message(f"m_{client}", text, when=now))
                own[f"{client}_own"] = OWN_SOURCE.format(page=page, token_env=FB_TOKEN_ENV, api=api.url("").rstrip("/"))
            yield own
    finally:
        if previous is None:
            os.environ.pop(FB_TOKEN_ENV, None)
        else:
            os.environ[FB_TOKEN_ENV] = previous


@contextmanager
def filled_site(
    tmp_path: Path, db_url: str, *, poll: bool = True, extra: str = "", inbox: bool = False
) -> Iterator[Site]:
    """Config + database filled by one real poll of every source, with an incident open on resto and on
    tapis (`poll=False`: configured and migrated only). `extra` is appended to the config file. `inbox`:
    each client also has a Facebook Page whose customer's message waits for an answer (reply inbox)."""
    from veille.runtime.once import run_once

    with ExitStack() as stack:
        own = stack.enter_context(_pages_waiting_for_answers()) if inbox else {"resto_own": "", "tapis_own": ""}
        yield stack.enter_context(_filled(tmp_path, db_url, poll=poll, extra=extra, own=own, run_once=run_once))


@contextmanager
def _filled(
    tmp_path: Path, db_url: str, *, poll: bool, extra: str, own: dict[str, str], run_once: Any
) -> Iterator[Site]:
    with LocalServer() as feeds:
        feeds.route("/resto.xml", Response(200, resto_feed(), {"Content-Type": "application/rss+xml"}))
        feeds.route("/tapis.xml", Response(200, tapis_feed(), {"Content-Type": "application/rss+xml"}))
        feeds.route("/broken.xml", Response(500, "down"))
        path = tmp_path / "config.toml"
        path.write_text(
            CONFIG.format(
                db_url=db_url,
                resto_feed=feeds.url("/resto.xml"),
                tapis_feed=feeds.url("/tapis.xml"),
                broken_feed=feeds.url("/broken.xml"),
                **own,
            )
            + extra,
            encoding="utf-8",
        )
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        config = load_config(str(path), environ={})
        if poll:
            asyncio.run(run_once(config))
        make_users(path)
        yield Site(config, path, feeds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    url: str
    app: Any


@contextmanager
def serving(config: Config, **app_options: Any) -> Iterator[Live]:
    """The real app under uvicorn on 127.0.0.1 in a thread, until the block ends."""
    from veille.web.app import create_app

    engine = make_engine(config.database_url)
    app = create_app(config, engine, clock=SystemClock(), secret_key="k" * 40, **app_options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield Live(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()
