"""The alerting service on a real database: restarts, acks, mutes, clock steps, atomicity (C6, C9, C11, C12, A5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

from tests.support.alerting import DAY, NIGHT, hit, make_config, make_db, make_service
from veille.core.clock import FakeClock
from veille.core.incidents import Status
from veille.notify.fake import FakeNotifier
from veille.runtime import actions
from veille.store import alerts as store
from veille.store.engine import read_conn, write_tx
from veille.store.schema import clients, hits, outbox, sources
from veille.store.schema_alerts import alert_hits, incident_events, incidents


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_db(db_url)


def rows(engine: Engine) -> list:
    with read_conn(engine) as conn:
        return store.outbox_rows(conn)


def feed(service, engine: Engine, *new_hits) -> None:  # type: ignore[no-untyped-def]
    with write_tx(engine) as conn:
        service.on_new_hits(conn, list(new_hits))


def test_night_bad_buzz_wakes_manager_after_group_wait(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock))
    service.tick()
    assert rows(engine) == []  # inside group_wait
    clock.advance(60)
    service.tick()
    (row,) = rows(engine)
    assert (row.contact, row.kind, row.urgency, row.silent, row.address) == (
        "manager",
        "opened",
        "high",
        False,
        "chat-manager",
    )
    assert row.payload["tag"] == f"#INC-{row.incident_id}" and row.payload["hits"][0]["author"]
    assert "Bad buzz" in row.payload["title"] and "Gégé" in row.payload["title"]


def test_c11_restart_during_group_wait_notifies_exactly_once(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    first = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(first, engine, hit(clock), hit(clock))
    clock.advance(30)
    second = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})  # "restarted" daemon
    feed(second, engine, hit(clock))
    clock.advance(31)
    second.tick()
    first.tick()  # a stale instance ticking too must not double-notify
    second.tick()
    (row,) = rows(engine)
    assert row.kind == "opened"
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.hit_count == 3


def test_c12_wall_clock_steps_cause_no_duplicate_and_no_early_resolve(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock, "Remboursez-moi, honte", followers=40, score=-0.6))  # low: no escalation
    clock.advance(61)
    service.tick()
    assert len(rows(engine)) == 1
    clock.step_wall(3600)  # NTP jumps forward an hour: resolve_after (2h) must not be shortened
    service.tick()
    clock.advance(3000)
    service.tick()
    clock.step_wall(-7200)  # and back two hours
    service.tick()
    clock.advance(60)
    service.tick()
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.status is not Status.RESOLVED
    assert [r.kind for r in rows(engine)] == ["opened"]


def test_c6_ack_cancels_escalation_also_across_restart(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock))
    clock.advance(60)
    service.tick()
    clock.advance(600)
    service.tick()  # escalated to backup at +10 min
    assert [(r.kind, r.contact) for r in rows(engine)] == [("opened", "manager"), ("escalated", "backup")]
    incident_id = rows(engine)[0].incident_id
    assert actions.ack(engine, clock, service.settings, incident_id, contact="backup", actor="cli")
    restarted = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    for _ in range(12):
        clock.advance(300)
        restarted.tick()
    assert len(rows(engine)) == 2
    with read_conn(engine) as conn:
        kinds = [e.kind for e in store.events_for(conn, [incident_id])]
    assert "ack" in kinds


def test_ack_cancels_queued_escalation_rows(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock))
    clock.advance(60)
    service.tick()
    clock.advance(600)
    service.tick()
    incident_id = rows(engine)[0].incident_id
    actions.ack(engine, clock, service.settings, incident_id, contact="manager", actor="cli")
    states = {r.kind: r.state for r in rows(engine)}
    assert states == {"opened": "pending", "escalated": "cancelled"}


def test_c9_mute_survives_restart_expires_exactly_and_is_audited(engine: Engine) -> None:
    clock = FakeClock(DAY)
    until = actions.mute(engine, clock, "resto", timedelta(hours=2), actor="cli")
    assert until == DAY + timedelta(hours=2)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock))
    clock.advance(3600)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})  # restart
    feed(service, engine, hit(clock))
    clock.advance(3599)
    service.tick()
    assert rows(engine) == []
    clock.advance(1)
    service.tick()
    assert [r.kind for r in rows(engine)] == ["opened"]
    with read_conn(engine) as conn:
        mutes = store.events_of_kind(conn, "mute")
    assert mutes[0].actor == "cli" and mutes[0].client_id == "resto"


def test_a5_outbox_failure_rolls_back_hits_and_incident(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the failing trigger is written for SQLite")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    clock = FakeClock(DAY)
    service = make_service(
        engine, clock, {"telegram": FakeNotifier("telegram")}, config=make_config(extra='group_wait = "0s"')
    )
    stored = hit(clock)
    with pytest.raises(Exception, match="disk full"), write_tx(engine) as conn:
        now = clock.now()
        conn.execute(insert(clients).values(id="resto", name="Chez Gégé", updated_at=now))
        source_id = conn.execute(
            insert(sources)
            .values(
                key="resto/rss",
                client_id="resto",
                kind="rss",
                target="x",
                every_seconds=600,
                enabled=True,
                in_config=True,
                status="new",
                consecutive_errors=0,
                hits_count=0,
            )
            .returning(sources.c.id)
        ).scalar_one()
        conn.execute(
            insert(hits).values(
                id=stored.id,
                source_id=source_id,
                client_id="resto",
                external_id="1",
                text_hash="h",
                content_hash="h",
                content_changes=0,
                kind="rss",
                text=stored.text,
                title="",
                direct=True,
                published_at=now,
                fetched_at=now,
            )
        )
        service.on_new_hits(conn, [stored])
    with read_conn(engine) as conn:
        counts = [
            conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (hits, incidents, alert_hits, outbox, incident_events)
        ]
    assert counts == [0, 0, 0, 0, 0]


def test_source_failing_for_hours_opens_a_low_urgency_incident_and_resolves(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    since = clock.now() - timedelta(hours=5)
    with write_tx(engine) as conn:
        service.on_source_health(conn, "resto/rss", "resto", False, "http_5xx", since)
    clock.advance(3600)
    service.tick()
    clock.advance(60)
    service.tick()
    (row,) = rows(engine)
    assert (row.kind, row.urgency, row.silent) == ("opened", "low", True)
    assert "resto/rss" in row.payload["title"]
    with write_tx(engine) as conn:
        service.on_source_health(conn, "resto/rss", "resto", True, None, None)
    assert [r.kind for r in rows(engine)] == ["opened", "resolved"]


def test_client_without_data_becomes_an_incident(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    service.tick()
    clock.advance(3 * 86400 + 61)
    service.tick()
    clock.advance(61)
    service.tick()
    with read_conn(engine) as conn:
        causes = sorted(i.cause.value for i in store.list_incidents(conn))
    assert causes == ["silence", "silence"]  # resto and tapis both silent


def test_low_urgency_at_night_is_held_then_in_the_morning_digest(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    service.tick()  # first run: digests start counting from now
    feed(service, engine, hit(clock, "Remboursez-moi, honte", followers=40, score=-0.6))
    clock.advance(61)
    service.tick()
    assert rows(engine) == []  # held: nobody woken
    clock.advance(6 * 3600)  # 08:14 in Paris
    service.tick()
    digests = [r for r in rows(engine) if r.kind == "digest"]
    assert {r.contact for r in digests} == {"manager", "backup"}
    assert all(r.silent for r in digests)
    assert any("#INC-" in line for line in digests[0].payload["reasons"])
    clock.advance(600)
    service.tick()
    assert len([r for r in rows(engine) if r.kind == "digest"]) == 2  # once per day


def test_engagement_growth_raises_urgency_of_an_open_incident(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    first = hit(clock, "Plus jamais, une honte", followers=150, score=-0.8)
    feed(service, engine, first)
    clock.advance(61)
    service.tick()
    assert rows(engine) == []
    clock.advance(600)
    grown = hit(clock, first.text, followers=150, score=-0.8, hit_id=first.id, reposts=120)
    feed(service, engine, grown)
    service.tick()
    (row,) = rows(engine)
    assert (row.kind, row.urgency, row.silent) == ("update", "high", False)


def test_a13_read_only_database_loses_no_alerting_state(engine: Engine) -> None:
    from sqlalchemy import event

    from veille.core.errors import StorageError

    if engine.dialect.name != "sqlite":
        pytest.skip("query_only is a SQLite pragma")
    read_only = {"on": False}

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA query_only = {1 if read_only['on'] else 0}")

    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock))
    clock.advance(61)
    read_only["on"] = True
    with pytest.raises(StorageError):
        service.tick()
    with pytest.raises(StorageError):
        feed(service, engine, hit(clock))  # the pipeline's transaction fails as a whole
    read_only["on"] = False
    assert rows(engine) == []
    service.tick()
    service.tick()
    assert [r.kind for r in rows(engine)] == ["opened"]
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.hit_count == 1  # the failed batch left nothing behind


def test_hits_to_refresh_lists_recent_risky_hits(engine: Engine) -> None:
    clock = FakeClock(NIGHT)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    risky, calm = hit(clock), hit(clock, "Très bon repas", score=0.8)
    feed(service, engine, risky, calm)
    with read_conn(engine) as conn:
        assert service.hits_to_refresh(conn) == [risky.id]
    clock.advance(7 * 3600)
    with read_conn(engine) as conn:
        assert service.hits_to_refresh(conn) == []


def test_steady_clock_ignores_steps_but_follows_a_long_suspend() -> None:
    from veille.runtime.alerting import SteadyClock

    clock = FakeClock(DAY)
    steady = SteadyClock(clock)
    clock.step_wall(3600)
    assert steady.now() == DAY
    clock.step_wall(-7200)
    clock.advance(60)
    assert steady.now() == DAY + timedelta(seconds=60)
    clock.step_wall(8 * 3600 + 3600)  # the laptop slept all night (monotonic time did not move)
    assert steady.now() == clock.now()


async def test_run_ticks_dispatches_and_stops_within_grace(engine: Engine) -> None:
    import asyncio

    from veille.core.clock import SystemClock

    fake = FakeNotifier("telegram")
    service = make_service(
        engine,
        SystemClock(),
        {"telegram": fake},  # type: ignore[arg-type]
        config=make_config(extra='group_wait = "0s"'),
    )
    feed(service, engine, hit(SystemClock()))  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    for _ in range(100):
        if fake.sent:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=8)
    assert [s.address for s in fake.sent] == ["chat-manager"]
    assert service.health()["outbox"] == {"sent": 1} and service.last_tick_at is not None


def test_a_post_that_keeps_spreading_keeps_its_incident_open(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    first = hit(clock)
    feed(service, engine, first)
    for step in range(1, 9):  # 8 x 20 min: 2h40 of growth, past resolve_after (2h) since first seen
        clock.advance(1200)
        feed(service, engine, hit(clock, first.text, hit_id=first.id, reposts=40 * step))
        service.tick()
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.status is not Status.RESOLVED
    clock.advance(2 * 3600 + 60)  # growth stops: resolved resolve_after later
    service.tick()
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.status is Status.RESOLVED


# --- the in-memory windows and batched bookkeeping (issue 12) -------------------------------------------


def window_since(service, clock: FakeClock):  # type: ignore[no-untyped-def]
    return clock.now() - timedelta(days=8)


def stored_window(engine: Engine, since) -> set:  # type: ignore[no-untyped-def]
    with read_conn(engine) as conn:
        return {
            (r.hit_id, r.seen_at, r.author, r.text_key, r.negative, round(r.risk, 6), r.active_at)
            for r in store.hits_since(conn, "resto", since)
        }


def memory_window(service, engine: Engine, since) -> set:  # type: ignore[no-untyped-def]
    with read_conn(engine) as conn:
        return {
            (r.hit_id, r.seen_at, r.author, r.text_key, r.negative, round(r.risk, 6), r.active_at)
            for r in service.windows.rows(conn, "resto", since)
        }


class Statements:
    """Counts the SQL statements sent to the database (an executemany is one)."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", lambda *args: self.seen.append(args[2]))

    def count(self, *needles: str) -> int:
        return sum(all(n in statement for n in needles) for statement in self.seen)


