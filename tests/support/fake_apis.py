"""Fake social-network APIs served over real loopback HTTP (`LocalServer`), answering like the real ones.

Each fake keeps its data in plain lists, pages it the way the real API does (Mastodon `min_id` and
`Link`, Bluesky `cursor`/`since`, Reddit `after`, X `since_id`/`next_token`, YouTube `pageToken`,
Algolia `page`), checks credentials, and sends rate-limit headers. Failure switches:
`fail_next(Response, ...)` answers the next requests with the given responses, whatever they ask.
Shapes follow the public API documentation; no recorded answer is copied here.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.server import LocalServer, Request, Response
from veille.core.clock import Clock, FakeClock
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.sources.base import PollContext

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@asynccontextmanager
async def poll_context(
    clock: Clock | None = None, env: Mapping[str, str] | None = None, cache: dict[str, Any] | None = None
) -> AsyncIterator[PollContext]:
    """A real `HttpClient` allowed to reach 127.0.0.1, and a PollContext around it."""
    async with HttpClient(HttpConfig(allow_private_addresses=True, timeout=10.0)) as http:
        values = dict(env or {})
        yield PollContext(
            http=http,
            clock=clock or FakeClock(T0),
            client_id="acme",
            source_key="acme/test",
            log=logging.getLogger("tests.sources"),
            env=values.get,
            cache=cache if cache is not None else {},
        )


def header(request: Request, name: str) -> str:
    """A request header, case-insensitively (`Request.headers` is a plain dict)."""
    lowered = name.lower()
    return next((v for k, v in request.headers.items() if k.lower() == lowered), "")


def q1(request: Request, name: str, default: str | None = None) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else default


class FakeApi:
    """Base: failure switches and a record of the requests of this fake."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self._failures: list[Response] = []

    def fail_next(self, *responses: Response) -> None:
        self._failures.extend(responses)

    def url(self, path: str = "") -> str:
        return self.server.url(path)

    def route(self, path: str, handler: Callable[[Request], Response]) -> None:
        def wrapped(request: Request) -> Response:
            if self._failures:
                return self._failures.pop(0)
            return handler(request)

        self.server.route(path, wrapped)


# --- Mastodon --------------------------------------------------------------------------------


def mastodon_account_id(acct: str) -> str:
    """Account ids on the fake instance: "resto" (the token's owner, the client) is 1."""
    return "1" if acct == "resto" else str(1000 + sum(map(ord, acct)))


def mastodon_status(
    status_id: int,
    text: str,
    *,
    acct: str = "alice",
    host: str = "social.example",
    when: datetime | None = None,
    mentions: tuple[str, ...] = (),
    likes: int = 0,
    in_reply_to: tuple[int, str] | None = None,  # (status id, acct of its author)
) -> dict[str, Any]:
    return {
        "id": str(status_id),
        "uri": f"https://{host}/users/{acct}/statuses/{status_id}",
        "url": f"https://{host}/@{acct}/{status_id}",
        "created_at": iso(when or T0 + timedelta(seconds=status_id)),
        "content": f"<p>{text}</p>",
        "spoiler_text": "",
        "language": "fr",
        "visibility": "public",
        "replies_count": 1,
        "reblogs_count": 2,
        "favourites_count": likes,
        "reblog": None,
        "in_reply_to_id": str(in_reply_to[0]) if in_reply_to else None,
        "in_reply_to_account_id": mastodon_account_id(in_reply_to[1]) if in_reply_to else None,
        "account": {
            "id": mastodon_account_id(acct),
            "username": acct,
            "acct": acct,
            "display_name": acct.title(),
            "followers_count": 42,
            "url": f"https://{host}/@{acct}",
        },
        "mentions": [
            {"id": mastodon_account_id(m), "username": m.split("@")[0], "acct": m, "url": f"https://{host}/@{m}"}
            for m in mentions
        ],
    }


