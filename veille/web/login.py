"""Logging in and out, and choosing the language. Failed logins are limited per user name and per
address; a successful one starts a fresh session (new CSRF token) so nothing from before carries over."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from veille.core.i18n import available_languages
from veille.store.users import get_user
from veille.web.auth import csrf_ok, new_csrf_token, password_mark, verify_password
from veille.web.context import current_user, db, lang_of, render, state_of
from veille.web.wording import translator

log = logging.getLogger("veille.web")


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never //host or a scheme): no open redirect after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _client_address(request: Request) -> str:
    # uvicorn puts X-Forwarded-For's client here when the proxy is trusted (forwarded_allow_ips)
    return request.client.host if request.client else "?"


async def login_form(request: Request) -> Response:
    if await current_user(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})


async def login_submit(request: Request) -> Response:
    state = state_of(request)
    _ = translator(lang_of(request))
    form = await request.form()
    target = _safe_next(str(form.get("next") or ""))
    if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
        return render(request, "login.html", {"next": target, "error": _("The form expired: try again.")}, status=403)
    name = str(form.get("name") or "").strip()[:80]
    password = str(form.get("password") or "")[:1024]
    keys = [f"user:{name.lower()}", f"addr:{_client_address(request)}"]
    wait = state.limiter.retry_after(keys)
    if wait is not None:
        log.warning("login refused for %r from %s: too many failed attempts", name, _client_address(request))
        minutes = max(1, round(wait / 60))
        response = render(
            request,
            "login.html",
            {
                "next": target,
                "error": _("Too many failed attempts: try again in {minutes} min.").format(minutes=minutes),
            },
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await db(request, get_user, name) if name else None
    if not await run_in_threadpool(verify_password, user, password) or user is None:
        state.limiter.failed(keys)
        log.info("failed login for %r from %s", name, _client_address(request))
        return render(request, "login.html", {"next": target, "error": _("Wrong name or password.")}, status=401)
    state.limiter.succeeded(keys[:1])
    lang = request.session.get("lang")
    request.session.clear()  # a fresh session: nothing from before the login carries over
    request.session.update({"user": user.name, "pw": password_mark(user), "csrf": new_csrf_token()})
    if lang:
        request.session["lang"] = lang
    log.info("web login: %s", user.name)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
        return PlainTextResponse("missing or wrong CSRF token", status_code=403)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def choose_language(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
        return PlainTextResponse("missing or wrong CSRF token", status_code=403)
    if form.get("lang") in available_languages():
        request.session["lang"] = form.get("lang")
    return RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