def test_window_is_read_once_and_kept_equal_to_the_database(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    statements = Statements(engine)
    for batch in range(5):
        feed(service, engine, *(hit(clock, f"Avis {batch}-{i} sur Chez Gégé", score=0.2) for i in range(40)))
        clock.advance(30)  # (the window is read again after WINDOW_RESYNC_SECONDS)
    old = hit(clock, "Un vieil avis sur Chez Gégé", score=0.2)
    feed(service, engine, old)
    feed(service, engine, replace_engagement(old, reposts=50))  # engagement growth: active again
    assert statements.count("FROM alert_hits", "seen_at >=") == 1  # read once, never per batch
    assert statements.count("INSERT INTO alert_hits") == 6  # one statement per batch, not per hit
    since = window_since(service, clock)
    assert memory_window(service, engine, since) == stored_window(engine, since)
    assert len(stored_window(engine, since)) == 201


def replace_engagement(stored, *, reposts: int):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from veille.core.models import Engagement

    return replace(stored, engagement=Engagement(reposts=reposts))


def test_window_drops_what_a_rolled_back_transaction_added(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock, "Premier avis sur Chez Gégé", score=0.2))
    with pytest.raises(RuntimeError), write_tx(engine) as conn:
        service.on_new_hits(conn, [hit(clock, "Jamais stocké, Chez Gégé", score=0.2)])
        raise RuntimeError("the commit fails")
    since = window_since(service, clock)
    assert len(memory_window(service, engine, since)) == 1
    assert memory_window(service, engine, since) == stored_window(engine, since)