class MastodonFake(FakeApi):
    def __init__(self, server: LocalServer, *, token: str = "good-token", limit: int = 300) -> None:
        super().__init__(server)
        self.token = token
        self.tags: dict[str, list[dict[str, Any]]] = {}
        self.search_results: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.limit = limit
        self.remaining = limit
        self.reset = T0 + timedelta(minutes=5)
        self.route("/api/v2/search", self._search)
        self.route("/api/v1/notifications", self._notifications)
        self.route("/api/v1/accounts/verify_credentials", self._credentials)
        self.own: list[dict[str, Any]] = []  # the client's own statuses (account 1, "resto")
        self.route("/api/v1/accounts/1/statuses", self._own_statuses)
        self.followers = 97

    def add_tag(self, tag: str, *statuses: dict[str, Any]) -> None:
        if tag not in self.tags:
            self.route(f"/api/v1/timelines/tag/{tag}", lambda r, t=tag: self._timeline(r, t))
        self.tags.setdefault(tag, []).extend(statuses)

    def mention(self, note_id: int, status: dict[str, Any]) -> None:
        self.notifications.append(
            {
                "id": str(note_id),
                "type": "mention",
                "created_at": status["created_at"],
                "account": status["account"],
                "status": status,
            }
        )

    def _headers(self) -> dict[str, str]:
        self.remaining = max(self.remaining - 1, 0)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": self.reset.isoformat().replace("+00:00", "Z"),
        }

    def _authorized(self, request: Request) -> bool:
        return header(request, "Authorization") == f"Bearer {self.token}"

    def _credentials(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "The access token is invalid"}, 401)
        account = {"id": "1", "username": "resto", "acct": "resto", "followers_count": self.followers}
        return Response.json(account, headers=self._headers())

    def _page(self, request: Request, rows: list[dict[str, Any]], path: str) -> tuple[list[dict[str, Any]], str]:
        """Mastodon paging: newest first; `min_id` gives the page just above it."""
        limit = min(int(q1(request, "limit", "20") or 20), 40)

        def key(row: Any) -> int:
            return int(row.get("id", 0)) if isinstance(row, dict) else 0

        ordered = sorted(rows, key=key, reverse=True)
        min_id, since_id, max_id = (q1(request, n) for n in ("min_id", "since_id", "max_id"))
        if max_id:
            ordered = [r for r in ordered if key(r) < int(max_id)]
        if since_id:
            ordered = [r for r in ordered if key(r) > int(since_id)]
        if min_id:
            ordered = [r for r in ordered if key(r) > int(min_id)][-limit:]
        page = ordered[:limit]
        link = ""
        if page:
            base = self.url(path)
            link = (
                f'<{base}?limit={limit}&max_id={key(page[-1])}>; rel="next", '
                f'<{base}?limit={limit}&min_id={key(page[0])}>; rel="prev"'
            )
        return page, link

    def _own_statuses(self, request: Request) -> Response:
        page, link = self._page(request, self.own, "/api/v1/accounts/1/statuses")
        headers = self._headers()
        if link:
            headers["Link"] = link
        return Response.json(page, headers=headers)

    def _timeline(self, request: Request, tag: str) -> Response:
        page, link = self._page(request, self.tags[tag], f"/api/v1/timelines/tag/{tag}")
        headers = self._headers()
        if link:
            headers["Link"] = link
        return Response.json(page, headers=headers)

    def _search(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "The access token is invalid"}, 401)
        page, _ = self._page(request, self.search_results, "/api/v2/search")
        return Response.json({"accounts": [], "statuses": page, "hashtags": []}, headers=self._headers())

    def _notifications(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response.json({"error": "The access token is invalid"}, 401)
        page, link = self._page(request, self.notifications, "/api/v1/notifications")
        headers = self._headers()
        if link:
            headers["Link"] = link
        return Response.json(page, headers=headers)


# --- Bluesky ---------------------------------------------------------------------------------


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'ES256K', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def bsky_post(
    rkey: str,
    text: str,
    *,
    did: str = "did:plc:alice",
    handle: str = "alice.bsky.social",
    when: datetime | None = None,
    mention_did: str | None = None,
    reply_to: str | None = None,
    root: str | None = None,  # the thread's first post (default: the post replied to)
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": iso(when or T0),
        "langs": ["fr"],
    }
    if mention_did:
        record["facets"] = [
            {
                "index": {"byteStart": 0, "byteEnd": 5},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mention_did}],
            }
        ]
    if reply_to:
        record["reply"] = {"parent": {"uri": reply_to, "cid": "bafy"}, "root": {"uri": root or reply_to, "cid": "bafy"}}
    return {
        "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        "cid": f"bafy{rkey}",
        "author": {"did": did, "handle": handle, "displayName": handle.split(".", maxsplit=1)[0].title()},
        "record": record,
        "replyCount": 1,
        "repostCount": 2,
        "likeCount": 3,
        "quoteCount": 1,
        "indexedAt": iso(when or T0),
    }


