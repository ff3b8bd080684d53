"""A fake Meta Graph API (Facebook Pages and Instagram) over real loopback HTTP.

Written from the Graph API reference: `/{version}/{node}/{edge}` paths, the token in the
Authorization header (or `access_token`), cursor paging (`paging.cursors.after` + `paging.next`, no
`next` on the last page), edges newest first, `comments.summary(true)` counts, inline `messages`
on conversations, the `X-App-Usage` / `X-Page-Usage` / `X-Business-Use-Case-Usage` headers, and
errors in Meta's shape (`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`)
with the statuses Meta uses (400 for OAuth and permission errors, 403 for throttling on some edges).
Failure switches: `token` (the only accepted one), `revoked`, `permissions`, `usage`, `fail_next`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.support.fake_apis import T0, FakeApi, header, q1
from tests.support.server import LocalServer, Request, Response
from veille.sources.graph import GRAPH_VERSION

PREFIX = f"/{GRAPH_VERSION}/"


def fb_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_error(
    code: int, message: str, *, subcode: int | None = None, status: int = 400, kind: str = "OAuthException"
):
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Response.json({"error": error}, status)


def not_found(node: str) -> Response:
    return graph_error(
        100,
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation.",
        subcode=33,
        kind="GraphMethodException",
    )


def fb_post(post_id: str, text: str, *, author: tuple[str, str] = ("501", "Julie Martin"), when: datetime = T0):
    return {
        "id": post_id,
        "message": text,
        "created_time": fb_time(when),
        "from": {"id": author[0], "name": author[1]},
        "permalink_url": f"https://www.facebook.com/{post_id}",
    }


def fb_comment(
    comment_id: str,
    text: str,
    *,
    author: tuple[str, str] = ("777", "Marc Dupont"),
    when: datetime = T0,
    parent: str | None = None,
):
    comment: dict[str, Any] = {
        "id": comment_id,
        "message": text,
        "created_time": fb_time(when),
        "from": {"id": author[0], "name": author[1]},
        "permalink_url": f"https://www.facebook.com/{comment_id}",
        "like_count": 0,
        "comment_count": 0,
    }
    if parent:
        comment["parent"] = {"id": parent, "created_time": fb_time(when), "message": "..."}
    return comment


def fb_message(message_id: str, text: str, *, author: tuple[str, str] = ("888", "Léa B."), when: datetime = T0):
    return {
        "id": message_id,
        "message": text,
        "created_time": fb_time(when),
        "from": {"id": author[0], "name": author[1], "email": f"{author[0]}@facebook.com"},
    }


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.b64decode(cursor).decode().split(":")[1])


# Which permission each edge needs (the Graph reference's "Permissions" section of each edge).
PERMISSIONS = {
    "feed": "pages_read_engagement",
    "comments": "pages_read_engagement",
    "tagged": "pages_read_user_content",
    "conversations": "pages_messaging",
    "ig_conversations": "instagram_manage_messages",
    "media": "instagram_basic",
    "ig_comments": "instagram_manage_comments",
    "tags": "instagram_manage_comments",
    "hashtag": "instagram_basic",
}


@dataclass
class GraphFake(FakeApi):
    server: LocalServer
    token: str = "page-token"
    revoked: bool = False
    permissions: set[str] = field(default_factory=lambda: set(PERMISSIONS.values()))
    usage: dict[str, float] = field(default_factory=lambda: {"call_count": 3, "total_time": 2, "total_cputime": 1})
    page_usage: dict[str, Any] | None = None
    business_usage: dict[str, Any] | None = None
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tagged: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # post id -> stream (replies too)
    conversations: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    ig_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    ig_media: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ig_comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # media id -> top-level comments
    ig_tags: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hashtags: dict[str, str] = field(default_factory=dict)  # name -> hashtag id
    hashtag_media: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    searched: dict[str, set[str]] = field(default_factory=dict)  # ig user -> hashtags searched (7-day window)
    hashtag_limit: int = 30
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.server)
        self.route("*", self._serve)

    # -- helpers for tests ----------------------------------------------------------------------
    def add_page(self, page_id: str, name: str = "Chez Gégé", followers: int = 1200, ig: str | None = None) -> None:
        self.pages[page_id] = {"id": page_id, "name": name, "followers_count": followers, "fan_count": followers - 50}
        if ig:
            self.pages[page_id]["instagram_business_account"] = {"id": ig}
        self.feed.setdefault(page_id, [])

    def conversation(self, page_id: str, conv_id: str, *messages: dict[str, Any], platform: str = "messenger") -> None:
        rows = self.conversations.setdefault((page_id, platform), [])
        existing = next((c for c in rows if c["id"] == conv_id), None)
        if existing is None:
            existing = {"id": conv_id, "link": f"/{page_id}/inbox/{conv_id}", "messages": []}
            rows.append(existing)
        existing["messages"] = sorted([*existing["messages"], *messages], key=lambda m: m["created_time"], reverse=True)
        existing["updated_time"] = existing["messages"][0]["created_time"]

    def edge_calls(self, edge: str) -> list[str]:
        return [c for c in self.calls if c.endswith(f"/{edge}") or c == edge]

    # -- serving --------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"X-App-Usage": json.dumps(self.usage), "facebook-api-version": GRAPH_VERSION}
        if self.page_usage is not None:
            headers["X-Page-Usage"] = json.dumps(self.page_usage)
        if self.business_usage is not None:
            headers["X-Business-Use-Case-Usage"] = json.dumps(self.business_usage)
        return headers

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response.json(body, status, self._headers())

    def _serve(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX):
            return graph_error(2500, "Unknown path components", status=400)
        path = request.path[len(PREFIX) :].strip("/")
        self.calls.append(path)
        auth = header(request, "Authorization").removeprefix("Bearer ").removeprefix("OAuth ")
        token = auth or q1(request, "access_token") or ""
        if not token:
            return graph_error(2500, "An active access token must be used to query information about the current user.")
        if token != self.token:
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        if self.revoked:
            return graph_error(
                190,
                "Error validating access token: The session has been invalidated because the user changed their "
                "password or Facebook has changed the session for security reasons.",
                subcode=460,
            )
        response = self._route(request, path.split("/"))
        response.headers.update({k: v for k, v in self._headers().items() if k not in response.headers})
        return response

    def _needs(self, edge: str) -> Response | None:
        permission = PERMISSIONS[edge]
        if permission in self.permissions:
            return None
        return graph_error(10, f"(#10) This endpoint requires the '{permission}' permission.")

    def _page(self, request: Request, rows: list[dict[str, Any]], node: str, edge: str) -> Response:
        limit = int(q1(request, "limit", "25") or 25)
        start = _offset(q1(request, "after"))
        chunk = rows[start : start + limit]
        body: dict[str, Any] = {"data": chunk}
        if chunk:
            body["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}}
            if start + limit < len(rows):
                body["paging"]["next"] = self.url(
                    f"{PREFIX}{node}/{edge}?access_token=SECRET&after={_cursor(start + limit)}"
                )
        return self._json(body)

    def _route(self, request: Request, parts: list[str]) -> Response:
        node = parts[0]
        if len(parts) == 1:
            return self._node(request, node)
        edge = parts[1]
        if node in self.pages:
            return self._page_edge(request, node, edge)
        if node in self.ig_users:
            return self._ig_edge(request, node, edge)
        if edge == "comments" and any(node == p.get("id") for rows in self.feed.values() for p in rows):
            if refused := self._needs("comments"):
                return refused
            rows = sorted(self.comments.get(node, []), key=lambda c: c["created_time"], reverse=True)
            return self._page(request, rows, node, edge)
        if edge == "comments" and any(node == m["id"] for rows in self.ig_media.values() for m in rows):
            if refused := self._needs("ig_comments"):
                return refused
            return self._page(request, self.ig_comments.get(node, []), node, edge)
        if edge == "recent_media" and node in self.hashtag_media:
            return self._page(request, self.hashtag_media[node], node, edge)
        return not_found(node)

    def _node(self, request: Request, node: str) -> Response:
        if node == "ig_hashtag_search":
            user = q1(request, "user_id") or ""
            name = (q1(request, "q") or "").lower()
            searched = self.searched.setdefault(user, set())
            if name not in searched and len(searched) >= self.hashtag_limit:
                return graph_error(
                    24, "(#24) The user has reached the limit of 30 unique hashtags per 7 days.", subcode=2207034
                )
            searched.add(name)
            tag_id = self.hashtags.get(name)
            return self._json({"data": [{"id": tag_id}] if tag_id else []})
        if node in self.pages:
            return self._json(self.pages[node])
        if node in self.ig_users:
            return self._json(self.ig_users[node])
        return not_found(node)

    def _page_edge(self, request: Request, page_id: str, edge: str) -> Response:
        if edge == "feed":
            if refused := self._needs("feed"):
                return refused
            rows = sorted(self.feed.get(page_id, []), key=lambda p: p.get("created_time", ""), reverse=True)
            rows = [
                {**p, "comments": {"data": [], "summary": {"total_count": len(self.comments.get(p.get("id", ""), []))}}}
                for p in rows
            ]
            return self._page(request, rows, page_id, edge)
        if edge == "tagged":
            if refused := self._needs("tagged"):
                return refused
            rows = sorted(
                self.tagged.get(page_id, []), key=lambda p: p.get("tagged_time", p["created_time"]), reverse=True
            )
            return self._page(request, rows, page_id, edge)
        if edge == "conversations":
            platform = q1(request, "platform", "messenger") or "messenger"
            if refused := self._needs("ig_conversations" if platform == "instagram" else "conversations"):
                return refused
            rows = sorted(
                self.conversations.get((page_id, platform), []), key=lambda c: c["updated_time"], reverse=True
            )
            if person := q1(request, "user_id"):  # the conversation with one person (webhooks name the person)
                rows = [c for c in rows if any((m.get("from") or {}).get("id") == person for m in c["messages"])]
            rows = [{**c, "messages": {"data": c["messages"][:20]}} for c in rows]
            return self._page(request, rows, page_id, edge)
        return graph_error(100, f"(#100) Tried accessing nonexisting field ({edge})")

    def _ig_edge(self, request: Request, ig: str, edge: str) -> Response:
        if edge == "media":
            if refused := self._needs("media"):
                return refused
            rows = sorted(self.ig_media.get(ig, []), key=lambda m: m["timestamp"], reverse=True)
            rows = [{**m, "comments_count": _ig_count(self.ig_comments.get(m["id"], []))} for m in rows]
            return self._page(request, rows, ig, edge)
        if edge == "tags":
            if refused := self._needs("tags"):
                return refused
            return self._page(
                request, sorted(self.ig_tags.get(ig, []), key=lambda m: m["timestamp"], reverse=True), ig, edge
            )
        return graph_error(100, f"(#100) Tried accessing nonexisting field ({edge})")


def _ig_count(comments: list[dict[str, Any]]) -> int:
    return sum(1 + len(c.get("replies", {}).get("data", [])) for c in comments)


def ig_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+0000")


def ig_media(media_id: str, caption: str, *, when: datetime = T0, username: str | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {
        "id": media_id,
        "caption": caption,
        "timestamp": ig_time(when),
        "permalink": f"https://www.instagram.com/p/{media_id}/",
        "media_type": "IMAGE",
        "like_count": 3,
        "comments_count": 0,
    }
    if username:
        media["username"] = username
    return media


def ig_comment(
    comment_id: str,
    text: str,
    *,
    username: str = "julie_m",
    when: datetime = T0,
    replies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    comment: dict[str, Any] = {
        "id": comment_id,
        "text": text,
        "timestamp": ig_time(when),
        "username": username,
        "from": {"id": f"ig{comment_id}", "username": username},
        "like_count": 0,
    }
    if replies is not None:
        comment["replies"] = {"data": replies}
    return comment


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
