"""G10 Retention: old hits deleted in transactions of at most 1,000, on SQLite and PostgreSQL.

Dependants go first (engagement, alert rows, duplicate links), labelled hits and the evidence of
unresolved incidents stay, readers in other threads keep getting correct answers between batches.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, func, select, update

from tests.support.daemon import make_config
from veille.cli import cli
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.errors import ConfigError
from veille.runtime.jobs import purge_daily
from veille.store.engine import make_engine, read_conn, write_tx
from veille.store.retention import BATCH, purge_hits
from veille.store.schema import engagement, hits, labels, sources
from veille.store.schema_alerts import alert_hits, incidents
from veille.store.sources import sync_config

NOW = datetime.now(UTC).replace(microsecond=0)  # `veille purge` counts from the real time
OLD = NOW - timedelta(days=500)
RECENT = NOW - timedelta(days=2)
KEEP = timedelta(days=400)


def hit_row(source_id: int, n: int, fetched_at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "client_id": "resto",
        "external_id": f"e{n}",
        "text_hash": f"t{n}",
        "content_hash": f"c{n}",
        "kind": "rss",
        "text": f"chez gégé {n}",
        "title": "",
        "published_at": fetched_at,
        "fetched_at": fetched_at,
        **extra,
    }


def incident_row(status: str, top_hits: list[int], opened_at: datetime) -> dict[str, Any]:
    return {
        "key": f"resto:buzz:{status}",
        "client_id": "resto",
        "cause": "buzz",
        "subject": "",
        "status": status,
        "urgency": "high",
        "firing": status != "resolved",
        "opened_at": opened_at,
        "notify_at": opened_at,
        "last_evidence_at": opened_at,
        "reasons": [],
        "top_hits": top_hits,
        "notified_contacts": [],
        "held_for": [],
        "updated_at": opened_at,
    }


class Fixture:
    """3,500 purgeable old hits (with engagement, alert rows, links from recent duplicates), old hits
    that must stay (labelled, evidence of an open incident), and recent hits."""

    def __init__(self, config: Config, purgeable: int = 3500, recent: int = 20) -> None:
        self.engine = make_engine(config.database_url)
        with write_tx(self.engine) as conn:
            refs = sync_config(conn, config.clients, config.sources, NOW)
            source_id = next(iter(refs.values())).id
            conn.execute(hits.insert(), [hit_row(source_id, n, OLD + timedelta(seconds=n)) for n in range(purgeable)])
            old_ids = list(conn.execute(select(hits.c.id).order_by(hits.c.id)).scalars())
            conn.execute(hits.insert(), [hit_row(source_id, n, OLD) for n in range(purgeable, purgeable + 2)])
            self.labelled, self.evidence = conn.execute(
                select(hits.c.id).where(hits.c.id.not_in(old_ids)).order_by(hits.c.id)
            ).scalars()
            conn.execute(labels.insert().values(hit_id=self.labelled, label="neg", created_at=OLD))
            conn.execute(
                hits.insert(),
                [
                    hit_row(source_id, purgeable + 2 + n, RECENT, duplicate_of=old_ids[n % purgeable])
                    for n in range(recent)
                ],
            )
            conn.execute(
                engagement.insert(),
                [{"hit_id": i, "observed_at": OLD, "likes": 3} for i in old_ids[:1500]]
                + [{"hit_id": self.labelled, "observed_at": OLD, "likes": 1}],
            )
            conn.execute(alert_hits.insert(), [_alert_row(i) for i in old_ids[:10]])
            conn.execute(
                incidents.insert(),
                [
                    incident_row("open", [self.evidence], NOW - timedelta(days=1)),
                    incident_row("resolved", [old_ids[0]], OLD),
                ],
            )
            conn.execute(update(sources).values(hits_count=purgeable + 2 + recent))
        self.purgeable = purgeable
        self.total = purgeable + 2 + recent

    def count(self, table: Any = hits) -> int:
        with read_conn(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _alert_row(hit_id: int) -> dict[str, Any]:
    return {
        "hit_id": hit_id,
        "client_id": "resto",
        "seen_at": OLD,
        "active_at": OLD,
        "source_kind": "rss",
        "text_key": "k",
        "snippet": "s",
        "negative": True,
        "risk": 0.9,
        "reasons": [],
        "first_at": OLD,
        "total_at": OLD,
    }


def commits(engine: Engine) -> list[int]:
    """Write transactions committed from now on (`write_tx` marks its connection; reads are not counted)."""
    counted: list[int] = []
    event.listen(engine, "commit", lambda conn: counted.append(1) if conn.info.get("veille_begin") else None)
    return counted


def test_3500_old_hits_go_in_4_transactions_and_everything_else_stays(tmp_path: Path, db_url: str) -> None:
    config = make_config(tmp_path, db_url, {"resto": ["https://example.org/feed"]})
    data = Fixture(config)
    seen_between: list[int] = []
    reader = ThreadPoolExecutor(max_workers=1)

    def read_elsewhere(batch: int, deleted: int) -> None:
        # Another connection, in another thread, between two batches: it gets an answer, the right one.
        seen_between.append(reader.submit(data.count).result(timeout=30))

    counted = commits(data.engine)
    report = purge_hits(data.engine, NOW - KEEP, on_batch=read_elsewhere)
    reader.shutdown()

    assert (report.hits, report.batches, len(counted)) == (3500, 4, 4)
    assert seen_between == [data.total - 1000, data.total - 2000, data.total - 3000, data.total - 3500]
    with read_conn(data.engine) as conn:
        left = conn.execute(select(hits.c.id, hits.c.fetched_at, hits.c.duplicate_of)).all()
        assert {r.id for r in left if r.fetched_at < NOW - KEEP} == {data.labelled, data.evidence}
        assert sum(1 for r in left if r.fetched_at >= NOW - KEEP) == 20
        assert all(r.duplicate_of is None for r in left)  # links to purged hits were cut, not left dangling
        ids = {r.id for r in left}
        assert set(conn.execute(select(engagement.c.hit_id)).scalars()) == {data.labelled}
        assert conn.execute(select(func.count()).select_from(alert_hits)).scalar_one() == 0
        assert set(conn.execute(select(labels.c.hit_id)).scalars()) <= ids
        assert conn.execute(select(sources.c.hits_count)).scalar_one() == len(left)
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert purge_hits(data.engine, NOW - KEEP) == type(report)(hits=0, batches=1)  # nothing left to do
    data.engine.dispose()


def test_dry_run_counts_and_deletes_nothing(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, {"resto": ["https://example.org/feed"]})
    data = Fixture(config, purgeable=1200)
    counted = commits(data.engine)
    report = purge_hits(data.engine, NOW - KEEP, dry_run=True)
    assert (report.hits, report.batches, len(counted)) == (1200, 0, 0)
    assert data.count() == data.total
    data.engine.dispose()


def test_batches_are_never_bigger_than_the_limit(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, {"resto": ["https://example.org/feed"]})
    data = Fixture(config, purgeable=2 * BATCH + 1)
    sizes: list[int] = []
    purge_hits(data.engine, NOW - KEEP, on_batch=lambda _n, deleted: sizes.append(deleted))
    assert sizes == [BATCH, BATCH, 1]
    data.engine.dispose()


def test_purge_command(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_LANG", "en")
    config = make_config(tmp_path, sqlite_url, {"resto": ["https://example.org/feed"]})
    data = Fixture(config, purgeable=1500)
    runner = CliRunner()
    refused = runner.invoke(cli, ["purge", "--config", config.path])
    assert refused.exit_code == 2 and "--older-than" in refused.output
    dry = runner.invoke(cli, ["purge", "--config", config.path, "--older-than", "400d", "--dry-run"])
    assert dry.exit_code == 0 and "1500 hits older than 400d would be deleted" in dry.output
    assert data.count() == data.total
    done = runner.invoke(cli, ["purge", "--config", config.path, "--older-than", "400d"])
    assert done.exit_code == 0 and "1500 hits older than 400d deleted in 2 transactions" in done.output
    assert data.count() == data.total - 1500
    data.engine.dispose()


def test_retention_setting_is_validated_and_drives_the_daily_job(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(
        tmp_path, sqlite_url, {"resto": ["https://example.org/feed"]}, extra='[retention]\nkeep = "400d"\n'
    )
    assert config.retention.keep == KEEP
    with pytest.raises(ConfigError, match=r"retention\.keep"):
        parse_config('[retention]\nkeep = "2h"\n', environ={})
    data = Fixture(config, purgeable=5)
    clock = FakeClock(NOW)

    async def one_round() -> None:
        stop = asyncio.Event()
        job = asyncio.create_task(purge_daily(data.engine, clock, KEEP, stop, first_after=0, every=3600))
        while data.count() == data.total:
            await asyncio.sleep(0.01)
        stop.set()
        await job

    asyncio.run(one_round())
    assert data.count() == data.total - 5
    data.engine.dispose()
