"""Meta webhook deliveries (Facebook Page, Instagram) into the same pipeline as polls (issue 13).

The web service checks the signature and hands the body here; each event goes to the configured
source of its page or Instagram account and is stored through the pipeline's single writer, as a
poll's items are: matched, scored, stored once (the same external ids as the polls, so a later poll
of the same comment stores nothing new), then the alerting hooks and the reply inbox. The poll state
is left alone: polling stays the fallback that fills any gap (a missed delivery, a refused one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from veille.config import Config
from veille.core.clock import Clock
from veille.core.errors import FetchError
from veille.core.models import Item
from veille.core.paths import data_dir
from veille.net.http import HttpClient
from veille.runtime.pipeline import Pipeline, SourceRuntime
from veille.sources._common import text_of
from veille.sources.base import PollContext
from veille.sources.instagram import InstagramOptions, fetch_mention
from veille.sources.metawebhooks import conversation_of, parse_delivery, webhook_account

log = logging.getLogger("veille.runtime.webhooks")

MENTION_TIMEOUT = 10.0  # seconds for one Graph API read (a mention, a conversation): Meta waits ~20 s for our answer
CONVERSATIONS = "webhook_conversations"  # runtime.cache: person id -> the page's conversation id with them


class WebhookReceiver:
    """Turns a verified webhook body into stored hits, through one pipeline (the daemon's, or the
    dashboard's own when `veille web` runs alone)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def sources_of(self, kind: str, account: str) -> list[SourceRuntime]:
        runtimes = self.pipeline.runtimes.values()
        return [r for r in runtimes if webhook_account(r.config.options, r.state.cursor) == (kind, account)]

    async def receive(self, payload: Any) -> int:
        """Store what one delivery holds; the number of new hits. Events for an account no source
        follows are left out with a log line (a page subscribed in the app but not in config.toml)."""
        kind = text_of(payload, "object") or ""
        delivery = parse_delivery(payload)
        wanted: dict[str, list[Item]] = {}
        accounts = set(delivery.items) | {account for account, _, _ in delivery.mentions}
        for account in sorted(accounts):
            runtimes = self.sources_of(kind, account)
            if not runtimes:
                log.info("webhook event for %s %s: no enabled source follows it, left out", kind, account)
                continue
            for runtime in runtimes:
                items = list(delivery.items.get(account, []))
                for mention_account, media, comment in delivery.mentions:
                    if mention_account == account:
                        found = await self._mention(runtime, account, media, comment)
                        items += [found] if found is not None else []
                if items:
                    items = [await self._in_conversation(runtime, item) for item in items]
                    wanted.setdefault(runtime.config.key, []).extend(items)
        stored = await asyncio.gather(*(self.pipeline.store_pushed(key, items) for key, items in wanted.items()))
        return sum(stored)

    def _context(self, runtime: SourceRuntime) -> PollContext:
        key = runtime.config.key
        return PollContext(
            http=self.pipeline.http,
            clock=self.pipeline.clock,
            client_id=runtime.config.client_id,
            source_key=key,
            log=logging.LoggerAdapter(log, {"source": key}),
            env=self.pipeline.env,
            cache=runtime.cache,
        )

    async def _in_conversation(self, runtime: SourceRuntime, item: Item) -> Item:
        """A direct message names its sender; the polls (and so the reply inbox) name the conversation: the
        message gets the conversation's id as its thread (asked once per person, then remembered)."""
        if not item.private or item.thread_id is None:
            return item
        person = item.thread_id
        known = runtime.cache.setdefault(CONVERSATIONS, {})
        assert isinstance(known, dict)
        if person not in known:
            try:
                async with asyncio.timeout(MENTION_TIMEOUT):
                    found = await conversation_of(self._context(runtime), runtime.config.options, person)
            except (FetchError, TimeoutError) as exc:
                log.warning("source %s: the conversation of a message could not be read (%s)", runtime.config.key, exc)
                return item
            if found is None:
                return item
            known[person] = found
        return replace(item, thread_id=str(known[person]))

    async def _mention(self, runtime: SourceRuntime, account: str, media: str, comment: str) -> Item | None:
        """An Instagram mention names only ids: read the comment or caption with the source's token."""
        options = runtime.config.options
        if not isinstance(options, InstagramOptions):  # mentions come from Instagram deliveries only
            return None
        key = runtime.config.key
        try:
            async with asyncio.timeout(MENTION_TIMEOUT):
                return await fetch_mention(self._context(runtime), options, account, media, comment)
        except (FetchError, TimeoutError) as exc:
            log.warning("source %s: the mention %s could not be read (%s); polling goes on", key, comment or media, exc)
            return None


@contextlib.asynccontextmanager
async def standalone_receiver(config: Config, engine: Engine, clock: Clock) -> AsyncIterator[WebhookReceiver]:
    """`veille web` alone: a pipeline of its own (scorer, alerting decisions, single writer) that stores the
    events; the deliveries it enqueues are sent by the daemon's outbox relay (`veille run`), so this
    process never talks to Telegram (two bots polling one token would fight)."""
    from veille.runtime.alerting import AlertingService
    from veille.scoring.process import ScoringProcess

    http = HttpClient(config.http, clock=clock)
    scorer = ScoringProcess(config.sentiment, data_dir=data_dir(config.database_url)).launch()
    try:
        await asyncio.to_thread(scorer.start)
        hooks = AlertingService(config, engine, clock, {}) if config.alerting.enabled else None
        pipeline = Pipeline(config, engine, clock, http, scorer=scorer, hooks=hooks)
        await asyncio.to_thread(pipeline.load)
        await pipeline.start()
        try:
            yield WebhookReceiver(pipeline)
        finally:
            await pipeline.stop()
    finally:
        scorer.close()
        await http.aclose()
