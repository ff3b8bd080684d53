"""The reply inbox through the real pipeline, against the local Graph API: a customer's question opens an
item, the page's own answer in the thread closes it, a later question reopens it, thanks change nothing."""

from __future__ import annotations

import random

from tests.runtime.test_own_channels import ENV, PAGE, channels_config, http, load, page_with_activity  # noqa: F401
from tests.support.fake_graph import GraphFake, fb_comment, fb_message, later
from tests.support.server import LocalServer
from veille.core.clock import FakeClock
from veille.net.http import HttpClient
from veille.runtime.pipeline import Pipeline
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.schema_inbox import inbox, inbox_answers


async def test_questions_open_answers_close_and_new_questions_reopen(
    db_url: str,
    server: LocalServer,
    http: HttpClient,  # noqa: F811
) -> None:
    fake = GraphFake(server, token="page-token")
    page_with_activity(fake)
    config = load(db_url, channels_config(db_url, server.url("").rstrip("/")))
    engine = make_engine(db_url)
    clock = FakeClock(later(30))
    pipeline = Pipeline(config, engine, clock, http, env=ENV.get, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    await pipeline.poll("resto/fb")
    with read_conn(engine) as conn:
        items = {(r.conversation): r for r in conn.execute(inbox.select()).all()}
        answers = conn.execute(inbox_answers.select()).all()
    # "Vous êtes ouverts le 24 ?" was answered by the page a minute later; "une table pour 4 ?" waits.
    assert set(items) == {"1_c1", "t_10"}
    assert items["1_c1"].state == "answered" and items["1_c1"].closed_by == "platform"
    assert items["1_c1"].closed_at == later(3)
    assert [(a.waited_since, a.answered_at) for a in answers] == [(later(2), later(3))]
    message = items["t_10"]
    assert message.state == "waiting" and message.channel == "message" and message.waiting_since == later(7)
    assert message.excerpt == "Bonjour, une table pour 4 ?" and message.need == "question"

    # The page answers the message; the customer thanks it (no reopening), then asks again (reopened).
    fake.conversation(PAGE, "t_10", fb_message("m_2", "Oui, à 20 h ?", author=(PAGE, "Chez Gégé"), when=later(40)))
    fake.conversation(PAGE, "t_10", fb_message("m_3", "Parfait merci !", when=later(41)))
    clock.advance(60 * 60)
    await pipeline.poll("resto/fb")
    with read_conn(engine) as conn:
        assert inbox_store.get(conn, message.id).state is inbox_store.State.ANSWERED
    fake.conversation(PAGE, "t_10", fb_message("m_4", "Et vous avez une chaise haute ?", when=later(50)))
    fake.comments[f"{PAGE}_1"].append(fb_comment("1_c9", "😍😍", when=later(51)))
    clock.advance(60 * 60)
    await pipeline.poll("resto/fb")
    await pipeline.stop()
    with write_tx(engine) as conn:
        reopened = inbox_store.get(conn, message.id)
        assert reopened is not None and reopened.state is inbox_store.State.WAITING
        assert reopened.waiting_since == later(50) and reopened.excerpt == "Et vous avez une chaise haute ?"
        assert [i.conversation for i in inbox_store.waiting(conn)] == ["t_10"]  # the emoji opened nothing
        # "Pas besoin de réponse", by hand.
        closed = inbox_store.close_by_hand(conn, message.id, inbox_store.State.NO_REPLY, "cli", later(60))
        assert closed is not None and closed.state is inbox_store.State.NO_REPLY
        assert inbox_store.close_by_hand(conn, message.id, inbox_store.State.NO_REPLY, "cli", later(61)) is None
        assert inbox_store.waiting(conn) == []
    engine.dispose()


def test_only_sources_that_show_the_clients_answers_feed_the_inbox() -> None:
    """A question met where the client's own answer cannot be seen would wait for ever: not followed."""
    from datetime import UTC, datetime

    from veille.core.models import Channel, StoredHit
    from veille.runtime.inbox import inbox_messages

    at = datetime(2026, 11, 20, 19, 45, tzinfo=UTC)

    def hit(kind: str, hit_id: int) -> StoredHit:
        return StoredHit(
            hit_id,
            "resto",
            f"resto/{kind}",
            kind,
            str(hit_id),
            "Vous livrez ?",
            "",
            None,
            "Léa",
            None,
            True,
            at,
            at,
            channel=Channel.POST,
            conversation=str(hit_id),
        )

    messages = inbox_messages([hit("facebook", 1), hit("reddit", 2), hit("rss", 3)])
    assert [(m.hit_id, m.need) for m in messages] == [(1, "question")]
