"""Incident summaries for the alerting service: reads an incident's posts and its client's usual ones, and
hands them to the pure `veille.alerting.summary`.

The usual posts (the BACKGROUND_DAYS before the incident, as far as alert_hits keeps them) are counted once
per incident and kept while it is open; its own posts are read again each time it gains evidence. The tick counts
them before the write transaction that opens the incident (`prepare`, in a read transaction): a busy client's
20,000 usual posts took longer to count than the bar of 100 ms for a write transaction (issue 17)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from sqlalchemy import Connection

from veille.alerting.risk import CrisisWords
from veille.alerting.summary import BACKGROUND_DAYS, Background, Post, own_words, summarise
from veille.core.incidents import Cause, Incident, Summary
from veille.store import alerts as store

SUMMARISED = (Cause.BUZZ, Cause.VOLUME)
KEPT_BACKGROUNDS = 256  # open incidents whose clients' usual vocabulary stays in memory
MAX_BACKGROUND = 20_000  # the newest usual posts counted (a sample of a busy client's month)


class Summaries:
    def __init__(self, window: timedelta, risk_threshold: float) -> None:
        self._window = window
        self._risk_threshold = risk_threshold
        # By client and start of the incident's window: what the usual posts are depends on nothing else.
        self._backgrounds: OrderedDict[tuple[str, datetime], Background] = OrderedDict()

    def prepare(
        self,
        conn: Connection,
        client_id: str,
        opened_at: datetime,
        names: tuple[str, ...],
        *,
        at_most: int | None = None,
    ) -> bool:
        """Count the client's usual posts for an incident opened at `opened_at` (nothing to do if they are counted
        already); with `at_most`, only if there are no more than that many (else False, nothing counted)."""
        start = opened_at - self._window
        key = (client_id, start)
        if key in self._backgrounds:
            self._backgrounds.move_to_end(key)
            return True
        since = start - timedelta(days=BACKGROUND_DAYS)
        rows = store.post_texts(conn, client_id, since, start, limit=MAX_BACKGROUND if at_most is None else at_most + 1)
        if at_most is not None and len(rows) > at_most:
            return False
        self._keep(key, Background([r.snippet for r in rows], own_words(names)))
        return True

    def of(self, conn: Connection, incident: Incident, crisis: CrisisWords, names: tuple[str, ...]) -> Summary:
        """The summary of a buzz or volume incident as it stands: its posts since its window opened (a bad
        buzz: the negative or risky ones) against its client's usual posts."""
        own = own_words(names)
        start = incident.opened_at - self._window
        key = (incident.client_id, start)
        background = self._backgrounds.get(key)
        if background is None:  # not prepared: one query for both, inside the write transaction
            since = start - timedelta(days=BACKGROUND_DAYS)
            rows = store.post_texts(conn, incident.client_id, since, limit=MAX_BACKGROUND)
            usual = [r.snippet for r in rows if r.seen_at < start]
            background = self._keep(key, Background(usual, own))
            rows = [r for r in rows if r.seen_at >= start or r.active_at >= start]
        else:
            rows = store.post_texts(conn, incident.client_id, start)
        if incident.cause is Cause.BUZZ:
            rows = [r for r in rows if r.negative or r.risk >= self._risk_threshold]
        posts = [Post(r.hit_id, r.snippet, r.author, r.source_kind, r.total) for r in rows]
        return summarise(posts, background, crisis, own)

    def _keep(self, key: tuple[str, datetime], background: Background) -> Background:
        self._backgrounds[key] = background
        while len(self._backgrounds) > KEPT_BACKGROUNDS:
            self._backgrounds.popitem(last=False)
        return background
