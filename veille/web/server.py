"""Serving the dashboard with uvicorn: alone (`veille web`) or as one more task of `veille run`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from collections.abc import Callable, Generator

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from veille.config import Config
from veille.core.clock import Clock, SystemClock
from veille.core.secrets import read_secret
from veille.runtime.health import health_path
from veille.runtime.webhooks import WebhookReceiver, standalone_receiver
from veille.runtime.wiring import BackgroundJob, Components
from veille.web.app import create_app
from veille.web.metrics import health_file_figures
from veille.web.pages import warm_overview

log = logging.getLogger("veille.web")


def warn_if_exposed(config: Config, host: str) -> None:
    """Listening beyond loopback without HTTPS in front sends passwords and cookies in clear text."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not config.web.secure_cookies:
        log.warning(
            "the dashboard listens on %s without an https:// public_url: put it behind a reverse proxy with "
            "HTTPS (README) and set [web] public_url, or keep host = 127.0.0.1",
            host,
        )


def build_app(
    config: Config, engine: Engine, *, clock: Clock | None = None, receiver: WebhookReceiver | None = None
) -> Starlette:
    """The app with the daemon's figures read from its health file (the same for both ways to serve),
    its overview counts being read in the background."""
    app = create_app(config, engine, clock=clock, figures=health_file_figures(health_path(config)), receiver=receiver)
    threading.Thread(target=warm_overview, args=(app.state.web,), name="veille-web-warm", daemon=True).start()
    return app


def server_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    # proxy_headers: X-Forwarded-For/-Proto are believed only from forwarded_allow_ips (127.0.0.1 by
    # default), i.e. a reverse proxy on this host; the login limiter then sees the real address.
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off", proxy_headers=True
    )


def serve(config: Config, engine: Engine, *, host: str, port: int) -> None:
    """`veille web`: serve until SIGINT/SIGTERM; with the webhook app secret set, Meta's events are
    stored through a pipeline of its own."""
    app = build_app(config, engine)
    warn_if_exposed(config, host)

    async def main() -> None:
        server = uvicorn.Server(server_config(app, host, port))
        if not read_secret(config.web.webhook_secret_env):
            log.info("dashboard on http://%s:%d/", host, port)
            await server.serve()
            return
        async with standalone_receiver(config, engine, SystemClock()) as receiver:
            app.state.web.receiver = receiver
            log.info("dashboard on http://%s:%d/ (webhooks on /webhooks/meta)", host, port)
            await server.serve()

    asyncio.run(main())


class _EmbeddedServer(uvicorn.Server):
    """Inside the daemon: the daemon owns the signals and tells the server when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def attach_to_daemon(config: Config, components: Components) -> None:
    """`veille run` with `[web] enabled = true`: the dashboard runs as one of the daemon's tasks."""
    if config.web.enabled:
        receiver = WebhookReceiver(components.pipeline) if read_secret(config.web.webhook_secret_env) else None
        run, reload = daemon_task(config, components.engine, receiver=receiver)
        components.background.append(run)
        components.reloaders.append(reload)


def daemon_task(
    config: Config, engine: Engine, *, clock: Clock | None = None, receiver: WebhookReceiver | None = None
) -> tuple[BackgroundJob, Callable[[Config], None]]:
    """The dashboard as a background task of `veille run` (stops with it), and the reloader that
    hands it a reloaded config (clients). `receiver` stores webhook events through the daemon's pipeline."""
    app = build_app(config, engine, clock=clock, receiver=receiver)
    host, port = config.web.host, config.web.port
    warn_if_exposed(config, host)

    async def run(stop: asyncio.Event) -> None:
        server = _EmbeddedServer(server_config(app, host, port))

        async def guarded() -> None:
            try:
                await server.serve()
            except SystemExit:  # uvicorn exits when it cannot listen: the daemon must keep polling
                log.error("dashboard could not listen on %s:%d; the daemon runs without it", host, port)

        serving = asyncio.create_task(guarded(), name="veille-web")
        stopping = asyncio.create_task(stop.wait())
        log.info("dashboard on http://%s:%d/", host, port)
        done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:  # it could not start (port taken...): the daemon keeps polling
            stopping.cancel()
            if serving.exception() is not None:
                log.error("dashboard stopped: %s", serving.exception())
            return
        server.should_exit = True
        await serving

    def reload(new: Config) -> None:
        app.state.web.config = new

    return run, reload