def test_window_sees_other_processes_hits_after_the_resync_delay(engine: Engine) -> None:
    from veille.runtime.alerting import WINDOW_RESYNC_SECONDS

    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    other = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})  # another daemon, or --once
    feed(service, engine, hit(clock, "Premier avis sur Chez Gégé", score=0.2))
    feed(other, engine, hit(clock, "Avis vu par l'autre démon, Chez Gégé", score=0.2))
    since = window_since(service, clock)
    assert len(memory_window(service, engine, since)) == 1
    clock.advance(WINDOW_RESYNC_SECONDS)
    assert memory_window(service, engine, since) == stored_window(engine, since)
    assert len(stored_window(engine, since)) == 2


def test_hits_leave_the_window_as_time_passes(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    feed(service, engine, hit(clock, "Avis sur Chez Gégé", score=0.2))
    clock.advance(3600)
    since = window_since(service, clock)
    assert len(memory_window(service, engine, since)) == 1
    assert memory_window(service, engine, clock.now()) == set()


async def test_a_one_shot_run_ends_the_group_and_delivers_within_its_bound(engine: Engine) -> None:
    """`veille run --once` (issue 11): no group_wait to sit out, the send happens before the run exits."""
    clock = FakeClock(NIGHT)
    fake = FakeNotifier("telegram", clock=clock)
    service = make_service(engine, clock, {"telegram": fake})
    feed(service, engine, hit(clock))
    assert await service.deliver_due(within=5) == 1
    assert [(s.notification.kind, s.address) for s in fake.sent] == [("opened", "chat-manager")]
    assert [r.state for r in rows(engine)] == ["sent"]
    # A notifier that never answers: the run still ends within its bound, the message waits in the outbox.
    fake.accept_but_hang(5)
    feed(service, engine, hit(clock, client="tapis"))
    started = asyncio.get_running_loop().time()
    await service.deliver_due(within=0.5)
    assert asyncio.get_running_loop().time() - started < 3
    assert [(r.client_id, r.state) for r in rows(engine)] == [("resto", "sent"), ("tapis", "pending")]


def test_a_one_shot_run_keeps_the_cool_down(engine: Engine) -> None:
    """A low-urgency incident reopened during its cool-down is not sent early by a one-shot run."""
    clock = FakeClock(DAY)
    fake = FakeNotifier("telegram", clock=clock)
    service = make_service(engine, clock, {"telegram": fake})
    feed(service, engine, hit(clock, "Remboursez-moi, honte", followers=40, score=-0.6))
    asyncio.run(service.deliver_due(within=5))
    assert len(fake.sent) == 1
    clock.advance(3 * 3600)  # resolved after resolve_after (2 h)
    service.tick()
    feed(service, engine, hit(clock, "Remboursez-moi, honte", followers=40, score=-0.6))  # inside the 30 min cool-down
    asyncio.run(service.deliver_due(within=5))
    assert [s.notification.kind for s in fake.sent] == ["opened", "resolved"]


def test_a_negative_spike_incident_links_its_hits_and_reads_as_a_manager_says_it(engine: Engine) -> None:
    """Issue 11: before, the alert said "4 negative voices in the window vs 0.0 expected (p=1.2e-07)" and
    `veille alerts` showed "hits 0"."""
    from veille.notify.render import from_payload, render_text

    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    texts = ("Service lent ce midi", "Plats tièdes aujourd'hui", "Attente trop longue", "Accueil froid, dommage")
    for n, text in enumerate(texts):
        feed(service, engine, hit(clock, text, followers=10, score=-0.5, direct=False, author=f"client{n}"))
        clock.advance(60)
    service.tick()
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.hit_count == 4 and len(incident.top_hits) == 4
    row = rows(engine)[0]
    message = render_text(from_payload(row.payload, outbox_id=row.id, possible_duplicate=False))
    assert "4 messages négatifs en 1 h, d'habitude aucun" in message and "p=" not in message
    assert len(row.payload["hits"]) == 3  # the alert shows the messages themselves


def test_risk_reads_a_post_whole_and_an_article_where_it_speaks_of_the_client() -> None:
    from dataclasses import replace

    from veille.runtime.alerting import risk_text

    clock = FakeClock(DAY)
    post = hit(clock, "Intoxication chez Gégé, honte !")
    assert risk_text(post) == " Intoxication chez Gégé, honte !"
    filler = "Le conseil municipal votera le budget lors de sa prochaine séance. " * 10
    article = replace(
        post,
        title="La ville en bref",
        text=filler + "Une intoxication au lycée voisin. " + filler + "Chez Gégé rouvre lundi. On y mange bien.",
        matched_terms=("chez gege",),
    )
    text = risk_text(article)
    assert "Chez Gégé rouvre lundi. On y mange bien." in text and "intoxication" not in text


def test_an_incident_keeps_a_summary_that_grows_with_it(engine: Engine) -> None:
    """Issue 16: the stored incident (both backends) and its alert say what the posts are about."""
    from veille.notify.render import from_payload, render_text

    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    for n, text in enumerate(("Une vraie terrasse", "Burger parfait", "Terrasse au soleil")):
        feed(service, engine, hit(clock, text, score=0.6, author=f"fan{n}", followers=10, direct=False))
        clock.advance(3 * 3600)
    texts = ("Serveur agressif chez Gégé", "Serveur très agressif ce midi", "Accueil glacial, serveur agressif")
    for n, text in enumerate(texts):
        feed(service, engine, hit(clock, text, followers=10, score=-0.5, direct=False, author=f"client{n}"))
        clock.advance(60)
    service.tick()
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.summary is not None
    assert (incident.summary.posts, incident.summary.authors) == (3, 3)
    assert incident.summary.terms[0] == "serveur agressif" and "gégé" not in " ".join(incident.summary.terms)
    row = rows(engine)[0]
    message = render_text(from_payload(row.payload, outbox_id=row.id, possible_duplicate=False))
    assert "En bref : serveur agressif" in message and "3 posts, 3 auteurs, 1 source" in message
    feed(service, engine, hit(clock, "Serveur agressif, jamais vu ça", followers=10, score=-0.5, author="client9"))
    with read_conn(engine) as conn:
        (incident,) = store.list_incidents(conn)
    assert incident.summary is not None and incident.summary.posts == 4


def test_a_volume_incident_lists_its_top_posts(engine: Engine) -> None:
    clock = FakeClock(DAY)
    service = make_service(engine, clock, {"telegram": FakeNotifier("telegram")})
    for n in range(24):
        feed(
            service,
            engine,
            hit(
                clock,
                f"Vu Chez Gégé à la télé, émission numéro {'abcdefghijklmnopqrstuvwx'[n]}",
                score=0.0,
                author=f"viewer{n}",
                followers=10,
                direct=False,
                reposts=n,
            ),
        )
        clock.advance(60)
    service.tick()
    clock.advance(600)
    service.tick()
    with read_conn(engine) as conn:
        (incident,) = [i for i in store.list_incidents(conn) if i.cause.value == "volume"]
    assert incident.summary is not None and "télé" in incident.summary.terms
    sent = [r for r in rows(engine) if r.incident_id == incident.id]
    assert sent and len(sent[0].payload["hits"]) == 3 and sent[0].payload["summary"]["posts"] >= 20
    assert incident.summary.posts == 24  # updated as the spike grew
