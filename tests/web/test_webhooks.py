"""Meta webhooks received by the dashboard's service (issue 13), through real processes on loopback.

Inside `veille run` ([web] enabled): a signed Page `feed` event with a furious comment is stored once by
the daemon's own pipeline, scored negative, alerted on the console and put in the reply inbox; the same
delivery again stores nothing, and a later poll of the page finds the comment and stores nothing new.
`veille web` alone: the recorded Page and Instagram payloads (../shared/fixtures/api, signed here with a
test secret) and an Instagram mention (read back from the local Graph API) land in the database with no
login; the handshake, bad signatures, unsigned bodies and oversized bodies are refused, each with one
log line, while the pages still ask for a login.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.daemon import console_daemon_config, spawn_veille, wait_for
from tests.support.fake_graph import GraphFake, fb_comment, fb_post
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer
from tests.support.web import free_port
from veille.sources.metawebhooks import parse_delivery, sign
from veille.store.engine import make_engine, read_conn
from veille.store.schema import hits
from veille.store.schema_inbox import inbox

pytestmark = pytest.mark.slow

SECRET, VERIFY = "test-app-secret", "mon-jeton-de-verification"
PAGE = "104512345678901"
FURIOUS = "Intoxication alimentaire après votre menu de Noël, c'est une honte, plus jamais, je porte plainte !"
SHARED = REPO_ROOT.parent / "shared" / "fixtures" / "api"
ENV = {"FB_RESTO": "page-token", "VEILLE_META_APP_SECRET": SECRET, "VEILLE_META_VERIFY_TOKEN": VERIFY}


def write_config(tmp_path: Path, api: str, port: int, sources: str, extra: str = "") -> Path:
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    web = f"[web]\nenabled = true\nport = {port}\n{extra}"
    return console_daemon_config(tmp_path, db_url, sources=sources.replace("API", api), extra=web)


@contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    process = spawn_veille(args, log, {**os.environ, **ENV, "VEILLE_LANG": "fr"})
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def wait_listening(base: str, log: Path) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503)
        except httpx.TransportError:
            return False

    assert wait_for(up, 60), log.read_text()[-3000:]


def post(base: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return httpx.post(f"{base}/webhooks/meta", content=body, headers=headers, timeout=30)


def count(db: Path, *where: object) -> int:
    engine = make_engine(f"sqlite:///{db}")
    with read_conn(engine) as conn:
        found = conn.execute(select(func.count()).select_from(hits).where(*where)).scalar_one()
    engine.dispose()
    return int(found)


FB_SOURCE = """
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "104512345678901"
  token_env = "FB_RESTO"
  api_base = "API"
  every = "1h"
"""


def test_an_event_inside_veille_run_is_stored_once_alerted_and_waits_for_a_reply(
    tmp_path: Path, server: LocalServer
) -> None:
    fake = GraphFake(server, token="page-token")
    fake.add_page(PAGE)
    now = datetime.now(UTC)
    fake.feed[PAGE] = [
        fb_post(f"{PAGE}_1", "Notre menu de Noël", author=(PAGE, "Chez Gégé"), when=now - timedelta(hours=3))
    ]
    port = free_port()
    config = write_config(tmp_path, server.url("").rstrip("/"), port, FB_SOURCE)
    base, log, db = f"http://127.0.0.1:{port}", tmp_path / "daemon.log", tmp_path / "veille.db"
    comment_id = f"{PAGE}_1_c1"
    event = {
        "object": "page",
        "entry": [
            {
                "id": PAGE,
                "time": int(now.timestamp()),
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "add",
                            "comment_id": comment_id,
                            "post_id": f"{PAGE}_1",
                            "parent_id": f"{PAGE}_1",
                            "from": {"id": "777", "name": "Marc Dupont"},
                            "created_time": int(now.timestamp()) - 60,
                            "message": FURIOUS,
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(event).encode()
    with running(["run", "--config", str(config)], log):
        wait_listening(base, log)
        assert wait_for(lambda: fake.edge_calls("feed"), 30), log.read_text()[-3000:]  # the first poll: no comment

        handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
        answer = httpx.get(f"{base}/webhooks/meta", params=handshake)
        assert answer.status_code == 200 and answer.text == "1158201444"

        assert post(base, body, sign(body, SECRET)).status_code == 200
        assert count(db, hits.c.external_id == comment_id) == 1
        assert wait_for(lambda: "intoxication" in log.read_text().lower(), 30), log.read_text()[-3000:]
        assert post(base, body, sign(body, SECRET)).status_code == 200  # Meta delivers at least once
        refused = post(base, body.replace(b"honte", b"joie"), sign(body, SECRET))
        assert refused.status_code == 403
    printed = log.read_text()
    assert "--- camille" in printed and "Chez Gégé" in printed
    assert printed.count("bad X-Hub-Signature-256 signature") == 1
    assert count(db, hits.c.external_id == comment_id, hits.c.sentiment_label == "neg") == 1
    engine = make_engine(f"sqlite:///{db}")
    with read_conn(engine) as conn:
        [waiting] = conn.execute(select(inbox)).all()
    engine.dispose()
    assert waiting.state == "waiting" and waiting.conversation == comment_id and waiting.channel == "comment"

    # Polling, the fallback, finds the same comment later: nothing new is stored.
    fake.comments[f"{PAGE}_1"] = [fb_comment(comment_id, FURIOUS, when=now - timedelta(minutes=1))]
    calls = len(fake.edge_calls("comments"))
    once = subprocess.run(
        [sys.executable, "-m", "veille", "run", "--once", "--config", str(config)],
        cwd=REPO_ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert once.returncode == 0, once.stderr[-3000:]
    assert len(fake.edge_calls("comments")) > calls  # the poll did read the comment
    assert count(db) == 1


def shared_payloads() -> list[Path]:
    folders = [SHARED / "facebook" / "webhooks", SHARED / "instagram" / "webhooks"]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*.json"))


OWN_SOURCES = """
  [[clients.sources]]
  kind = "facebook"
  id = "page-a"
  page_id = "1234567890321"
  token_env = "FB_RESTO"
  api_base = "API"
  [[clients.sources]]
  kind = "facebook"
  id = "page-b"
  page_id = "12345654332"
  token_env = "FB_RESTO"
  api_base = "API"
  [[clients.sources]]
  kind = "instagram"
  id = "ig"
  page_id = "12345654332"
  ig_user_id = "17841452691600098"
  token_env = "FB_RESTO"
  api_base = "API"
  [[clients.sources]]
  kind = "instagram"
  id = "ig-zero"
  page_id = "1234567890321"
  ig_user_id = "0"
  token_env = "FB_RESTO"
  api_base = "API"
