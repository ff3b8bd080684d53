"""A fake Bot API server over real HTTP, with switches for every failure veille must handle.

Point python-telegram-bot at it with `Bot(token, base_url=fake.base_url)` (it ends in "/bot").
It checks HTML the way Telegram does (known tags only, balanced, entities escaped, 4096 UTF-16
units after parsing), so a rendering bug shows up as the same 400 Telegram would send.

Switches: `fail_next(method, failure, times)`, `block_chat(id)`, `migrate_chat(old, new)`,
`conflict_polling(True)`, `hang_next(method, seconds)` (accepts the message, then answers late).
Everything received is recorded in `calls` with a monotonic timestamp.
"""

from __future__ import annotations

import contextlib
import email.policy
import html
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any

from tests.support.server import LocalServer, Request, Response

ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}
_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>|&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);|[<>&]")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityError(ValueError):
    pass


def parse_telegram_html(text: str) -> str:
    """The visible text of a Telegram HTML message; EntityError where Telegram would answer 400."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if match.group(2):
            closing, tag = match.group(1) == "/", match.group(2).lower()
            if tag not in ALLOWED_TAGS:
                raise EntityError(f'Can\'t parse entities: unsupported start tag "{tag}"')
            if closing:
                if not stack or stack.pop() != tag:
                    raise EntityError(f'Can\'t parse entities: unmatched end tag "{tag}"')
            else:
                if tag == "a" and not re.fullmatch(r'\s+href="[^"<>]*"', match.group(3) or ""):
                    raise EntityError("Can't parse entities: bad <a> attributes")
                stack.append(tag)
        elif match.group(4):
            name = match.group(4)
            if name.startswith("#"):
                out.append(html.unescape(f"&{name};"))
            elif name in _NAMED:
                out.append(_NAMED[name])
            else:
                raise EntityError(f"Can't parse entities: unsupported entity &{name};")
        else:
            raise EntityError(f"Can't parse entities: character {token!r} must be escaped")
    out.append(text[pos:])
    if stack:
        raise EntityError(f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200

    @property
    def chat_id(self) -> str:
        return str(self.params.get("chat_id"))


@dataclass
class Failure:
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    html: str | None = None  # the body instead of the Bot API's JSON (Telegram's nginx front on 502/504)

    @classmethod
    def flood(cls, retry_after: int) -> Failure:
        return cls(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    @classmethod
    def entities(cls) -> Failure:
        return cls(400, 'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 0')

    @classmethod
    def blocked(cls) -> Failure:
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def kicked(cls) -> Failure:
        return cls(403, "Forbidden: bot was kicked from the group chat")

    @classmethod
    def server(cls, status: int = 502) -> Failure:
        return cls(status, "Bad Gateway")

    @classmethod
    def gateway_page(cls, status: int = 502) -> Failure:
        """What api.telegram.org's front answers when the Bot API behind it is down: nginx's HTML page."""
        title = f"{status} {'Bad Gateway' if status == 502 else 'Gateway Time-out'}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return cls(status, title, html=page)

    @classmethod
    def unauthorized(cls) -> Failure:
        return cls(401, "Unauthorized")

    @classmethod
    def conflict(cls) -> Failure:
        return cls(
            409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
        )


@dataclass
class _Script:
    failure: Failure | None = None
    hang: float = 0.0  # accept (record the message), then answer after this many seconds


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token-AbCdEfGhIjKlMnOpQrStUvWxYz"
    bot_id: int = 123456
    username: str = "veille_test_bot"
    calls: list[Call] = field(default_factory=list)
    accepted: list[Call] = field(default_factory=list)  # messages Telegram "delivered"

    def __post_init__(self) -> None:
        self._server = LocalServer()
        self._server.route("*", self._handle)
        self._lock = threading.Lock()
        self._scripts: dict[str, list[_Script]] = {}
        self._blocked: set[str] = set()
        self._migrated: dict[str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_id = 1000
        self._message_id = 0
        self._new_update = threading.Condition(self._lock)
        self._conflict = False
        self._texts: dict[tuple[str, int], str] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> FakeTelegram:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._new_update.notify_all()
        self._server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self._server.url("").rstrip("/")

    @property
    def base_url(self) -> str:
        return self.url + "/bot"

    # -- switches --------------------------------------------------------------------------------
    def fail_next(self, method: str, failure: Failure, times: int = 1) -> None:
        with self._lock:
            self._scripts.setdefault(method, []).extend(_Script(failure=failure) for _ in range(times))

    def hang_next(self, method: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._scripts.setdefault(method, []).extend(_Script(hang=seconds) for _ in range(times))

    def block_chat(self, chat_id: int | str) -> None:
        self._blocked.add(str(chat_id))

    def migrate_chat(self, old: int | str, new: int) -> None:
        self._migrated[str(old)] = new

    def conflict_polling(self, on: bool = True) -> None:
        self._conflict = on

    # -- incoming updates ------------------------------------------------------------------------
    def _chat(self, chat_id: int, chat_type: str | None = None) -> dict[str, Any]:
        kind = chat_type or ("private" if chat_id > 0 else "supergroup")
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind != "private":
            chat["title"] = "Équipe"
        return chat

    def push_update(self, update: dict[str, Any]) -> int:
        with self._lock:
            self._update_id += 1
            update = {"update_id": self._update_id, **update}
            self._updates.append(update)
            self._new_update.notify_all()
            return self._update_id

    def push_message(
        self, chat_id: int, user_id: int | None, text: str, *, chat_type: str | None = None, key: str = "message"
    ) -> int:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type),
            "text": text,
        }
        if user_id is not None:
            message["from"] = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}]
        return self.push_update({key: message})

    def push_callback(self, chat_id: int, user_id: int, data: str, message_id: int, first_name: str = "Alice") -> int:
        query = {
            "id": f"cq{self._next_message_id()}",
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "text": self._texts.get((str(chat_id), message_id), ""),
            },
        }
        return self.push_update({"callback_query": query})

    # -- inspection ------------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def sent_to(self, chat_id: int | str) -> list[Call]:
        return [c for c in list(self.accepted) if c.method == "sendMessage" and c.chat_id == str(chat_id)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [c for c in list(self.accepted) if c.method == method]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"{method}: {len(found)} accepted call(s), wanted {count}")

    def requests_seen(self) -> Iterator[str]:
        """Raw request lines (paths include the token): for leak tests."""
        for request in self._server.requests:
            yield request.path

    # -- the API ---------------------------------------------------------------------------------
    def _next_message_id(self) -> int:
        with self._lock:
            self._message_id += 1
            return self._message_id

    def _handle(self, request: Request) -> Response:
        at = time.monotonic()
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", request.path)
        if match is None:
            return Response.json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        token, method = match.groups()
        params = _params(request)
        call = Call(method, params, at)
        self.calls.append(call)
        if token != self.token:
            call.status = 401
            return _error(Failure.unauthorized())
        with self._lock:
            queue = self._scripts.get(method) or []
            script = queue.pop(0) if queue else None
        if script is not None and script.failure is not None:
            call.status = script.failure.status
            return _error(script.failure)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            call.status = 404
            return _error(Failure(404, "Not Found: method not found"))
        response = handler(call)
        if script is not None and script.hang:
            self._server.stopping.wait(script.hang)  # accepted, but the answer comes too late
        return response

    def _ok(self, call: Call, result: Any) -> Response:
        if call.method in ("sendMessage", "editMessageText", "sendDocument"):
            self.accepted.append(call)
        return Response.json({"ok": True, "result": result})

    def _api_getMe(self, call: Call) -> Response:
        return self._ok(
            call,
            {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Veille",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
        )

    def _api_deleteWebhook(self, call: Call) -> Response:
        return self._ok(call, True)

    def _api_answerCallbackQuery(self, call: Call) -> Response:
        return self._ok(call, True)

    def _check_text(self, call: Call) -> Failure | None:
        if call.method == "sendDocument":  # a caption: optional, at most 1024 characters once parsed
            key, limit, required = "caption", 1024, False
        else:
            key, limit, required = "text", 4096, True
        text = str(call.params.get(key, ""))
        if call.params.get("parse_mode") == "HTML":
            try:
                text = parse_telegram_html(text)
            except EntityError as exc:
                return Failure(400, f"Bad Request: {exc}")
        if required and not text.strip():
            return Failure(400, "Bad Request: message text is empty")
        if utf16_len(text) > limit:
            return Failure(400, f"Bad Request: message {key} is too long")
        return None

    def _route(self, call: Call) -> Failure | None:
        chat = call.chat_id
        if chat in self._migrated:
            return Failure(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat]},
            )
        if chat in self._blocked:
            return Failure.blocked() if not chat.startswith("-") else Failure.kicked()
        return self._check_text(call)

    def _api_sendMessage(self, call: Call) -> Response:
        failure = self._route(call)
        if failure is not None:
            call.status = failure.status
            return _error(failure)
        message_id = self._next_message_id()
        chat_id = int(call.params["chat_id"])
        self._texts[(str(chat_id), message_id)] = str(call.params.get("text"))
        call.params["message_id"] = message_id
        return self._ok(
            call,
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "text": call.params.get("text"),
            },
        )

    def _api_sendDocument(self, call: Call) -> Response:
        """A file upload (multipart/form-data): the file is in `call.params["document"]` as an Upload."""
        failure = self._route(call)
        document = call.params.get("document")
        if failure is None and not isinstance(document, Upload):
            failure = Failure(400, "Bad Request: there is no document in the request")
        if failure is not None:
            call.status = failure.status
            return _error(failure)
        assert isinstance(document, Upload)
        message_id = self._next_message_id()
        chat_id = int(call.params["chat_id"])
        call.params["message_id"] = message_id
        return self._ok(
            call,
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "caption": call.params.get("caption"),
                "document": {
                    "file_id": f"doc-{message_id}",
                    "file_unique_id": f"udoc-{message_id}",
                    "file_name": document.filename,
                    "file_size": len(document.content),
                },
            },
        )

    def documents_to(self, chat_id: int | str) -> list[Upload]:
        """The files delivered to a chat, oldest first."""
        return [c.params["document"] for c in self.accepted if c.method == "sendDocument" and c.chat_id == str(chat_id)]

    def _api_editMessageText(self, call: Call) -> Response:
        failure = self._route(call)
        if failure is not None:
            call.status = failure.status
            return _error(failure)
        chat_id = int(call.params["chat_id"])
        message_id = int(call.params["message_id"])
        self._texts[(str(chat_id), message_id)] = str(call.params.get("text"))
        return self._ok(
            call,
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "text": call.params.get("text"),
                "edit_date": int(time.time()),
            },
        )

    def _api_getUpdates(self, call: Call) -> Response:
        if self._conflict:
            call.status = 409
            return _error(Failure.conflict())
        offset = int(call.params.get("offset") or 0)
        timeout = min(float(call.params.get("timeout") or 0), 2.0)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._server.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._new_update.wait(min(left, 0.05))
            result = list(self._updates)
        return self._ok(call, result)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request (sendDocument)."""

    filename: str
    content: bytes


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Fields of a multipart/form-data body: text as str, files as Upload."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        fields[str(name)] = Upload(filename, content) if filename else content.decode("utf-8")
    return fields


def _params(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("Content-Type", request.headers.get("content-type", ""))
    if "multipart/form-data" in content_type:
        raw: dict[str, Any] = _multipart(content_type, request.body)
    else:
        raw = (request.json() or {}) if "json" in content_type else request.form()
    params: dict[str, Any] = dict(raw)
    for key in ("reply_markup", "link_preview_options", "allowed_updates"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _error(failure: Failure) -> Response:
    if failure.html is not None:
        return Response(failure.status, failure.html, {"Content-Type": "text/html"})
    body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
    if failure.parameters:
        body["parameters"] = failure.parameters
    return Response.json(body, failure.status)
