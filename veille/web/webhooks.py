"""`/webhooks/meta`: Facebook Page and Instagram events pushed by Meta (issue 13).

The one endpoint without a login: Meta cannot log in, the body's signature (`X-Hub-Signature-256`,
HMAC-SHA256 with the app secret) is its proof. A body is read up to `[web] webhook_max_body` bytes and
never parsed before its signature is checked; a bad one is refused (403) with one log line. A verified
delivery is stored before the answer, so Meta retries what could not be stored (503).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from veille.core.errors import StorageError
from veille.core.secrets import read_secret
from veille.sources.metawebhooks import SIGNATURE_HEADER, handshake, signature_valid
from veille.web.context import state_of

log = logging.getLogger("veille.web.webhooks")

STORE_TIMEOUT = 15.0  # seconds; Meta gives up on an answer after about 20 s and retries later


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def subscribe(request: Request) -> Response:
    """The subscription handshake: the challenge back when the verify token matches."""
    config = state_of(request).config.web
    token = read_secret(config.webhook_verify_token_env) or ""
    challenge = handshake(request.query_params, token)
    if challenge is None:
        log.warning("webhook subscription refused from %s: wrong or missing verify token", _address(request))
        return PlainTextResponse("verify token refused", status_code=403)
    return PlainTextResponse(challenge)


async def _body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None past `limit` bytes (announced or sent)."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def deliver(request: Request) -> Response:
    state = state_of(request)
    config = state.config.web
    secret = read_secret(config.webhook_secret_env) or ""
    receiver = state.receiver
    if not secret or receiver is None:
        log.warning("webhook delivery refused: %s is not set (webhooks are off)", config.webhook_secret_env)
        return PlainTextResponse("webhooks are not configured", status_code=404)
    body = await _body(request, config.webhook_max_body)
    if body is None:
        limit = config.webhook_max_body
        log.warning("webhook delivery refused from %s: larger than %d bytes", _address(request), limit)
        return PlainTextResponse("body too large", status_code=413)
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
        log.warning("webhook delivery refused from %s: bad %s signature", _address(request), SIGNATURE_HEADER)
        return PlainTextResponse("bad signature", status_code=403)
    try:
        payload = json.loads(body)
    except ValueError:
        log.warning("webhook delivery from %s is signed but is not JSON: left out", _address(request))
        return PlainTextResponse("not JSON", status_code=400)
    try:
        new = await asyncio.wait_for(receiver.receive(payload), STORE_TIMEOUT)
    except (StorageError, TimeoutError) as exc:
        log.error("webhook delivery not stored (%s): Meta will send it again", exc or "timeout")
        return PlainTextResponse("not stored, retry later", status_code=503)
    log.info("webhook delivery stored: %d new hits", new)
    return PlainTextResponse("ok")
