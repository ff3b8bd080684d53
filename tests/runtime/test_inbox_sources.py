"""The reply inbox through the real pipeline, for the sources whose threads are flat or two-level (Mastodon,
Bluesky, X, YouTube), each against its local fake API: a customer's question opens an item, the client's own
reply in the thread closes it (answered on the platform), the customer's next question reopens it."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_apis import (
    T0,
    BlueskyFake,
    MastodonFake,
    XFake,
    YoutubeFake,
    bsky_post,
    mastodon_status,
    tweet,
    yt_reply,
    yt_thread,
)
from tests.support.server import LocalServer
from veille.config import parse_config
from veille.core.clock import FakeClock
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.pipeline import Pipeline
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade

ENV = {
    "MASTODON_TOKEN": "good-token",
    "BSKY_PASSWORD": "app-pass-1234",
    "X_BEARER": "bearer-ok",
    "YT_KEY": "AIzaKEY123",
}
CHANNEL = "UCa-vrCLQHviTOVnEKDOdetQ"
ASKED, ANSWERED, ASKED_AGAIN = T0, T0 + timedelta(minutes=20), T0 + timedelta(minutes=50)


@dataclass
class Scenario:
    """One network: its source's config, then the three steps written into its fake API."""

    source: Callable[[str], str]
    fake: Callable[[LocalServer], Any]
    ask: Callable[[Any], None]
    answer: Callable[[Any], None]
    ask_again: Callable[[Any], None]


def _mastodon_answer(fake: MastodonFake) -> None:
    fake.own.append(
        mastodon_status(9, "@alice oui !", acct="resto", mentions=("alice",), in_reply_to=(8, "alice"), when=ANSWERED)
    )


_BSKY_Q = bsky_post("q1", "@acme vous livrez ?", mention_did="did:plc:acme", when=ASKED)
_BSKY_A = bsky_post(
    "a1", "Oui !", did="did:plc:acme", handle="acme.bsky.social", reply_to=_BSKY_Q["uri"], when=ANSWERED
)
_YT_A = yt_reply("r1", "Ug1", "Oui, partout !", author=CHANNEL, when=ANSWERED)
_YT_B = yt_reply("r2", "Ug1", "Et le dimanche ?", author="UCdan", when=ASKED_AGAIN)

SCENARIOS = {
    "mastodon": Scenario(
        lambda url: f'kind = "mastodon"\ninstances = ["{url}"]\nmentions = true\ntoken_env = "MASTODON_TOKEN"',
        MastodonFake,
        lambda f: f.mention(20, mastodon_status(8, "@resto vous êtes ouverts dimanche ?", when=ASKED)),
        _mastodon_answer,
        lambda f: f.mention(21, mastodon_status(11, "@resto et lundi ?", in_reply_to=(9, "resto"), when=ASKED_AGAIN)),
    ),
    "bluesky": Scenario(
        lambda url: (
            f'kind = "bluesky"\nidentifier = "acme.bsky.social"\npassword_env = "BSKY_PASSWORD"\nsearch = []\n'
            f'mentions = true\nservice = "{url}"'
        ),
        BlueskyFake,
        lambda f: f.notify(_BSKY_Q, "mention"),
        lambda f: f.own_feed.append(_BSKY_A),
        lambda f: f.notify(
            bsky_post("q2", "Et le dimanche ?", reply_to=_BSKY_A["uri"], root=_BSKY_Q["uri"], when=ASKED_AGAIN),
            "reply",
        ),
    ),
    "x": Scenario(
        lambda url: (
            f'kind = "x"\nquery = "gégé"\nbearer_env = "X_BEARER"\nmonthly_read_budget = 1000\nhandle = "chezgege"\n'
            f'api_base = "{url}/2"'
        ),
        XFake,
        lambda f: f.tweets.append(tweet(1001, "@chezgege ouverts lundi ?", mentions=("chezgege",), when=ASKED)),
        lambda f: f.tweets.append(
            tweet(1002, "@carol oui !", author_id="u9", reply_to=(1001, "u1", 1001), when=ANSWERED)
        ),
        lambda f: f.tweets.append(
            tweet(1003, "@chezgege et mardi ?", mentions=("chezgege",), reply_to=(1002, "u9", 1001), when=ASKED_AGAIN)
        ),
    ),
    "youtube": Scenario(
        lambda url: (
            f'kind = "youtube"\nchannel_id = "{CHANNEL}"\nkey_env = "YT_KEY"\ndaily_quota = 50\n'
            f'api_base = "{url}/youtube/v3"'
        ),
        YoutubeFake,
        lambda f: f.threads.append(yt_thread("Ug1", "Vous faites la livraison ?", when=ASKED)),
        lambda f: f.threads.__setitem__(
            0, yt_thread("Ug1", "Vous faites la livraison ?", when=ASKED, replies=(_YT_A,))
        ),
        lambda f: f.threads.__setitem__(
            0, yt_thread("Ug1", "Vous faites la livraison ?", when=ASKED, replies=(_YT_A, _YT_B))
        ),
    ),
}


@pytest.mark.parametrize("network", sorted(SCENARIOS))
async def test_the_clients_own_reply_closes_and_the_customer_reopens(
    network: str, server: LocalServer, tmp_path: Path
) -> None:
    scenario = SCENARIOS[network]
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    fake = scenario.fake(server)
    text = f"""
[database]
url = "{db_url}"

[http]
allow_private_addresses = true
timeout = "5s"

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]

  [[clients.sources]]
  id = "net"
  every = "1m"
  {scenario.source(server.url(""))}
"""
    config = parse_config(text, environ={})
    engine = make_engine(db_url)
    upgrade(engine)
    clock = FakeClock(ASKED + timedelta(minutes=1))
    async with HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0)) as http:
        pipeline = Pipeline(config, engine, clock, http, env=ENV.get, rng=random.Random(1))
        pipeline.load()
        await pipeline.start()
        try:

            async def step(write: Callable[[Any], None], at: Any) -> list[inbox_store.InboxItem]:
                write(fake)
                clock.advance(max(0.0, (at + timedelta(minutes=1) - clock.now()).total_seconds()))
                await pipeline.poll("resto/net")
                with read_conn(engine) as conn:
                    return [i for i in (inbox_store.get(conn, n) for n in range(1, 4)) if i is not None]

            [opened] = await step(scenario.ask, ASKED)
            assert (opened.state, opened.waiting_since, opened.need) == (inbox_store.State.WAITING, ASKED, "question")
            [answered] = await step(scenario.answer, ANSWERED)
            assert (answered.state, answered.closed_by, answered.closed_at) == (
                inbox_store.State.ANSWERED,
                "platform",
                ANSWERED,
            )
            [reopened] = await step(scenario.ask_again, ASKED_AGAIN)
            assert (reopened.id, reopened.state, reopened.waiting_since) == (
                opened.id,
                inbox_store.State.WAITING,
                ASKED_AGAIN,
            )
        finally:
            await pipeline.stop()
    engine.dispose()
