"""The reply inbox page (issue 15): what waits for the client's answer, the longest waiting first, with
"answered" and "no answer needed". Both close the item as `veille inbox done|no-reply ID` does (the
same store function), recorded with `web:<user>` as who closed it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from veille.config import Config
from veille.core.durations import format_duration
from veille.core.models import Channel
from veille.runtime.inbox import deadline_of
from veille.store import inbox as inbox_store
from veille.store.engine import write_tx
from veille.web.context import Viewer, action, db, flash, lang_of, not_found, page, render, state_of
from veille.web.pages import safe_link
from veille.web.wording import translator


def _line(item: inbox_store.InboxItem, config: Config, now: datetime, names: dict[str, str]) -> dict[str, Any]:
    deadline = deadline_of(item, config)
    return {
        "id": item.id,
        "client_id": item.client_id,
        "client": names.get(item.client_id, item.client_id),
        "channel": Channel(item.channel).label,
        "author": item.author or "",
        "excerpt": item.excerpt,
        "waiting_since": item.waiting_since,
        "waiting_for": format_duration(now - item.waiting_since),
        "deadline": deadline,
        "overdue": deadline is not None and now >= deadline,
        "url": safe_link(item.url),
    }


@page
async def inbox_page(request: Request, viewer: Viewer) -> Response:
    state = state_of(request)
    wanted = request.query_params.get("client")
    client_ids = [wanted] if wanted and viewer.client(wanted) is not None else viewer.client_ids
    items = await db(request, inbox_store.waiting, client_ids)
    now = state.clock.now()
    names = {c.id: c.name for c in viewer.clients}
    lines = [_line(item, state.config, now, names) for item in items]
    return render(
        request,
        "inbox.html",
        {
            "user": viewer.user,
            "page_name": "inbox",
            "lines": lines,
            "only": names.get(wanted) if wanted in client_ids and len(client_ids) == 1 else None,
            "back": "?" + urlencode({"client": wanted}) if wanted in client_ids and len(client_ids) == 1 else "",
        },
    )


def _close(
    engine: Engine, item_id: int, client_ids: list[str], closed: inbox_store.State, actor: str, now: datetime
) -> inbox_store.InboxItem | bool | None:
    """Close the item if it is one of the viewer's clients'; False when it is not theirs (or unknown)."""
    with write_tx(engine) as conn:
        current = inbox_store.get(conn, item_id)
        if current is None or current.client_id not in client_ids:
            return False
        return inbox_store.close_by_hand(conn, item_id, closed, actor, now)


async def _mark(request: Request, viewer: Viewer, closed: inbox_store.State) -> Response:
    state = state_of(request)
    _ = translator(lang_of(request))
    item_id: int = request.path_params["item_id"]
    done = await run_in_threadpool(
        _close, state.engine, item_id, viewer.client_ids, closed, f"web:{viewer.user.name}", state.clock.now()
    )
    if done is False:
        return not_found(request)
    if done is None:
        flash(request, _("This conversation no longer awaits an answer."))
    elif closed is inbox_store.State.ANSWERED:
        flash(request, _("#{id} marked answered.").format(id=item_id))
    else:
        flash(request, _("#{id} marked: no answer needed.").format(id=item_id))
    form = await request.form()
    back = str(form.get("back") or "")
    return RedirectResponse("/inbox" + (back if back.startswith("?client=") else ""), status_code=303)


@action
async def mark_answered(request: Request, viewer: Viewer) -> Response:
    return await _mark(request, viewer, inbox_store.State.ANSWERED)


@action
async def mark_no_reply(request: Request, viewer: Viewer) -> Response:
    return await _mark(request, viewer, inbox_store.State.NO_REPLY)
