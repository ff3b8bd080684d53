"""The ASGI application: routes, the session and security layers.

Every page needs a logged-in user and shows only that user's clients; every POST carries the
session's CSRF token; every response has a strict Content-Security-Policy (no script at all, styles
and images from this host only). Templates are Jinja2 with autoescaping on, so any text that comes
from outside (posts, authors, error messages) is shown as text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veille.config import Config
from veille.core.clock import Clock, SystemClock
from veille.core.secrets import read_secret
from veille.web import inbox, login, metrics, pages, webhooks
from veille.web.auth import LoginLimiter
from veille.web.context import WebState

if TYPE_CHECKING:
    from veille.runtime.webhooks import WebhookReceiver

log = logging.getLogger("veille.web")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "veille_session"
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds the same protective headers to every response, errors and static files included."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _templates(state_tz: Callable[[], Any]) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def local(moment: datetime | None, fmt: str = "%d/%m %H:%M") -> str:
        return moment.astimezone(state_tz()).strftime(fmt) if moment else ""

    env.filters["local"] = local
    return Jinja2Templates(env=env)


def session_secret(config: Config) -> str:
    """The cookie-signing key from its variable; unset: a random one for this process (logins end at restart)."""
    key = read_secret(config.web.secret_env)
    if key:
        if len(key) < 32:
            log.warning("%s is shorter than 32 characters: use a long random value", config.web.secret_env)
        return key
    log.info("%s is not set: sessions are signed with a random key and end at restart", config.web.secret_env)
    return secrets.token_urlsafe(48)


def create_app(
    config: Config,
    engine: Engine,
    *,
    clock: Clock | None = None,
    secret_key: str | None = None,
    figures: Callable[[], dict[str, Any] | None] | None = None,
    limiter: LoginLimiter | None = None,
    receiver: WebhookReceiver | None = None,
) -> Starlette:
    holder: dict[str, WebState] = {}
    templates = _templates(lambda: holder["state"].config.tz)
    state = WebState(
        config=config,
        engine=engine,
        clock=clock or SystemClock(),
        limiter=limiter or LoginLimiter(config.web.login_attempts, config.web.login_window.total_seconds()),
        templates=templates,
    )
    if figures is not None:
        state.figures = figures
    state.receiver = receiver
    holder["state"] = state
    routes = [
        Route("/", pages.overview),
        Route("/clients/{client_id}", pages.client_page),
        Route("/incidents", pages.incidents_page),
        Route("/incidents/{incident_id:int}", pages.incident_page),
        Route("/incidents/{incident_id:int}/ack", pages.take_incident, methods=["POST"]),
        Route("/incidents/{incident_id:int}/snooze", pages.snooze_incident, methods=["POST"]),
        Route("/incidents/{incident_id:int}/mute", pages.mute_client, methods=["POST"]),
        Route("/sources", pages.sources_page),
        Route("/inbox", inbox.inbox_page),
        Route("/inbox/{item_id:int}/answered", inbox.mark_answered, methods=["POST"]),
        Route("/inbox/{item_id:int}/no-reply", inbox.mark_no_reply, methods=["POST"]),
        Route("/webhooks/meta", webhooks.subscribe, methods=["GET"]),
        Route("/webhooks/meta", webhooks.deliver, methods=["POST"]),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/lang", login.choose_language, methods=["POST"]),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # browsers ask; there is none
        Route("/healthz", metrics.healthz),
        Route("/metrics", metrics.metrics),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, hsts=config.web.secure_cookies),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key or session_secret(config),
            session_cookie=SESSION_COOKIE,
            max_age=int(config.web.session_max_age.total_seconds()),
            same_site="lax",  # sent when following a link (from a Telegram alert); POSTs need the CSRF token
            https_only=config.web.secure_cookies,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.web = state
    return app
