"""The dashboard as a task of the daemon: it serves until the daemon stops, and a port already taken
costs the daemon nothing but one error line (uvicorn's exit is caught)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.support.web import CONFIG, free_port
from veille.config import Config, parse_config
from veille.store.engine import make_engine
from veille.store.migrate import upgrade
from veille.web.server import daemon_task


def config_for(tmp_path: Path, port: int) -> Config:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    feeds = {"resto_feed": "https://example.org/r.xml", "tapis_feed": "https://example.org/t.xml"}
    config = parse_config(
        CONFIG.format(db_url=url, broken_feed="https://example.org/b.xml", resto_own="", tapis_own="", **feeds),
        environ={},
    )
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return replace(config, web=replace(config.web, enabled=True, port=port))


async def test_serves_until_the_daemon_stops(tmp_path: Path) -> None:
    config = config_for(tmp_path, free_port())
    engine = make_engine(config.database_url)
    run, reload = daemon_task(config, engine)
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    base = f"http://127.0.0.1:{config.web.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(100):
            try:
                health = await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert health.status_code == 200 and health.json()["database"] is True
        reload(replace(config, clients=config.clients[:1]))  # a SIGHUP while serving
        stop.set()
        await asyncio.wait_for(task, 10)
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")
    engine.dispose()


async def test_a_taken_port_does_not_stop_the_daemon(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = config_for(tmp_path, taken.getsockname()[1])
        engine = make_engine(config.database_url)
        run, _ = daemon_task(config, engine)
        await asyncio.wait_for(run(asyncio.Event()), 10)  # returns instead of raising SystemExit
        engine.dispose()
    assert "could not listen" in caplog.text
