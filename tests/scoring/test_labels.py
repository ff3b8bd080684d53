"""Corrections recorded with `veille label`, read back for training (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from veille.core.models import SentimentLabel
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.labels import UnknownHit, list_training_rows, mark_used, record_label
from veille.store.schema import clients, hits, labels, metadata, sources

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def add_hit(engine, external_id: str, text: str, *, lang: str | None = "fr", title: str = "") -> int:
    with write_tx(engine) as conn:
        if conn.execute(select(clients.c.id)).first() is None:
            conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=NOW))
            conn.execute(
                sources.insert().values(
                    key="resto/rss", client_id="resto", kind="rss", target="https://example.org/feed", every_seconds=600
                )
            )
        source_id = conn.execute(select(sources.c.id)).scalar_one()
        result = conn.execute(
            hits.insert().values(
                source_id=source_id,
                client_id="resto",
                external_id=external_id,
                text_hash=external_id,
                content_hash=external_id,
                kind="rss",
                text=text,
                title=title,
                sentiment_lang=lang,
                published_at=NOW,
                fetched_at=NOW,
            )
        )
        return int(result.inserted_primary_key[0])


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_record_and_list_latest_label_per_hit(engine) -> None:
    first = add_hit(engine, "a", "Le plat était froid et fade")
    second = add_hit(engine, "b", "Great staff, thanks!", lang="en")
    record_label(engine, first, SentimentLabel.NEU, now=NOW)
    record_label(engine, first, SentimentLabel.NEG, now=NOW)  # corrected again: the latest wins
    record_label(engine, second, SentimentLabel.POS, now=NOW)
    rows = list_training_rows(engine)
    assert [(r.hit_id, r.lang, r.label, r.text) for r in rows] == [
        (first, "fr", SentimentLabel.NEG, "Le plat était froid et fade"),
        (second, "en", SentimentLabel.POS, "Great staff, thanks!"),
    ]


def test_unknown_hit_is_refused(engine) -> None:
    with pytest.raises(UnknownHit) as error:
        record_label(engine, 4242, SentimentLabel.NEG, now=NOW)
    assert error.value.hit_id == 4242
    with read_conn(engine) as conn:
        assert conn.execute(select(labels)).first() is None


def test_title_is_used_when_the_text_is_empty(engine) -> None:
    hit = add_hit(engine, "c", "", title="Arnaque !", lang=None)
    record_label(engine, hit, SentimentLabel.NEG, now=NOW)
    [row] = list_training_rows(engine)
    assert (row.text, row.lang) == ("Arnaque !", "fr")


def test_mark_used(engine) -> None:
    hit = add_hit(engine, "d", "bof")
    label_id = record_label(engine, hit, SentimentLabel.NEU, now=NOW)
    assert mark_used(engine, [label_id], now=NOW) == 1
    assert mark_used(engine, [], now=NOW) == 0
    with read_conn(engine) as conn:
        assert conn.execute(select(labels.c.used_in_training_at)).scalar_one() == NOW
