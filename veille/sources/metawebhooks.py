"""Meta webhooks (Facebook Page and Instagram), as pure functions the web service mounts.

https://developers.facebook.com/docs/graph-api/webhooks/getting-started:

- the subscription handshake: a GET with `hub.mode=subscribe`, `hub.verify_token` (chosen by the
  user in the app dashboard) and `hub.challenge`, answered with the challenge when the token matches;
- each delivery is a POST whose raw body is signed: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the
  body with the app secret>`; an unsigned or wrongly signed body must be refused (and never parsed);
- the body: `{"object": "page"|"instagram", "entry": [{"id": <page or IG user id>, "time", "changes":
  [{"field", "value"}], "messaging": [...]}]}`.

`parse_delivery` turns a body into the same Items the polls produce (same external ids, so a post
seen by both is stored once): Page `feed` comments and visitor posts, Page `mention`s (found elsewhere:
kept on a keyword match), Page `ratings` (recommendations, with stars when given), Messenger and
Instagram direct messages (private; `thread_id` is the customer's id, which `conversation_of` turns into
the conversation the polls know), Instagram `comments`, and Instagram `mentions` (only ids: returned for the
caller to fetch). The page's own comment replies and the echoes of its own messages are its answers
(`from_client`, as the polls mark them): they close the reply inbox's conversation at once. Removals,
hides, reactions, likes, the page's own posts, reads and deliveries bring no hit. Polling stays the
fallback that fills any gap.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veille.core.models import Item
from veille.sources._common import bounded, dig, int_of, list_of, load_cursor, parse_time, require_secret, text_of
from veille.sources.base import PollContext
from veille.sources.facebook import MESSAGING_PERMISSION, FacebookOptions, post_item
from veille.sources.facebook import comment_item as page_comment_item
from veille.sources.graph import Graph, as_kept
from veille.sources.instagram import MESSAGES as INSTAGRAM_MESSAGES
from veille.sources.instagram import InstagramOptions
from veille.sources.instagram import comment_item as instagram_comment_item

SIGNATURE_HEADER = "X-Hub-Signature-256"
_FEED_ITEMS = {"comment", "post", "status", "photo", "video", "share"}
_KEPT_VERBS = {"add", "edited"}


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body with the app secret."""
    if not header or not app_secret:
        return False
    scheme, _, received = header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta sends for `body` (tests, and a relay that re-signs)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to answer to a subscription request, or None to refuse it (answer 403)."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(params.get("hub.verify_token", ""), verify_token):
        return None
    challenge = params.get("hub.challenge")
    return challenge or None


def webhook_account(options: object, cursor: str | None) -> tuple[str, str] | None:
    """(webhook object, account id) whose events belong to a source with these options: a Page's id for
    `facebook`, the Instagram user id (configured, or found by a poll and kept in its cursor) for
    `instagram`; None for any other kind."""
    if isinstance(options, FacebookOptions):
        return "page", options.page_id
    if isinstance(options, InstagramOptions):
        ig = options.ig_user_id or text_of(load_cursor(cursor), "ig")
        return ("instagram", ig) if ig else None
    return None


