"""Meta webhook events through the real pipeline, against the local Graph API: a Messenger message names its
sender, the polls name the conversation; the message joins the polled conversation, so the page's answer found
by the next poll closes the reply inbox item the webhook opened (and the message is stored once); the page's
answer delivered by webhook (an echo) closes it at once."""

from __future__ import annotations

import random

from sqlalchemy import Engine, func, select

from tests.runtime.test_own_channels import ENV, PAGE, http, load  # noqa: F401
from tests.support.fake_graph import GraphFake, fb_message, later
from tests.support.server import LocalServer
from veille.core.clock import FakeClock
from veille.net.http import HttpClient
from veille.runtime.pipeline import Pipeline
from veille.runtime.webhooks import WebhookReceiver
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn
from veille.store.schema import hits


def message_event(
    mid: str, sender: str, text: str, minute: int, *, to: str = PAGE, echo: bool = False
) -> dict[str, object]:
    at = int(later(minute).timestamp() * 1000)
    message = {"mid": mid, "text": text, **({"is_echo": True} if echo else {})}
    return {
        "object": "page",
        "entry": [
            {
                "id": PAGE,
                "time": at,
                "messaging": [
                    {
                        "sender": {"id": sender},
                        "recipient": {"id": to},
                        "timestamp": at,
                        "message": message,
                    }
                ],
            }
        ],
    }


async def one_page(db_url: str, api: str, http: HttpClient) -> tuple[Engine, FakeClock, Pipeline]:  # noqa: F811
    """A started pipeline over one client with one Facebook Page, at minute 30."""
    config = load(
        db_url,
        f"""
[database]
url = "{db_url}"
[http]
allow_private_addresses = true
[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{PAGE}"
  token_env = "FB_RESTO"
  api_base = "{api}"
""",
    )
    engine = make_engine(db_url)
    clock = FakeClock(later(30))
    pipeline = Pipeline(config, engine, clock, http, env=ENV.get, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    return engine, clock, pipeline


async def test_a_message_by_webhook_joins_the_polled_conversation(
    db_url: str,
    server: LocalServer,
    http: HttpClient,  # noqa: F811
) -> None:
    fake = GraphFake(server, token="page-token")
    fake.add_page(PAGE)
    fake.conversation(PAGE, "t_10", fb_message("m_1", "Bonjour, une table pour 4 ?", when=later(7)))
    engine, clock, pipeline = await one_page(db_url, server.url("").rstrip("/"), http)
    receiver = WebhookReceiver(pipeline)

    assert await receiver.receive(message_event("m_1", "888", "Bonjour, une table pour 4 ?", 7)) == 1
    with read_conn(engine) as conn:
        [waiting] = inbox_store.waiting(conn)
        stored = conn.execute(select(hits.c.thread_id, hits.c.private).where(hits.c.external_id == "m_1")).one()
    assert waiting.conversation == "t_10" and waiting.channel == "message" and stored == ("t_10", True)
    asked = len(fake.edge_calls("conversations"))
    fake.conversation(PAGE, "t_10", fb_message("m_3", "Et une chaise haute ?", when=later(8)))
    assert await receiver.receive(message_event("m_3", "888", "Et une chaise haute ?", 8)) == 1
    assert len(fake.edge_calls("conversations")) == asked  # the person's conversation is remembered

    # The page answers on Facebook; the next poll finds the answer (and the messages, already stored).
    fake.conversation(PAGE, "t_10", fb_message("m_2", "Oui, à 20 h !", author=(PAGE, "Chez Gégé"), when=later(40)))
    clock.advance(60 * 60)
    await pipeline.poll("resto/fb")
    await pipeline.stop()
    with read_conn(engine) as conn:
        closed = inbox_store.get(conn, waiting.id)
        count = conn.execute(select(func.count()).select_from(hits)).scalar_one()
    engine.dispose()
    assert closed is not None and closed.state is inbox_store.State.ANSWERED and closed.closed_by == "platform"
    assert count == 3  # m_1, m_3 by webhook, m_2 (the page's answer) by the poll; nothing twice


async def test_the_pages_answer_by_webhook_closes_the_conversation_at_once(
    db_url: str,
    server: LocalServer,
    http: HttpClient,  # noqa: F811
) -> None:
    fake = GraphFake(server, token="page-token")
    fake.add_page(PAGE)
    fake.conversation(PAGE, "t_10", fb_message("m_1", "Bonjour, une table pour 4 ?", when=later(7)))
    engine, clock, pipeline = await one_page(db_url, server.url("").rstrip("/"), http)
    receiver = WebhookReceiver(pipeline)
    assert await receiver.receive(message_event("m_1", "888", "Bonjour, une table pour 4 ?", 7)) == 1
    fake.conversation(PAGE, "t_10", fb_message("m_2", "Oui, à 20 h !", author=(PAGE, "Chez Gégé"), when=later(9)))
    echo = message_event("m_2", PAGE, "Oui, à 20 h !", 9, to="888", echo=True)
    assert await receiver.receive(echo) == 1
    with read_conn(engine) as conn:
        assert inbox_store.waiting(conn) == []  # answered, before any poll
    clock.advance(60 * 60)
    result = await pipeline.poll("resto/fb")
    await pipeline.stop()
    engine.dispose()
    assert result is not None and result.error is None and result.new_hits == 0  # both already stored
