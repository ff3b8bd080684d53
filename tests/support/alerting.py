"""Shared builders for the alerting tests (config, database, hits). Holds no tests itself."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Engine

import veille.store.schema_alerts  # noqa: F401  (registers the alerting tables on `metadata`)
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.models import Engagement, SentimentLabel, SentimentResult, StoredHit
from veille.notify.base import Notifier
from veille.runtime.alerting import AlertingService
from veille.store.engine import make_engine
from veille.store.schema import metadata

CONFIG = """
timezone = "Europe/Paris"

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
crisis_words = ["gégé pue"]
  [[clients.sources]]
  kind = "rss"
  url = "https://example.org/feed.xml"

[[clients]]
id = "tapis"
name = "Tapis Dupont"
keywords = ["tapis dupont"]
  [[clients.sources]]
  kind = "rss"
  url = "https://example.org/tapis.xml"

[alerting]
enabled = true  # defaults: group_wait 60s, group_interval 5m, repeat 2h, escalation 10m, 2 loops, digest 08:00
{extra}

[[contacts]]
id = "manager"
name = "Camille"
channel = "{channel}"
address = "chat-manager"
clients = ["resto", "tapis"]
quiet_hours = "22:00-07:30"

[[contacts]]
id = "backup"
name = "Alex"
channel = "{channel}"
address = "chat-backup"
"""

NIGHT = datetime(2026, 11, 20, 1, 13, tzinfo=UTC)  # 02:13 in Paris
DAY = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
_ids = itertools.count(1)


def make_config(*, channel: str = "telegram", extra: str = "") -> Config:
    return parse_config(CONFIG.format(channel=channel, extra=extra), environ={})


def make_db(url: str) -> Engine:
    engine = make_engine(url)
    metadata.create_all(engine)
    return engine


def make_service(
    engine: Engine, clock: FakeClock, notifiers: Mapping[str, Notifier], *, config: Config | None = None
) -> AlertingService:
    return AlertingService(config or make_config(), engine, clock, notifiers)


def hit(
    clock: FakeClock,
    text: str = "Intoxication chez Gégé, honte !",
    *,
    client: str = "resto",
    score: float = -0.85,
    followers: int | None = 1200,
    author: str | None = None,
    direct: bool = True,
    hit_id: int | None = None,
    reposts: int = 0,
) -> StoredHit:
    number = hit_id if hit_id is not None else next(_ids)
    label = SentimentLabel.NEG if score <= -0.3 else SentimentLabel.POS if score >= 0.3 else SentimentLabel.NEU
    return StoredHit(
        id=number,
        client_id=client,
        source_key=f"{client}/rss",
        kind="mastodon",
        external_id=str(number),
        text=text,
        title="",
        url=f"https://example.org/p/{number}",
        author=author or f"user{number}",
        author_followers=followers,
        direct=direct,
        published_at=clock.now(),
        fetched_at=clock.now(),
        sentiment=SentimentResult(label, score, "fr"),
        engagement=Engagement(reposts=reposts),
    )
