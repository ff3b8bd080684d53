"""Sentiment corrections made by people (`veille label HIT neg|neu|pos`), read back for training.

An agency's own corrections are the best training data it will ever have: every correction is
kept (the latest one per hit wins), and `veille sentiment train` adds them to the user's file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from veille.core.errors import VeilleError
from veille.core.models import SentimentLabel
from veille.store.engine import read_conn, write_tx
from veille.store.schema import hits, labels


class UnknownHit(VeilleError):
    """No hit has this id (it may have been purged)."""

    def __init__(self, hit_id: int) -> None:
        self.hit_id = hit_id
        super().__init__(f"no hit with id {hit_id}")


@dataclass(frozen=True, slots=True)
class TrainingRow:
    label_id: int
    hit_id: int
    lang: str
    label: SentimentLabel
    text: str


def record_label(engine: Engine, hit_id: int, label: SentimentLabel, *, now: datetime) -> int:
    """Store one correction; returns its id. Raises UnknownHit if the hit does not exist."""
    with write_tx(engine) as conn:
        exists = conn.execute(select(hits.c.id).where(hits.c.id == hit_id)).first()
        if exists is None:
            raise UnknownHit(hit_id)
        row = labels.insert().values(hit_id=hit_id, label=SentimentLabel(label).value, created_at=now)
        return int(conn.execute(row.returning(labels.c.id)).scalar_one())


def list_training_rows(engine: Engine) -> list[TrainingRow]:
    """The latest correction of each labelled hit, with the hit's text and language."""
    latest = (select(func.max(labels.c.id).label("id")).group_by(labels.c.hit_id)).subquery()
    query = (
        select(
            labels.c.id, labels.c.hit_id, labels.c.label, hits.c.text, hits.c.title, hits.c.sentiment_lang, hits.c.lang
        )
        .join(latest, latest.c.id == labels.c.id)
        .join(hits, hits.c.id == labels.c.hit_id)
        .order_by(labels.c.id)
    )
    rows = []
    with read_conn(engine) as conn:
        for row in conn.execute(query):
            text = row.text or row.title or ""
            lang = (row.sentiment_lang or row.lang or "fr").split("-")[0].lower()
            if row.label in SentimentLabel._value2member_map_ and text.strip():
                rows.append(TrainingRow(row.id, row.hit_id, lang, SentimentLabel(row.label), text))
    return rows


def mark_used(engine: Engine, label_ids: Iterable[int], *, now: datetime) -> int:
    """Remember which corrections a training run used (shown by `veille sentiment train`)."""
    ids = list(label_ids)
    if not ids:
        return 0
    with write_tx(engine) as conn:
        total = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            total += conn.execute(update(labels).where(labels.c.id.in_(chunk)).values(used_in_training_at=now)).rowcount
        return total
