"""`[reports] send`: the daemon's monthly-report job on a fake clock, delivered through the outbox to the local
fake Telegram Bot API (sendDocument) and the console; once per client, month and contact across restarts
and concurrent daemons."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from tests.reports.test_report import seed
from tests.support.daemon import config_text
from tests.support.fake_telegram import FakeTelegram
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.errors import ConfigError
from veille.notify.console import ConsoleNotifier
from veille.notify.telegram.notifier import TelegramNotifier
from veille.notify.telegram.settings import Pacing, TelegramSettings
from veille.reports.period import Month, report_due
from veille.runtime.alerting import AlertingService
from veille.runtime.jobs import enqueue_due_reports, send_monthly_reports
from veille.runtime.wiring import build, close_all
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import outbox, report_sends

PARIS = ZoneInfo("Europe/Paris")
CHAT = 111

CONFIG = """
timezone = "Europe/Paris"

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]

[[clients]]
id = "tapis"
name = "Tapis Royal"
keywords = ["tapis royal"]

[alerting]
enabled = true

[[contacts]]
id = "manager"
name = "Camille"
channel = "telegram"
address = "111"
clients = ["resto", "tapis"]

[[contacts]]
id = "boss"
name = "Sam"
channel = "console"
address = ""
clients = ["resto"]
lang = "en"

[[contacts]]
id = "backup"
name = "Alex"
channel = "telegram"
address = "222"

{reports}
"""
SENDING = """
[reports]
send = true
contacts = ["manager", "boss"]
"""


def make_config(reports: str = SENDING) -> Config:
    return parse_config(CONFIG.format(reports=reports), environ={})


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-30T22:59", None),  # 23:59 on the 30th in Paris
        ("2026-12-01T06:59", None),  # 07:59 on the 1st: before [reports] at
        ("2026-12-01T07:00", Month(2026, 11)),
        ("2026-12-07T22:00", Month(2026, 11)),  # a daemon that was down catches up for a week
        ("2026-12-08T07:00", None),  # then no more: `veille report` makes it by hand
        ("2026-11-15T12:00", None),  # turning send on mid-month sends nothing old
        ("2027-01-01T07:30", Month(2026, 12)),
        ("2026-04-01T06:00", Month(2026, 3)),  # summer time: 08:00 in Paris is 06:00 UTC
    ],
)
def test_when_a_months_reports_are_due(now: str, expected: Month | None) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert report_due(moment, PARIS, time(8, 0)) == expected


def test_reports_config_is_off_by_default_and_checked() -> None:
    config = make_config("")
    assert not config.reports.send and config.reports.contacts == () and config.reports.format == "html"
    assert make_config(SENDING + 'at = "07:15"\nformat = "md"\n').reports.at == time(7, 15)
    with pytest.raises(ConfigError) as error:
        make_config('[reports]\nsend = true\ncontacts = ["nobody"]\nat = "25:00"\nformat = "pdf"\n')
    text = str(error.value)
    for expected in ("reports.contacts", "nobody", "reports.at", "reports.format"):
        assert expected in text, text
    with pytest.raises(ConfigError, match=r"reports\.contacts"):
        make_config("[reports]\nsend = true\n")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    seed(engine)  # November 2026 for "resto"; "tapis" had a quiet month
    yield engine
    engine.dispose()


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


class Daemon:
    """One daemon's alerting side: its notifiers (Telegram against the fake, the console into a buffer)."""

    def __init__(self, engine: Engine, fake: FakeTelegram, clock: FakeClock, config: Config) -> None:
        settings = TelegramSettings(api_base_url=fake.base_url, request_timeout=5.0, pacing=Pacing(per_chat_interval=0))
        self.telegram = TelegramNotifier(settings, fake.token, engine=engine, clock=clock)
        self.console_out = io.StringIO()
        notifiers = {"telegram": self.telegram, "console": ConsoleNotifier(self.console_out)}
        self.service = AlertingService(config, engine, clock, notifiers)


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    yield FakeClock(datetime(2026, 12, 1, 6, 59, tzinfo=UTC))  # 07:59 in Paris on December 1st


def rows(engine: Engine) -> list[tuple[str | None, str, str, str]]:
    with read_conn(engine) as conn:
        query = select(outbox.c.client_id, outbox.c.contact, outbox.c.channel, outbox.c.state).where(
            outbox.c.kind == "report"
        )
        return sorted(conn.execute(query).all())  # type: ignore[arg-type]


