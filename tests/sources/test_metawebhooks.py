"""Meta webhooks: the signature check against files signed by openssl, the subscription handshake, and
the events turned into the same Items as the polls (own comments, echoes, reactions and reads left out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from veille.sources.metawebhooks import handshake, parse_delivery, sign, signature_valid

DATA = Path(__file__).parent / "data" / "meta_webhooks"
SECRET = "test-app-secret"
SIGNATURES = dict(line.split("\t") for line in (DATA / "SIGNATURES.tsv").read_text().splitlines())
PAGE, IG = "104512345678901", "17841400000000001"


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signatures_computed_by_openssl_are_accepted(name: str) -> None:
    body = (DATA / name).read_bytes()
    assert signature_valid(body, SIGNATURES[name], SECRET)
    assert sign(body, SECRET) == SIGNATURES[name]


@pytest.mark.parametrize(
    ("mutate", "header", "secret"),
    [
        (lambda b: b.replace(b"honte", b"joie"), None, SECRET),  # body changed after signing
        (lambda b: b, None, "another-secret"),
        (lambda b: b, "", SECRET),  # no header
        (lambda b: b, "sha1=0123", SECRET),  # the old SHA-1 header is not enough
        (lambda b: b, "sha256=", SECRET),
        (lambda b: b, None, ""),  # no app secret configured: refuse everything
    ],
)
def test_bad_signatures_are_refused(mutate, header: str | None, secret: str) -> None:
    body = (DATA / "page_feed_comment.json").read_bytes()
    signed = SIGNATURES["page_feed_comment.json"] if header is None else header
    assert not signature_valid(mutate(body), signed, secret)


def test_handshake() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "mon-jeton", "hub.challenge": "1158201444"}
    assert handshake(good, "mon-jeton") == "1158201444"
    assert handshake({**good, "hub.verify_token": "autre"}, "mon-jeton") is None
    assert handshake({**good, "hub.mode": "unsubscribe"}, "mon-jeton") is None
    assert handshake(good, "") is None
    assert handshake({k: v for k, v in good.items() if k != "hub.challenge"}, "mon-jeton") is None


def test_page_feed_comment() -> None:
    delivery = parse_delivery(json.loads((DATA / "page_feed_comment.json").read_bytes()))
    comment, answer = delivery.items[PAGE]  # the reaction and the removal bring no hit
    assert answer.from_client and answer.parent_id == f"{PAGE}_1_c9" and answer.thread_id == f"{PAGE}_1"
    assert (
        comment.external_id == f"{PAGE}_1_c9" and comment.thread_id == f"{PAGE}_1" and comment.parent_id == f"{PAGE}_1"
    )
    assert comment.author == "Marc Dupont" and comment.direct and not comment.private
    assert comment.published_at == datetime.fromtimestamp(1763640000, UTC)


def test_page_messages() -> None:
    delivery = parse_delivery(json.loads((DATA / "page_messages.json").read_bytes()))
    message, echo = delivery.items[PAGE]  # the read receipt brings none
    assert echo.from_client and echo.thread_id == "6578901234" and echo.external_id == "m_AbCdEf124"
    assert not message.from_client
    assert message.external_id == "m_AbCdEf123" and message.private and message.thread_id == "6578901234"
    assert message.text == "Bonjour, je n'ai jamais reçu ma commande" and message.extra["type"] == "message"


def test_instagram_comments_and_mentions() -> None:
    delivery = parse_delivery(json.loads((DATA / "instagram_comments.json").read_bytes()))
    top, reply = delivery.items[IG]
    assert top.thread_id == "17850000000000001" and top.parent_id == "17850000000000001" and top.author == "@julie_m"
    assert reply.parent_id == "17900000000000001" and reply.extra["type"] == "reply"
    assert delivery.mentions == [(IG, "17850000000000099", "17900000000000099")]


@pytest.mark.parametrize(
    "payload",
    [None, [], {"object": "user"}, {"object": "page", "entry": "x"}, {"object": "page", "entry": [{"changes": [1]}]}],
)
def test_foreign_shapes_bring_nothing(payload: object) -> None:
    delivery = parse_delivery(payload)
    assert delivery.items == {} and delivery.mentions == []