@dataclass
class BlueskyFake(FakeApi):
    server: LocalServer
    identifier: str = "acme.bsky.social"
    password: str = "app-pass-1234"
    did: str = "did:plc:acme"
    posts: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    own_feed: list[dict[str, Any]] = field(default_factory=list)  # the account's posts and replies
    creates: int = 0
    refreshes: int = 0
    followers: int = 342
    access_exp: float = (T0 + timedelta(hours=2)).timestamp()
    _access: set[str] = field(default_factory=set)
    _refresh: set[str] = field(default_factory=set)
    _counter: int = 0

    def __post_init__(self) -> None:
        FakeApi.__init__(self, self.server)
        self.route("/xrpc/com.atproto.server.createSession", self._create)
        self.route("/xrpc/com.atproto.server.refreshSession", self._refresh_session)
        self.route("/xrpc/app.bsky.feed.searchPosts", self._search)
        self.route("/xrpc/app.bsky.feed.getPosts", self._get_posts)
        self.route("/xrpc/app.bsky.notification.listNotifications", self._notifications)
        self.route("/xrpc/app.bsky.actor.getProfile", self._profile)
        self.route("/xrpc/app.bsky.feed.getAuthorFeed", self._author_feed)

    def _author_feed(self, request: Request) -> Response:
        refused = self._check(request)
        if refused:
            return refused
        if q1(request, "actor") not in (self.identifier, self.did):
            return Response.json({"error": "InvalidRequest", "message": "Profile not found"}, 400)
        rows = sorted(self.own_feed, key=lambda p: p["indexedAt"], reverse=True)
        if q1(request, "filter") == "posts_no_replies":
            rows = [p for p in rows if "reply" not in p["record"]]
        limit = int(q1(request, "limit", "50") or 50)
        start = int(q1(request, "cursor", "0") or 0)
        body: dict[str, Any] = {"feed": [{"post": p} for p in rows[start : start + limit]]}
        if start + limit < len(rows):
            body["cursor"] = str(start + limit)
        return Response.json(body, headers=self._headers())

    def _profile(self, request: Request) -> Response:
        refused = self._check(request)
        if refused:
            return refused
        if q1(request, "actor") not in (self.identifier, self.did):
            return Response.json({"error": "InvalidRequest", "message": "Profile not found"}, 400)
        profile = {"did": self.did, "handle": self.identifier, "followersCount": self.followers, "followsCount": 12}
        return Response.json(profile, headers=self._headers())

    def notify(self, post: dict[str, Any], reason: str = "mention") -> None:
        """A notification for the account: a post view plus `reason` (like, follow, mention...)."""
        self.notifications.append(
            {
                **{k: post[k] for k in ("uri", "cid", "author", "record", "indexedAt")},
                "reason": reason,
                "isRead": False,
                "labels": [],
            }
        )

    def _notifications(self, request: Request) -> Response:
        refused = self._check(request)
        if refused:
            return refused
        reasons = set(request.query.get("reasons", []))
        rows = sorted(
            (n for n in self.notifications if not reasons or n["reason"] in reasons),
            key=lambda n: n["indexedAt"],
            reverse=True,
        )
        limit = int(q1(request, "limit", "50") or 50)
        start = int(q1(request, "cursor", "0") or 0)
        body: dict[str, Any] = {"notifications": rows[start : start + limit]}
        if start + limit < len(rows):
            body["cursor"] = str(start + limit)
        return Response.json(body, headers=self._headers())

    def expire_access_tokens(self) -> None:
        self._access.clear()

    def revoke_refresh_tokens(self) -> None:
        self._refresh.clear()

    def _issue(self) -> Response:
        self._counter += 1
        access = jwt({"sub": self.did, "exp": self.access_exp, "n": self._counter})
        refresh = jwt({"sub": self.did, "scope": "com.atproto.refresh", "n": self._counter})
        self._access.add(access)
        self._refresh.add(refresh)
        return Response.json({"accessJwt": access, "refreshJwt": refresh, "handle": self.identifier, "did": self.did})

    def _create(self, request: Request) -> Response:
        self.creates += 1
        body = request.json()
        if body.get("identifier") != self.identifier or body.get("password") != self.password:
            return Response.json({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, 401)
        return self._issue()

    def _refresh_session(self, request: Request) -> Response:
        self.refreshes += 1
        token = header(request, "Authorization").removeprefix("Bearer ")
        if token not in self._refresh:
            return Response.json({"error": "ExpiredToken", "message": "Token has expired"}, 400)
        self._refresh.discard(token)
        return self._issue()

    def _check(self, request: Request) -> Response | None:
        token = header(request, "Authorization").removeprefix("Bearer ")
        if token not in self._access:
            return Response.json({"error": "ExpiredToken", "message": "Token has expired"}, 400)
        return None

    def _headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "2990",
            "RateLimit-Reset": str(int((T0 + timedelta(minutes=5)).timestamp())),
            "RateLimit-Policy": "3000;w=300",
        }

    def _search(self, request: Request) -> Response:
        refused = self._check(request)
        if refused:
            return refused
        query = (q1(request, "q") or "").lower()
        limit = int(q1(request, "limit", "25") or 25)
        since = q1(request, "since")
        rows = sorted(
            (p for p in self.posts if query in p["record"]["text"].lower()), key=lambda p: p["indexedAt"], reverse=True
        )
        if since:
            floor = datetime.fromisoformat(since)
            rows = [p for p in rows if datetime.fromisoformat(p["record"]["createdAt"]) >= floor]
        start = int(q1(request, "cursor", "0") or 0)
        page = rows[start : start + limit]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(rows)}
        if start + limit < len(rows):
            body["cursor"] = str(start + limit)
        return Response.json(body, headers=self._headers())

    def _get_posts(self, request: Request) -> Response:
        refused = self._check(request)
        if refused:
            return refused
        uris = request.query.get("uris", [])
        return Response.json({"posts": [p for p in self.posts if p["uri"] in uris]}, headers=self._headers())


