"""Social sources through the real Pipeline: config.toml -> poll over loopback -> match -> migrated database.

Checks what the manager sees: direct mentions kept even without a keyword, the X budget note in
`sources.note`, a missing credential shown as auth_failed and retried rarely while the other sources
go on, and engagement observations appended when a post is seen again.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.fake_apis import T0, MastodonFake, XFake, mastodon_status, tweet
from tests.support.server import LocalServer
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.models import SourceStatus
from veille.core.polling import PollState
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.pipeline import Pipeline
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import engagement, hits, sources

ENV = {"MASTODON_TOKEN": "good-token", "X_BEARER": "bearer-ok"}


def social_config(db_url: str, mastodon: str, x_api: str) -> Config:
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
  kind = "mastodon"
  id = "masto"
  instances = ["{mastodon}"]
  hashtags = ["resto"]
  mentions = true
  token_env = "MASTODON_TOKEN"

  [[clients.sources]]
  kind = "x"
  id = "x"
  query = "gégé"
  bearer_env = "X_BEARER"
  monthly_read_budget = 500
  api_base = "{x_api}"

  [[clients.sources]]
  kind = "x"
  id = "x-nokey"
  query = "gégé"
  bearer_env = "X_BEARER_MISSING"
  monthly_read_budget = 500
  api_base = "{x_api}"
"""
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return parse_config(text, environ={})


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0))
    yield client
    await client.aclose()


async def test_social_sources_through_the_pipeline(
    tmp_path: Path, sqlite_url: str, server: LocalServer, http: HttpClient
) -> None:
    masto, x = MastodonFake(server), XFake(server)
    masto.add_tag("resto", mastodon_status(1, "Dîner chez Gégé, parfait", likes=3), mastodon_status(2, "rien à voir"))
    masto.mention(30, mastodon_status(5, "@resto vous êtes ouverts dimanche ?"))  # no keyword: direct
    x.tweets.extend([tweet(100, "chez gégé encore"), tweet(101, "autre chose")])
    config = social_config(sqlite_url, server.url().rstrip("/"), server.url("/2"))
    clock = FakeClock(T0)
    engine = make_engine(sqlite_url)
    pipeline = Pipeline(config, engine, clock, http, env=ENV.get, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    results = {key.split("/")[1]: await pipeline.poll(key) for key in sorted(pipeline.runtimes)}
    assert results["masto"] is not None and results["masto"].error is None
    assert results["x"] is not None and results["x"].error is None

    nokey = pipeline.runtimes["resto/x-nokey"]
    assert nokey.status is SourceStatus.AUTH_FAILED
    assert nokey.next_poll_at is not None and (nokey.next_poll_at - clock.now()).total_seconds() >= 3600
    assert await pipeline.poll("resto/x-nokey") is None  # not retried in a loop

    # The same post seen again with more likes (a poll from scratch): a second engagement observation.
    masto.tags["resto"][0]["favourites_count"] = 40
    runtime = pipeline.runtimes["resto/masto"]
    runtime.state, runtime.next_poll_at = PollState(), None
    again = await pipeline.poll("resto/masto")
    assert again is not None and again.error is None
    await pipeline.stop()

    with read_conn(engine) as conn:
        rows = {r.external_id: r for r in conn.execute(select(hits)).all()}
        notes = {r.key: (r.status, r.note, r.last_error_kind) for r in conn.execute(select(sources)).all()}
    uri = "https://social.example/users/alice/statuses/"
    assert set(rows) == {f"{uri}1", f"{uri}5", "100"}
    assert rows[f"{uri}5"].direct and not rows[f"{uri}1"].direct
    assert rows["100"].author == "@carol" and rows["100"].author_followers == 1200
    assert notes["resto/x"][1] == "X budget: 498/500 reads left this month"
    assert notes["resto/x-nokey"][0] == "auth_failed" and notes["resto/x-nokey"][2] == "auth"
    with read_conn(engine) as conn:
        likes = [
            r.likes
            for r in conn.execute(
                select(engagement).where(engagement.c.hit_id == rows[f"{uri}1"].id).order_by(engagement.c.id)
            )
        ]
    assert likes[0] == 3 and likes[-1] == 40
    engine.dispose()