"""


def test_veille_web_alone_stores_signed_deliveries_and_refuses_the_rest(tmp_path: Path, server: LocalServer) -> None:
    fake = GraphFake(server, token="page-token")
    # The recorded Instagram mention names comment 17887498072083520 of account "0": the caller reads it.
    fake.ig_users["0"] = {
        "id": "0",
        "mentioned_comment": {
            "id": "17887498072083520",
            "text": "@chezgege chez gégé c'était parfait",
            "timestamp": "2026-11-20T12:00:00+0000",
            "username": "julie_m",
            "media": {"id": "17887498072083520"},
        },
    }
    port = free_port()
    config = write_config(tmp_path, server.url("").rstrip("/"), port, OWN_SOURCES, extra="webhook_max_body = 20000")
    base, log, db = f"http://127.0.0.1:{port}", tmp_path / "web.log", tmp_path / "veille.db"
    own = json.dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": "17841452691600098",
                    "time": 1763640000,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": "17900000000000042",
                                "text": "Toujours aucune réponse à ma réclamation ?",
                                "timestamp": "2026-11-20T12:00:00+0000",
                                "from": {"id": "555", "username": "lea_b"},
                                "media": {"id": "17850000000000001"},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    payloads = [path.read_bytes() for path in shared_payloads()] + [own]
    configured = {"1234567890321", "12345654332", "17841452691600098", "0"}
    expected: set[tuple[str, str]] = set()
    for raw in payloads:
        delivery = parse_delivery(json.loads(raw))
        kind = json.loads(raw).get("object")
        for account, items in delivery.items.items():
            if account in configured and (kind == "page") == (account in ("1234567890321", "12345654332")):
                kept = [i for i in items if i.kept_unmatched or "chez gégé" in i.text.lower()]  # the keywords
                expected |= {(account, item.external_id) for item in kept}
    with running(["web", "--config", str(config), "--port", str(port)], log):
        wait_listening(base, log)
        assert httpx.get(f"{base}/").status_code == 303  # the pages still need a login
        wrong = {"hub.mode": "subscribe", "hub.verify_token": "devine", "hub.challenge": "42"}
        assert httpx.get(f"{base}/webhooks/meta", params=wrong).status_code == 403
        for raw in payloads:
            answer = post(base, raw, sign(raw, SECRET))
            assert answer.status_code == 200, (answer.text, raw[:200])
        assert post(base, own, None).status_code == 403  # unsigned
        assert post(base, own, sign(own, "another-secret")).status_code == 403
        big = b'{"object": "page", "entry": [], "pad": "' + b"x" * 30_000 + b'"}'
        assert post(base, big, sign(big, SECRET)).status_code == 413
        time.sleep(0.5)
    printed = log.read_text()
    assert printed.count("bad X-Hub-Signature-256 signature") == 2
    assert "wrong or missing verify token" in printed and "larger than 20000 bytes" in printed
    assert SECRET not in printed
    if shared_payloads():
        assert len(expected) > 10  # the recorded payloads did bring events for the configured accounts
    assert count(db) == len(expected) + 1  # + the mention, read back from the Graph API
    engine = make_engine(f"sqlite:///{db}")
    with read_conn(engine) as conn:
        mention = conn.execute(select(hits).where(hits.c.external_id == "17887498072083520")).one()
        comment = conn.execute(select(hits).where(hits.c.external_id == "17900000000000042")).one()
    engine.dispose()
    assert mention.extra["type"] == "mention" and mention.author == "@julie_m"
    assert comment.direct and comment.thread_id == "17850000000000001" and comment.author == "@lea_b"
