"""`[alerting]` and `[[contacts]]` parsing, the example config, and the alerting migration."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.support.alerting import CONFIG
from tests.support.paths import REPO_ROOT
from veille.alerting.settings import DEFAULT_CRISIS_WORDS, DEFAULT_SEVERE_WORDS, QuietHours
from veille.config import load_config, parse_config
from veille.core.errors import ConfigError
from veille.store.engine import make_engine
from veille.store.migrate import upgrade
from veille.store.schema_alerts import metadata

ROOT = REPO_ROOT
ALERTING_TABLES = {"incidents", "incident_events", "mutes", "alert_hits", "alert_sources", "alert_kv"}


def problems(extra_alerting: str = "", contacts: str = "") -> list[str]:
    text = CONFIG.format(channel="telegram", extra=extra_alerting) + contacts
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={})
    return [str(p) for p in info.value.problems]


def test_defaults_and_contact_chain() -> None:
    config = parse_config(CONFIG.format(channel="telegram", extra=""), environ={})
    alerting = config.alerting
    assert alerting.group_wait == timedelta(seconds=60) and alerting.digest_at == time(8, 0)
    assert [c.id for c in alerting.chain("resto")] == ["manager", "backup"]
    assert alerting.contact("manager").quiet_hours == QuietHours(time(22, 0), time(7, 30))  # type: ignore[union-attr]
    assert alerting.operator_contact().id == "manager"  # type: ignore[union-attr]
    assert "intoxication" in alerting.crisis_words and config.client("resto").crisis_words == ("gégé pue",)  # type: ignore[union-attr]


def test_every_problem_reported_with_its_path() -> None:
    found = problems(
        'group_wiat = "60s"\nquiet_low = "loud"\nnum_loops = 0\ncritical_risk = 0.1\n'
        'operator = "nobody"\ndigest_at = "8h"\nlease = "20s"',
        '\n[[contacts]]\nid = "manager"\nchannel = "pigeon"\nquiet_hours = "22:00"\n'
        'clients = ["resto", "nope"]\nfavourite = 1\n',
    )
    joined = "\n".join(found)
    for fragment in [
        "alerting.group_wiat: unknown key",
        "alerting.quiet_low",
        "alerting.num_loops",
        "alerting.critical_risk: is below risk_threshold",
        "alerting.operator: no contact",
        "alerting.lease: (20s) must be longer than send_timeout (30s)",
        "alerting.digest_at",
        "contacts[2].id: duplicate contact id",
        "contacts[2].channel",
        "contacts[2].quiet_hours",
        "contacts[2].clients[1]: no client has id 'nope'",
        "contacts[2].favourite: unknown key",
        "contacts[2].address: is required",
    ]:
        assert fragment in joined, fragment


def test_crisis_words_extend_or_replace() -> None:
    extended = parse_config(CONFIG.format(channel="telegram", extra='crisis_words = ["moisi"]'), environ={})
    assert extended.alerting.crisis_words == (*DEFAULT_CRISIS_WORDS, "moisi")
    replaced = parse_config(
        CONFIG.format(channel="telegram", extra='crisis_words = ["moisi"]\nreplace_default_crisis_words = true'),
        environ={},
    )
    assert replaced.alerting.crisis_words == ("moisi",)
    off = parse_config(CONFIG.format(channel="telegram", extra='no_data_after = "off"'), environ={})
    assert replaced.alerting.severe_words == ()
    assert off.alerting.no_data_after is None


def test_severe_words_extend_the_graded_vocabulary_globally_and_per_client() -> None:
    text = CONFIG.format(channel="telegram", extra='severe_words = ["salmonelle"]').replace(
        'crisis_words = ["gégé pue"]', 'crisis_words = ["gégé pue"]\nsevere_words = ["listeria"]'
    )
    config = parse_config(text, environ={})
    assert config.alerting.severe_words == (*DEFAULT_SEVERE_WORDS, "salmonelle")
    assert config.client("resto").severe_words == ("listeria",)  # type: ignore[union-attr]


def test_example_config_has_a_manager_with_quiet_hours_and_a_backup() -> None:
    config = load_config(str(ROOT / "config.toml"), environ={})
    manager, backup = config.alerting.contacts
    assert set(manager.clients) == {"resto", "tapis", "osteo", "appli"} and str(manager.quiet_hours) == "22:00-07:30"
    assert config.timezone == "Europe/Paris"
    assert [c.id for c in config.alerting.chain("osteo")] == [manager.id, backup.id]
    assert not backup.digest


def test_migration_creates_the_alerting_tables_as_declared(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    mine = [d for d in diff if any(name in repr(d) for name in ALERTING_TABLES)]
    assert mine == []
    engine.dispose()
