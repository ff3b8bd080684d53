"""Fake Google Business Profile (reviews + OAuth token endpoint) and Places API (New) over loopback.

Written from the references: `POST /token` (form: client_id, client_secret, refresh_token,
grant_type=refresh_token; `invalid_grant` for a revoked refresh token), `GET /v4/accounts/{a}/locations/
{l}/reviews` (Bearer token; `pageSize`, `pageToken`, `orderBy=updateTime desc`; `reviews`,
`averageRating`, `totalReviewCount`, `nextPageToken`), `GET /v1/places/{id}` (`X-Goog-Api-Key`,
`X-Goog-FieldMask` required; at most five reviews) and Google's error shape
`{"error": {"code", "message", "status", "details": [{"@type": ".../google.rpc.ErrorInfo", "reason"}]}}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.support.fake_apis import T0, FakeApi, header, q1
from tests.support.server import LocalServer, Request, Response

STAR_NAMES = {1: "ONE", 2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}


def google_error(code: int, status: str, message: str, reason: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return Response.json({"error": error}, code)


def z(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def review(
    review_id: str, stars: int, text: str, *, who: str = "Sophie L.", when: datetime = T0, reply: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"accounts/1/locations/2/reviews/{review_id}",
        "reviewId": review_id,
        "reviewer": {"displayName": who, "profilePhotoUrl": "https://lh3.googleusercontent.com/a/x"},
        "starRating": STAR_NAMES[stars],
        "comment": text,
        "createTime": z(when),
        "updateTime": z(when),
    }
    if reply:
        body["reviewReply"] = {"comment": reply, "updateTime": z(when)}
    return body


@dataclass
class BusinessProfileFake(FakeApi):
    server: LocalServer
    account: str = "1"
    location: str = "2"
    client_id: str = "cid.apps.googleusercontent.com"
    client_secret: str = "csecret"
    refresh_token: str = "1//refresh"
    revoked: bool = False
    denied: bool = False
    reviews: list[dict[str, Any]] = field(default_factory=list)
    average: float | None = 4.4
    issued: list[str] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__(self.server)
        self.route("/token", self._token)
        self.route("*", self._serve)

    def expire_access_tokens(self) -> None:
        self.valid.clear()

    def _token(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return Response.json(
                {"error": "invalid_client", "error_description": "The OAuth client was not found."}, 401
            )
        if self.revoked or form.get("refresh_token") != self.refresh_token:
            return Response.json(
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, 400
            )
        token = f"ya29.token{len(self.issued)}"
        self.issued.append(token)
        self.valid.add(token)
        return Response.json({"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": "x"})

    def _serve(self, request: Request) -> Response:
        token = header(request, "Authorization").removeprefix("Bearer ")
        if token not in self.valid:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if self.denied:
            return google_error(
                403, "PERMISSION_DENIED", "The caller does not have permission", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
            )
        expected = f"/v4/accounts/{self.account}/locations/{self.location}/reviews"
        if request.path != expected:
            return google_error(404, "NOT_FOUND", "Requested entity was not found.")
        rows = sorted(self.reviews, key=lambda r: r["updateTime"], reverse=True)
        size = min(int(q1(request, "pageSize", "50") or 50), 50)
        start = int(q1(request, "pageToken", "0") or 0)
        body: dict[str, Any] = {"reviews": rows[start : start + size], "totalReviewCount": len(rows)}
        if self.average is not None:
            body["averageRating"] = self.average
        if start + size < len(rows):
            body["nextPageToken"] = str(start + size)
        if not body["reviews"]:
            del body["reviews"]  # the API omits empty lists
        return Response.json(body)


def place_review(
    place: str, n: int, stars: int, text: str, *, who: str = "Paul M.", when: datetime = T0
) -> dict[str, Any]:
    return {
        "name": f"places/{place}/reviews/R{n}",
        "relativePublishTimeDescription": "il y a une semaine",
        "rating": stars,
        "text": {"text": text, "languageCode": "fr"},
        "originalText": {"text": text, "languageCode": "fr"},
        "authorAttribution": {"displayName": who, "uri": "https://www.google.com/maps/contrib/1", "photoUri": "x"},
        "publishTime": z(when),
    }


@dataclass
class PlacesFake(FakeApi):
    server: LocalServer
    key: str = "AIzaPLACES"
    places: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.server)
        self.route("*", self._serve)

    def _serve(self, request: Request) -> Response:
        if header(request, "X-Goog-Api-Key") != self.key:
            return google_error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
            )
        if not header(request, "X-Goog-FieldMask"):
            return google_error(400, "INVALID_ARGUMENT", "FieldMask is a required parameter.")
        place_id = request.path.removeprefix("/v1/places/")
        place = self.places.get(place_id)
        if place is None:
            return google_error(404, "NOT_FOUND", f"Place '{place_id}' was not found.")
        return Response.json({**place, "reviews": place.get("reviews", [])[:5]})