async def conversation_of(ctx: PollContext, options: object, person: str) -> str | None:
    """The id of the page's conversation with `person`: a message event names only the person (its
    page-scoped id), the polls name the conversation (`/{page}/conversations`), and the reply inbox follows
    a conversation by that id, so that the page's answer found by a poll closes what a webhook opened.
    Read with `user_id` (Graph API, Conversations reference); None when no such conversation is listed."""
    if isinstance(options, FacebookOptions):
        page, platform, permission, base, token = (
            options.page_id,
            "messenger",
            MESSAGING_PERMISSION,
            options.api_base,
            options.token_env,
        )
    elif isinstance(options, InstagramOptions):
        page, platform, permission, base, token = (
            options.page_id,
            "instagram",
            INSTAGRAM_MESSAGES,
            options.api_base,
            options.token_env,
        )
    else:
        return None
    graph = Graph(ctx, base, require_secret(ctx, token))
    body = await graph.get(
        f"{page}/conversations",
        {"user_id": person, "platform": platform, "fields": "id"},
        what=f"{platform} conversation of {page} with {person}",
        permission=permission,
    )
    found = [text_of(c, "id") for c in list_of(body, "data")]
    return next((c for c in found if c), None)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one webhook body holds for veille, per account (page or Instagram user id)."""

    items: dict[str, list[Item]] = field(default_factory=dict)  # account id -> new items
    mentions: list[tuple[str, str, str]] = field(default_factory=list)  # (account, media id, comment id) to fetch

    def add(self, account: str, item: Item | None) -> None:
        if item is not None:
            self.items.setdefault(account, []).append(item)


def _message(event: Any, account: str) -> Item | None:
    """A Messenger / Instagram direct message: a customer's to the account, or the account's own answer
    (an echo), in the thread of the customer."""
    message = dig(event, "message")
    sender = text_of(event, "sender", "id")
    mid = text_of(message, "mid")
    if not isinstance(message, Mapping) or not mid or dig(message, "is_deleted") is True:
        return None
    echo = dig(message, "is_echo") is True or sender == account
    customer = text_of(event, "recipient", "id") if echo else sender
    attachments = [text_of(a, "type") for a in list_of(message, "attachments")]
    text = text_of(message, "text") or " ".join(f"[{a}]" for a in attachments if a)
    return Item(
        external_id=mid,
        text=bounded(text),
        author=sender,
        published_at=parse_time((int_of(event, "timestamp") or 0) / 1000) if int_of(event, "timestamp") else None,
        direct=True,
        private=True,
        thread_id=customer,
        parent_id=text_of(message, "reply_to", "mid"),
        from_client=echo,
        extra={"type": "message", **({"author_id": sender} if sender else {})},
    )


def _feed(value: Any, account: str) -> Item | None:
    """A Page `feed` change: a comment or a visitor post added or edited; the page's own comment is its
    answer (`from_client`), its own post no hit."""
    if text_of(value, "item") not in _FEED_ITEMS or text_of(value, "verb") not in _KEPT_VERBS:
        return None
    own = text_of(value, "from", "id") == account
    created = dig(value, "created_time")  # epoch seconds
    if text_of(value, "item") == "comment":
        comment_id = text_of(value, "comment_id")
        parent = text_of(value, "parent_id")
        post = text_of(value, "post_id")
        shaped = {
            "id": comment_id,
            "message": text_of(value, "message"),
            "created_time": created,
            "from": dig(value, "from"),
            **({"parent": {"id": parent}} if parent and parent != post else {}),
        }
        comment = page_comment_item(shaped, post)
        return as_kept(comment, own) if comment is not None else None
    if own:
        return None
    shaped = {
        "id": text_of(value, "post_id"),
        "message": text_of(value, "message"),
        "created_time": created,
        "from": dig(value, "from"),
    }
    return post_item(shaped)


def _mention(value: Any) -> Item | None:
    """The page mentioned in a post or comment elsewhere: found outside its channels, keyword-selected."""
    if text_of(value, "verb") not in _KEPT_VERBS:
        return None
    external = text_of(value, "comment_id") or text_of(value, "post_id")
    if not external:
        return None
    return Item(
        external_id=external,
        text=bounded(text_of(value, "message")),
        author=text_of(value, "sender_name") or text_of(value, "from", "name"),
        published_at=parse_time(int_of(value, "created_time")),
        direct=True,
        needs_keywords=True,
        thread_id=text_of(value, "post_id"),
        parent_id=text_of(value, "post_id") if text_of(value, "comment_id") else None,
        extra={"type": "mention"},
    )


def _rating(value: Any) -> Item | None:
    """A Page recommendation (`ratings` field): the reviewer's text and, when given, stars."""
    if text_of(value, "item") != "rating" or text_of(value, "verb") not in _KEPT_VERBS:
        return None
    story = text_of(value, "open_graph_story_id")
    if not story:
        return None
    stars = int_of(value, "rating")
    stars = stars if stars is not None and 1 <= stars <= 5 else None
    return Item(
        external_id=story,
        text=bounded(text_of(value, "review_text")),
        author=text_of(value, "reviewer_name") or text_of(value, "reviewer_id"),
        author_name=text_of(value, "reviewer_name"),
        published_at=parse_time(int_of(value, "created_time")),
        direct=True,
        thread_id=story,
        stars=stars,
        extra={"type": "recommendation", "recommendation": text_of(value, "recommendation_type") or ""},
    )


def _instagram_change(change: Any, account: str, delivery: Delivery) -> None:
    value = dig(change, "value")
    name = text_of(change, "field")
    if name in ("comments", "live_comments"):
        item = instagram_comment_item(value, None)
        if item is not None and item.extra.get("author_id") != account:
            delivery.add(account, item)
    elif name == "mentions":
        media, comment = text_of(value, "media_id"), text_of(value, "comment_id")
        if media:
            delivery.mentions.append((account, media, comment or ""))


def parse_delivery(payload: Any) -> Delivery:
    """Every hit in one (already verified) webhook body; unknown shapes and fields are skipped."""
    delivery = Delivery()
    kind = text_of(payload, "object")
    if kind not in ("page", "instagram"):
        return delivery
    for entry in list_of(payload, "entry"):
        account = text_of(entry, "id") or ""
        for event in list_of(entry, "messaging") + list_of(entry, "standby"):
            delivery.add(account, _message(event, account))
        for change in list_of(entry, "changes"):
            if kind == "instagram":
                _instagram_change(change, account, delivery)
                continue
            value = dig(change, "value")
            name = text_of(change, "field")
            if name == "feed":
                delivery.add(account, _feed(value, account))
            elif name == "mention":
                delivery.add(account, _mention(value))
            elif name == "ratings":
                delivery.add(account, _rating(value))
    return delivery