# --- Reddit ----------------------------------------------------------------------------------


def reddit_post(
    base36: str,
    title: str,
    text: str = "",
    *,
    author: str = "bob",
    sub: str = "lyon",
    created: float | None = None,
    score: int = 5,
) -> dict[str, Any]:
    return {
        "kind": "t3",
        "data": {
            "name": f"t3_{base36}",
            "id": base36,
            "title": title,
            "selftext": text,
            "author": author,
            "subreddit": sub,
            "permalink": f"/r/{sub}/comments/{base36}/x/",
            "url": f"https://www.reddit.com/r/{sub}/",
            "created_utc": created if created is not None else T0.timestamp(),
            "score": score,
            "num_comments": 3,
        },
    }


class RedditFake(FakeApi):
    def __init__(self, server: LocalServer, *, client_id: str = "cid", secret: str = "csecret") -> None:
        super().__init__(server)
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.listings: dict[str, list[dict[str, Any]]] = {}
        self.tokens_issued = 0
        self.valid: set[str] = set()
        self.remaining = 600.0
        self.route("/api/v1/access_token", self._token)
        self.route("/api/info", self._info)

    def add(self, path: str, *things: dict[str, Any]) -> None:
        if path not in self.listings:
            self.route(path, lambda r, p=path: self._listing(r, p))
        self.listings.setdefault(path, []).extend(things)

    def revoke_tokens(self) -> None:
        self.valid.clear()

    def _token(self, request: Request) -> Response:
        grant = request.form().get("grant_type")
        if header(request, "Authorization") != self.basic or grant != "client_credentials":
            return Response.json({"message": "Unauthorized", "error": 401}, 401)
        self.tokens_issued += 1
        token = f"tok{self.tokens_issued}"
        self.valid.add(token)
        return Response.json({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def _headers(self) -> dict[str, str]:
        self.remaining -= 1
        return {
            "X-Ratelimit-Used": str(int(600 - self.remaining)),
            "X-Ratelimit-Remaining": f"{self.remaining:.1f}",
            "X-Ratelimit-Reset": "240",
        }

    def _auth(self, request: Request) -> Response | None:
        if header(request, "Authorization").removeprefix("Bearer ") not in self.valid:
            return Response.json({"message": "Unauthorized", "error": 401}, 401)
        return None

    def _listing(self, request: Request, path: str) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        rows = sorted(self.listings[path], key=lambda t: t["data"]["created_utc"], reverse=True)
        after = q1(request, "after")
        if after:
            names = [t["data"]["name"] for t in rows]
            rows = rows[names.index(after) + 1 :] if after in names else []
        limit = int(q1(request, "limit", "25") or 25)
        page = rows[:limit]
        next_after = page[-1]["data"]["name"] if len(rows) > limit else None
        return Response.json(
            {"kind": "Listing", "data": {"after": next_after, "before": None, "dist": len(page), "children": page}},
            headers=self._headers(),
        )

    def _info(self, request: Request) -> Response:
        refused = self._auth(request)
        if refused:
            return refused
        wanted = set((q1(request, "id") or "").split(","))
        rows = [t for things in self.listings.values() for t in things if t["data"]["name"] in wanted]
        return Response.json({"kind": "Listing", "data": {"after": None, "children": rows}}, headers=self._headers())


# --- X ---------------------------------------------------------------------------------------


def tweet(
    tweet_id: int,
    text: str,
    *,
    author_id: str = "u1",
    mentions: tuple[str, ...] = (),
    when: datetime | None = None,
    reply_to: tuple[int, str, int] | None = None,  # (tweet id, its author's id, the thread's first tweet id)
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(tweet_id),
        "text": text,
        "author_id": author_id,
        "lang": "fr",
        "created_at": iso(when or T0),
        "edit_history_tweet_ids": [str(tweet_id)],
        "public_metrics": {
            "retweet_count": 1,
            "reply_count": 2,
            "like_count": 3,
            "quote_count": 0,
            "impression_count": 100,
        },
    }
    if mentions:
        data["entities"] = {"mentions": [{"start": 0, "end": len(m) + 1, "username": m} for m in mentions]}
    data["conversation_id"] = str(reply_to[2] if reply_to else tweet_id)
    if reply_to:
        data["in_reply_to_user_id"] = reply_to[1]
        data["referenced_tweets"] = [{"type": "replied_to", "id": str(reply_to[0])}]
    return data


class XFake(FakeApi):
    def __init__(self, server: LocalServer, *, bearer: str = "bearer-ok") -> None:
        super().__init__(server)
        self.bearer = bearer
        self.tweets: list[dict[str, Any]] = []
        self.users = [
            {"id": "u1", "username": "carol", "name": "Carol", "public_metrics": {"followers_count": 1200}},
            {"id": "u9", "username": "ChezGege", "name": "Chez Gégé", "public_metrics": {"followers_count": 310}},
        ]
        self.posts_served = 0
        self.remaining = 450
        self.route("/2/tweets/search/recent", self._search)

    def _search(self, request: Request) -> Response:
        if header(request, "Authorization") != f"Bearer {self.bearer}":
            return Response.json(
                {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, 401
            )
        max_results = int(q1(request, "max_results", "10") or 10)
        if not 10 <= max_results <= 100:
            return Response.json(
                {
                    "errors": [{"parameters": {"max_results": [str(max_results)]}, "message": "out of range"}],
                    "title": "Invalid Request",
                },
                400,
            )
        rows = sorted(self.tweets, key=lambda t: int(t["id"]), reverse=True)
        since_id = q1(request, "since_id")
        if since_id:
            rows = [t for t in rows if int(t["id"]) > int(since_id)]
        start = int(q1(request, "next_token", "0") or 0)
        page = rows[start : start + max_results]
        self.posts_served += len(page)
        self.remaining -= 1
        headers = {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(int((T0 + timedelta(minutes=15)).timestamp())),
        }
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if start + max_results < len(rows):
            meta["next_token"] = str(start + max_results)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            body["includes"] = {"users": self.users}
        return Response.json(body, headers=headers)


# --- YouTube ---------------------------------------------------------------------------------


def yt_thread(
    comment_id: str,
    text: str,
    *,
    when: datetime | None = None,
    video: str = "vid1",
    channel: str = "UCa-vrCLQHviTOVnEKDOdetQ",
    author: str = "UCdan",
    replies: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    thread = {
        "kind": "youtube#commentThread",
        "id": comment_id,
        "snippet": {
            "channelId": channel,
            "videoId": video,
            "totalReplyCount": 2,
            "canReply": True,
            "isPublic": True,
            "topLevelComment": {
                "kind": "youtube#comment",
                "id": comment_id,
                "snippet": {
                    "authorDisplayName": "Dan" if author == "UCdan" else author,
                    "authorChannelUrl": f"http://www.youtube.com/channel/{author}",
                    "authorChannelId": {"value": author},
                    "channelId": channel,
                    "videoId": video,
                    "textDisplay": text,
                    "textOriginal": text,
                    "likeCount": 4,
                    "publishedAt": iso(when or T0),
                    "updatedAt": iso(when or T0),
                },
            },
        },
    }
    if replies:
        thread["replies"] = {"comments": list(replies)}
    return thread


def yt_reply(
    comment_id: str, parent: str, text: str, *, author: str, when: datetime, video: str = "vid1"
) -> dict[str, Any]:
    """A reply as `commentThreads.list(part=replies)` gives it: its `parentId` is the top-level comment."""
    return {
        "kind": "youtube#comment",
        "id": f"{parent}.{comment_id}",
        "snippet": {
            "authorDisplayName": author,
            "authorChannelUrl": f"http://www.youtube.com/channel/{author}",
            "authorChannelId": {"value": author},
            "videoId": video,
            "textDisplay": text,
            "textOriginal": text,
            "parentId": parent,
            "likeCount": 0,
            "publishedAt": iso(when),
            "updatedAt": iso(when),
        },
    }


def google_error(code: int, reason: str) -> Response:
    return Response.json(
        {
            "error": {
                "code": code,
                "message": reason,
                "errors": [{"message": reason, "domain": "youtube.quota", "reason": reason}],
            }
        },
        code,
    )


class YoutubeFake(FakeApi):
    def __init__(self, server: LocalServer, *, key: str = "AIzaKEY123") -> None:
        super().__init__(server)
        self.key = key
        self.threads: list[dict[str, Any]] = []
        self.calls = 0
        self.subscribers: str | None = "1520"  # statistics.subscriberCount is a string; None: hidden
        self.route("/youtube/v3/commentThreads", self._threads)
        self.route("/youtube/v3/channels", self._channels)

    def _channels(self, request: Request) -> Response:
        if q1(request, "key") != self.key:
            return google_error(400, "keyInvalid")
        statistics: dict[str, Any] = {"viewCount": "90210", "videoCount": "12", "hiddenSubscriberCount": False}
        if self.subscribers is None:
            statistics["hiddenSubscriberCount"] = True
        else:
            statistics["subscriberCount"] = self.subscribers
        item = {"kind": "youtube#channel", "id": q1(request, "id"), "statistics": statistics}
        return Response.json({"kind": "youtube#channelListResponse", "items": [item]})

    def _threads(self, request: Request) -> Response:
        self.calls += 1
        if q1(request, "key") != self.key:
            return google_error(400, "keyInvalid")
        rows = sorted(
            self.threads, key=lambda t: t["snippet"]["topLevelComment"]["snippet"]["publishedAt"], reverse=True
        )
        size = int(q1(request, "maxResults", "20") or 20)
        start = int(q1(request, "pageToken", "0") or 0)
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "items": rows[start : start + size],
            "pageInfo": {"totalResults": len(rows), "resultsPerPage": size},
        }
        if start + size < len(rows):
            body["nextPageToken"] = str(start + size)
        return Response.json(body)


# --- Hacker News -----------------------------------------------------------------------------


def hn_hit(object_id: int, text: str, *, created: int | None = None, story: bool = False) -> dict[str, Any]:
    created = created if created is not None else int(T0.timestamp()) + object_id
    hit: dict[str, Any] = {
        "objectID": str(object_id),
        "author": "erin",
        "created_at_i": created,
        "created_at": iso(datetime.fromtimestamp(created, UTC)),
        "points": 7,
        "_tags": ["story" if story else "comment", "author_erin"],
    }
    if story:
        hit.update(title=text, url="https://example.org/a", num_comments=4, story_text=None)
    else:
        hit.update(comment_text=f"<p>{text}</p>", story_id=1, story_title="A story", points=None)
    return hit


class HackerNewsFake(FakeApi):
    def __init__(self, server: LocalServer) -> None:
        super().__init__(server)
        self.hits: list[dict[str, Any]] = []
        self.route("/api/v1/search_by_date", self._search)

    def _search(self, request: Request) -> Response:
        rows = sorted(self.hits, key=lambda h: h["created_at_i"], reverse=True)
        flt = q1(request, "numericFilters")
        if flt and flt.startswith("created_at_i>"):
            rows = [h for h in rows if h["created_at_i"] > int(flt.split(">")[1])]
        per_page = int(q1(request, "hitsPerPage", "20") or 20)
        page = int(q1(request, "page", "0") or 0)
        pages = max(1, -(-len(rows) // per_page))
        return Response.json(
            {
                "hits": rows[page * per_page : (page + 1) * per_page],
                "nbHits": len(rows),
                "page": page,
                "nbPages": pages,
                "hitsPerPage": per_page,
                "query": q1(request, "query"),
            }
        )
