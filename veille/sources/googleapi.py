"""What the Google review sources share: Google's JSON error shape, and an OAuth access token from a
refresh token (Business Profile).

Errors (https://cloud.google.com/apis/design/errors): `{"error": {"code", "message", "status",
"details": [{"reason": ...}]}}`. UNAUTHENTICATED and an invalid key are credentials refused; PERMISSION_DENIED
is too (an API not enabled, a location the account does not manage), named with its reason;
NOT_FOUND is an id that does not exist; RESOURCE_EXHAUSTED is a quota, waited out.

The token exchange (https://developers.google.com/identity/protocols/oauth2/web-server#offline):
POST client_id, client_secret, refresh_token, grant_type=refresh_token to the token URL; `invalid_grant`
means the refresh token expired or was revoked. The access token (an hour) is kept in `ctx.cache`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from veille.core.errors import AuthFailed, FetchError, PermanentFetchError, RateLimited, RetryableFetchError
from veille.core.models import ErrorKind
from veille.sources._common import BadResponse, cap_wait, dig, int_of, list_of, parse_json, text_of
from veille.sources.base import PollContext

DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
QUOTA_WAIT = 3600.0
TOKEN_CACHE = "google_access_token"  # noqa: S105 - a cache key
_KEY_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED"}


def _reason(body: bytes) -> tuple[str | None, str | None]:
    """(status, reason) of a Google error body; reason from `details[].reason` or `errors[].reason`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = dig(data, "error")
    if not isinstance(error, Mapping):
        return None, None
    reasons = [text_of(d, "reason") for d in list_of(error, "details")] + [text_of(error, "errors", 0, "reason")]
    return text_of(error, "status"), next((r for r in reasons if r), None)


def google_error(what: str, status: int, body: bytes, retry_after: float | None) -> FetchError:
    """The FetchError for a Google API error answer."""
    code, reason = _reason(body)
    detail = " ".join(x for x in (code, reason) if x) or f"HTTP {status}"
    if code == "RESOURCE_EXHAUSTED" or status == 429:
        return RateLimited(f"{what}: quota exhausted ({detail})", retry_after=cap_wait(retry_after or QUOTA_WAIT))
    if code == "UNAUTHENTICATED" or status == 401 or reason in _KEY_REASONS:
        return AuthFailed(f"{what}: credentials refused ({detail})")
    if code == "PERMISSION_DENIED" or status == 403:
        return AuthFailed(f"{what}: access denied ({detail}); check the API is enabled and the account manages it")
    if code == "NOT_FOUND" or status == 404:
        return PermanentFetchError(ErrorKind.NOT_FOUND, f"{what}: not found ({detail}); check the id")
    if status >= 500:
        return RetryableFetchError(ErrorKind.HTTP_5XX, f"{what}: {detail}")
    return PermanentFetchError(ErrorKind.HTTP_4XX, f"{what}: {detail}")


async def access_token(
    ctx: PollContext, token_url: str, client_id: str, client_secret: str, refresh_token: str, *, renew: bool = False
) -> str:
    """A valid access token, from the cache or exchanged for the refresh token."""
    cached = ctx.cache.get(TOKEN_CACHE)
    if not renew and isinstance(cached, tuple) and cached[1] > ctx.clock.monotonic():
        return str(cached[0])
    response = await ctx.http.request(
        "POST",
        token_url,
        data={
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        },
        accept_statuses=frozenset(range(400, 600)),
    )
    if response.status != 200:
        try:
            error = text_of(json.loads(response.body), "error")
        except (ValueError, UnicodeDecodeError):
            error = None
        if error == "invalid_grant":
            raise AuthFailed("google: refresh token expired or revoked (invalid_grant); authorise veille again")
        if error in ("invalid_client", "unauthorized_client") or response.status in (400, 401, 403):
            raise AuthFailed(f"google: OAuth client refused ({error or response.status})")
        raise RetryableFetchError(ErrorKind.HTTP_5XX, f"google token endpoint: HTTP {response.status}")
    data = parse_json(response.body, "google token")
    token = text_of(data, "access_token")
    if not token:
        raise BadResponse("google token: no access_token")
    lifetime = int_of(data, "expires_in") or 3600
    ctx.cache[TOKEN_CACHE] = (token, ctx.clock.monotonic() + max(lifetime - 60, 30))
    return token
