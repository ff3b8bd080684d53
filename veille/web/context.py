"""What every handler needs: the service's state, database reads in a worker thread, the session's
user and the clients they may see, CSRF tokens, and rendering in the reader's language."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from veille.config import ClientConfig, Config
from veille.core.clock import Clock
from veille.core.i18n import available_languages, current_lang, wording
from veille.core.models import error_kind_label
from veille.store.engine import read_conn
from veille.store.users import WebUser, get_user
from veille.web.auth import LoginLimiter, csrf_ok, new_csrf_token, password_mark, visible_clients
from veille.web.wording import translator, word_for

if TYPE_CHECKING:
    from veille.runtime.webhooks import WebhookReceiver


@dataclass(slots=True)
class WebState:
    """What every handler reads; `config` is replaced when the daemon reloads its config."""

    config: Config
    engine: Engine
    clock: Clock
    limiter: LoginLimiter
    templates: Jinja2Templates
    figures: Callable[[], dict[str, Any] | None] = lambda: None  # the daemon's live figures (health file)
    receiver: WebhookReceiver | None = None  # stores Meta webhook events (the daemon's pipeline, or its own)
    extra: dict[str, Any] = field(default_factory=dict)


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


QueryArgs = ParamSpec("QueryArgs")
Result = TypeVar("Result")


async def db(
    request: Request,
    query: Callable[Concatenate[Connection, QueryArgs], Result],
    *args: QueryArgs.args,
    **kwargs: QueryArgs.kwargs,
) -> Result:
    """Run a read query in a worker thread, on a read connection (never the write lock)."""
    engine = state_of(request).engine

    def run() -> Result:
        with read_conn(engine) as conn:
            return query(conn, *args, **kwargs)

    return await run_in_threadpool(run)


# -- users, sessions and rendering -------------------------------------------------------------------


async def current_user(request: Request) -> WebUser | None:
    """The session's user, if it still exists with the same password (a new password logs it out)."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    user: WebUser | None = await db(request, get_user, name)
    if user is None or request.session.get("pw") != password_mark(user):
        request.session.clear()
        return None
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = new_csrf_token()
    return token


def lang_of(request: Request) -> str:
    chosen = request.session.get("lang")
    return chosen if chosen in available_languages() else current_lang(state_of(request).config.lang)


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> Response:
    state = state_of(request)
    lang = lang_of(request)
    flash = request.session.pop("flash", None)
    base = {
        "request": request,
        "lang": lang,
        "_": translator(lang),
        "word": word_for(lang),
        "text": wording(lang).text,  # English text stored by veille (errors, reasons, notes), in `lang`
        "error_kind": lambda kind: wording(lang)._(error_kind_label(kind)) if kind else "",
        "csrf": csrf_token(request),
        "flash": flash,
        "tz": state.config.tz,
    }
    return state.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def flash(request: Request, message: str) -> None:
    request.session["flash"] = message


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user and the clients they may see."""

    user: WebUser
    clients: list[ClientConfig]

    def client(self, client_id: str) -> ClientConfig | None:
        return next((c for c in self.clients if c.id == client_id), None)

    @property
    def client_ids(self) -> list[str]:
        return [c.id for c in self.clients]


Handler = Callable[[Request, Viewer], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page: anonymous visitors are sent to the login form (and come back after it)."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return await handler(request, Viewer(user, visible_clients(user, state_of(request).config)))

    return wrapper


def action(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A POST that changes something: refused without a login (403) or without the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        user = await current_user(request)
        if user is None:
            return PlainTextResponse("login required", status_code=403)
        form = await request.form()
        if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
            return PlainTextResponse("missing or wrong CSRF token: reload the page and try again", status_code=403)
        return await handler(request, Viewer(user, visible_clients(user, state_of(request).config)))

    return wrapper


def not_found(request: Request) -> Response:
    """The same answer for a client or incident that does not exist and one the user may not see."""
    return render(request, "error.html", {"message": translator(lang_of(request))("Not found.")}, status=404)