async def wait_rows(engine: Engine, count: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(rows(engine)) < count:
        assert asyncio.get_running_loop().time() < deadline, rows(engine)
        await asyncio.sleep(0.02)


async def test_reports_go_out_on_the_first_once_across_restarts(
    engine: Engine, fake: FakeTelegram, clock: FakeClock
) -> None:
    config = make_config()
    first = Daemon(engine, fake, clock, config)
    stop = asyncio.Event()
    job = asyncio.create_task(send_monthly_reports(first.service, engine, clock, config, stop, every=0.02))
    await asyncio.sleep(0.2)
    assert rows(engine) == []  # 07:59: not yet

    clock.advance(120)  # 08:01 in Paris
    await wait_rows(engine, 3)
    await asyncio.sleep(0.2)  # more rounds of the job: nothing more
    clock.advance(3600)
    await asyncio.sleep(0.2)
    stop.set()
    await job
    assert rows(engine) == [
        ("resto", "boss", "console", "pending"),
        ("resto", "manager", "telegram", "pending"),
        ("tapis", "manager", "telegram", "pending"),
    ]  # "backup" is not in [reports] contacts; "boss" covers only "resto"

    # A restart before the relay ran: the outbox payload carries the whole file, and the new daemon's job
    # finds the month done.
    second = Daemon(engine, fake, clock, config)
    assert enqueue_due_reports(second.service, engine, config, clock.now()) == 0
    await second.telegram.start()
    try:
        while await second.service.dispatcher.pump():
            pass
    finally:
        await second.telegram.aclose()
    assert [state for *_, state in rows(engine)] == ["sent", "sent", "sent"]

    documents = fake.documents_to(CHAT)
    assert sorted(d.filename for d in documents) == ["resto-2026-11.html", "tapis-2026-11.html"]
    resto = next(d for d in documents if d.filename.startswith("resto")).content.decode("utf-8")
    assert resto.startswith("<!DOCTYPE html>") and "Rapport mensuel — Chez Gégé — novembre 2026" in resto
    assert resto.count("<svg") >= 3 and "<script" not in resto.lower() and "&lt;script&gt;alert(1)" in resto
    (call,) = [c for c in fake.accepted if c.method == "sendDocument" and "resto" in c.params["document"].filename]
    caption = call.params["caption"]
    assert "Rapport mensuel" in caption and "4 hits, contre 5 le mois précédent" in caption
    assert call.params.get("disable_notification") in (True, "true", "True")  # a report never rings
    assert [c for c in fake.accepted if c.method == "sendMessage"] == []

    printed = second.console_out.getvalue()
    assert "Monthly report — Chez Gégé — November 2026" in printed
    assert "4 hits, against 5 the previous month" in printed and "Attached file: resto-2026-11.html (" in printed


async def test_two_daemons_at_once_send_each_report_once(engine: Engine, fake: FakeTelegram) -> None:
    config = make_config()
    clock = FakeClock(datetime(2027, 1, 1, 7, 30, tzinfo=UTC))
    daemons = [Daemon(engine, fake, clock, config) for _ in range(2)]
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run(daemon: Daemon) -> None:
        barrier.wait()
        counts.append(enqueue_due_reports(daemon.service, engine, config, clock.now()))

    await asyncio.gather(*(asyncio.to_thread(run, d) for d in daemons))
    assert sum(counts) == 3 and len(rows(engine)) == 3
    with read_conn(engine) as conn:
        sends = conn.execute(select(report_sends.c.month, func.count()).group_by(report_sends.c.month)).all()
        linked = conn.execute(
            select(func.count()).select_from(report_sends).where(report_sends.c.outbox_id.is_not(None))
        ).scalar_one()
    assert sends == [("2026-12", 3)] and linked == 3
    clock.advance(timedelta(days=1).total_seconds())
    assert enqueue_due_reports(daemons[0].service, engine, config, clock.now()) == 0


async def test_the_daemon_wiring_sends_the_report(
    tmp_path: Path, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`veille run`'s own wiring (build): with [reports] send on, its background jobs put the report in the
    outbox and its relay delivers it to the contact's Telegram chat as a file (timezone: Europe/Paris by default)."""
    monkeypatch.setenv("E2E_TELEGRAM_TOKEN", fake.token)
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    extra = f"""
[alerting]
enabled = true

[[contacts]]
id = "camille"
name = "Camille"
channel = "telegram"
address = "{CHAT}"
clients = ["*"]
lang = "en"

[telegram]
token_env = "E2E_TELEGRAM_TOKEN"
api_base_url = "{fake.base_url}"

[reports]
send = true
contacts = ["camille"]
format = "md"
"""
    config = parse_config(config_text(db_url, {"resto": ["https://example.org/feed.xml"]}, extra=extra), environ={})
    migrate = make_engine(db_url)
    upgrade(migrate)
    migrate.dispose()
    components = build(config, clock=FakeClock(datetime(2026, 12, 1, 7, 1, tzinfo=UTC)))
    stop = asyncio.Event()
    try:
        for starter in components.starters:
            await starter()
        tasks = [asyncio.create_task(job(stop)) for job in components.background]
        deadline = asyncio.get_running_loop().time() + 30
        while not fake.documents_to(CHAT):
            assert asyncio.get_running_loop().time() < deadline, "no report delivered"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
    finally:
        stop.set()
        await close_all(components)
    (document,) = fake.documents_to(CHAT)
    assert document.filename == "resto-2026-11.md"
    assert document.content.decode("utf-8").startswith("# Monthly report — resto — November 2026\n")
