"""The clients' own channels through the real pipeline and the real daemon, against a local Graph API.

What the community manager sees: every comment and message on the client's page stored (no keyword
needed) with its thread, parent and privacy; a post tagging the page kept only on a keyword; the
page's followers in the audience table; a revoked token, a missing permission and a page that does
not exist each one clear line on its source while the other sources go on, none retried in a loop;
and end to end, a furious comment polled by the daemon, stored once, scored negative, printed by the
console notifier, and a second poll that stores nothing new.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.daemon import (
    RESTO_CLIENT,
    console_daemon_config,
    console_daemon_toml,
    loopback_header,
    spawn_veille,
    wait_for,
)
from tests.support.fake_apis import T0
from tests.support.fake_google import BusinessProfileFake, PlacesFake, place_review, review
from tests.support.fake_graph import GraphFake, fb_comment, fb_message, fb_post, fb_time, ig_comment, ig_media, later
from tests.support.paths import REPO_ROOT
from tests.support.server import LocalServer
from veille.config import Config, parse_config
from veille.core.clock import FakeClock
from veille.core.models import SourceStatus
from veille.net.http import HttpClient
from veille.net.options import HttpConfig
from veille.runtime.pipeline import Pipeline
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.schema import audience, hits, sources

PAGE, OTHER, MISSING, IG = "104512345678901", "204512345678902", "999999999", "17841400000000001"
ENV = {"FB_RESTO": "page-token", "FB_REVOKED": "old-token", "FB_OSTEO": "page-token"}
FURIOUS = "Intoxication alimentaire après votre menu de Noël, c'est une honte, plus jamais, je porte plainte !"


def channels_config(db_url: str, api: str, extra: str = "") -> str:
    return f"""{loopback_header(db_url)}{extra}{RESTO_CLIENT}
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{PAGE}"
  token_env = "FB_RESTO"
  api_base = "{api}"
  every = "30s"

  [[clients.sources]]
  kind = "facebook"
  id = "fb-revoked"
  page_id = "{PAGE}"
  token_env = "FB_REVOKED"
  api_base = "{api}"

  [[clients.sources]]
  kind = "facebook"
  id = "fb-missing"
  page_id = "{MISSING}"
  token_env = "FB_RESTO"
  api_base = "{api}"

  [[clients.sources]]
  kind = "instagram"
  id = "ig"
  page_id = "{PAGE}"
  token_env = "FB_RESTO"
  hashtags = ["miam"]
  api_base = "{api}"

[[clients]]
id = "osteo"
name = "Ostéo Lemoine"
keywords = ["lemoine"]

  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{OTHER}"
  token_env = "FB_OSTEO"
  api_base = "{api}"
"""


def load(db_url: str, text: str) -> Config:
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return parse_config(text, environ={})


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpConfig(allow_private_addresses=True, timeout=5.0))
    yield client
    await client.aclose()


def page_with_activity(fake: GraphFake) -> None:
    fake.add_page(PAGE, followers=1340, ig=IG)
    fake.ig_users[IG] = {"id": IG, "username": "chezgege", "followers_count": 812}
    fake.ig_media[IG] = [ig_media("ig_m1", "Tarte du jour", when=later(1), username="chezgege")]
    fake.ig_comments["ig_m1"] = [ig_comment("ig_c1", "Trop bon !", when=later(2))]
    fake.hashtags = {"miam": "h1"}
    fake.hashtag_media = {
        "h1": [ig_media("ig_h1", "Brunch #miam", when=later(3)), ig_media("ig_h2", "#miam chez gégé")]
    }
    fake.add_page(OTHER, name="Ostéo Lemoine", followers=210)
    fake.feed[PAGE] = [fb_post(f"{PAGE}_1", "Notre menu de Noël", author=(PAGE, "Chez Gégé"), when=later(1))]
    fake.comments[f"{PAGE}_1"] = [
        fb_comment("1_c1", "Vous êtes ouverts le 24 ?", when=later(2)),
        fb_comment("1_c2", "Oui, réservez vite", author=(PAGE, "Chez Gégé"), when=later(3), parent="1_c1"),
        fb_comment("1_c3", "Super, merci", when=later(4), parent="1_c1"),
    ]
    fake.tagged[PAGE] = [
        {**fb_post("900_1", "Soirée entre amis", when=later(5)), "tagged_time": fb_time(later(5))},
        {**fb_post("900_2", "Enfin testé chez Gégé", when=later(6)), "tagged_time": fb_time(later(6))},
    ]
    fake.conversation(PAGE, "t_10", fb_message("m_1", "Bonjour, une table pour 4 ?", when=later(7)))


async def test_page_activity_through_the_pipeline(db_url: str, server: LocalServer, http: HttpClient) -> None:
    fake = GraphFake(server, token="page-token")
    page_with_activity(fake)
    fake.permissions.discard("pages_messaging")  # the osteo page's token lacks it too: one note, no loop
    config = load(db_url, channels_config(db_url, server.url("").rstrip("/")))
    clock = FakeClock(T0)
    engine = make_engine(db_url)
    pipeline = Pipeline(config, engine, clock, http, env=ENV.get, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    for key in sorted(pipeline.runtimes):
        await pipeline.poll(key)
    assert pipeline.runtimes["resto/fb-revoked"].status is SourceStatus.AUTH_FAILED
    assert await pipeline.poll("resto/fb-revoked") is None  # not retried in a loop
    calls = len(fake.calls)
    await pipeline.stop()
    assert len(fake.calls) == calls

    with read_conn(engine) as conn:
        rows = {(r.client_id, r.external_id): r for r in conn.execute(select(hits)).all()}
        states = {r.key: r for r in conn.execute(select(sources)).all()}
        figures = {(r.source_key, r.metric): r.value for r in conn.execute(select(audience)).all()}
    engine.dispose()
    resto = {e: r for (c, e), r in rows.items() if c == "resto"}
    # No keyword needed on the page or the account; tagged posts and hashtag media need one.
    # The page's own answer is stored as the client's (the reply inbox closes on it).
    assert set(resto) == {"1_c1", "1_c2", "1_c3", "900_2", "ig_c1", "ig_h2"}
    assert [e for e, r in resto.items() if r.from_client] == ["1_c2"]
    assert resto["ig_c1"].kind == "instagram" and resto["ig_c1"].thread_id == "ig_m1"
    assert resto["1_c3"].thread_id == f"{PAGE}_1" and resto["1_c3"].parent_id == "1_c1"
    assert resto["1_c1"].direct and not resto["1_c1"].private and resto["1_c1"].kind == "facebook"
    assert resto["900_2"].matched_terms == "chez gege"
    assert figures == {
        ("resto/fb", "followers"): 1340.0,
        ("resto/ig", "followers"): 812.0,
        ("osteo/fb", "followers"): 210.0,
    }

    revoked, missing, good = states["resto/fb-revoked"], states["resto/fb-missing"], states["resto/fb"]
    assert revoked.status == "auth_failed" and revoked.last_error_kind == "auth"
    assert "access token expired or revoked (code 190)" in revoked.last_error_message
    assert "old-token" not in revoked.last_error_message
    assert missing.last_error_kind == "not_found" and f"facebook {MISSING} feed" in missing.last_error_message
    assert good.status == "ok" and good.note == "missing permission: pages_messaging (messages not read)"
    assert states["osteo/fb"].status == "ok"
    assert states["resto/ig"].note == "Instagram hashtags: 29/30 left over 7 days"


async def test_private_messages_are_stored_private(db_url: str, server: LocalServer, http: HttpClient) -> None:
    fake = GraphFake(server, token="page-token")
    page_with_activity(fake)
    config = load(db_url, channels_config(db_url, server.url("").rstrip("/")))
    engine = make_engine(db_url)
    pipeline = Pipeline(config, engine, FakeClock(T0), http, env=ENV.get, rng=random.Random(1))
    pipeline.load()
    await pipeline.start()
    await pipeline.poll("resto/fb")
    await pipeline.stop()
    with read_conn(engine) as conn:
        message = conn.execute(select(hits).where(hits.c.external_id == "m_1")).one()
    engine.dispose()
    assert (
        message.private
        and message.direct
        and message.thread_id == "t_10"
        and message.extra == {"type": "message", "author_id": "888"}
    )


def test_furious_comment_end_to_end(tmp_path: Path, server: LocalServer) -> None:
    """The daemon polls the page, stores the comment once, scores it negative, the console prints the alert;
    a second poll (`veille run --once`) stores nothing new."""
    fake = GraphFake(server, token="page-token")
    fake.add_page(PAGE)
    now = datetime.now(UTC)
    fake.feed[PAGE] = [
        fb_post(f"{PAGE}_1", "Notre menu de Noël", author=(PAGE, "Chez Gégé"), when=now - timedelta(hours=3))
    ]
    fake.comments[f"{PAGE}_1"] = [fb_comment("1_c1", FURIOUS, when=now - timedelta(minutes=2))]
    db_url = f"sqlite:///{tmp_path / 'veille.db'}"
    config = console_daemon_config(
        tmp_path,
        db_url,
        sources=f"""
  [[clients.sources]]
  kind = "facebook"
  id = "fb"
  page_id = "{PAGE}"
  token_env = "FB_RESTO"
  api_base = "{server.url("").rstrip("/")}"
  every = "1h"
""",
    )
    engine = make_engine(db_url)
    env = {**os.environ, "FB_RESTO": "page-token", "VEILLE_LANG": "fr"}
    log = tmp_path / "daemon.log"
    daemon = spawn_veille(["run", "--config", str(config)], log, env)
    try:
        assert wait_for(lambda: "intoxication" in log.read_text().lower(), 60), (log.read_text()[-3000:], fake.calls)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    printed = log.read_text()
    assert "--- camille" in printed and "Bad buzz possible" in printed and "Chez Gégé" in printed
    with read_conn(engine) as conn:
        stored = conn.execute(select(hits)).all()
    assert [r.external_id for r in stored] == ["1_c1"] and stored[0].sentiment_label == "neg"
    assert stored[0].thread_id == f"{PAGE}_1" and stored[0].direct and stored[0].author == "Marc Dupont"
    assert "Marc Dupont [facebook, neg" in printed

    comment_reads = len(fake.edge_calls("comments"))
    again = subprocess.run(
        [sys.executable, "-m", "veille", "run", "--once", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(fake.edge_calls("feed")) == 2  # polled again...
    assert len(fake.edge_calls("comments")) == comment_reads  # ...the comment count had not moved
    with read_conn(engine) as conn:
        assert [r.external_id for r in conn.execute(select(hits)).all()] == ["1_c1"]  # nothing new stored
    engine.dispose()


def google_config(db_url: str, reviews_api: str, places_api: str) -> str:
    return console_daemon_toml(
        db_url,
        extra="[alerting.audience_drop]\nrating = 0.2\n",
        sources=f"""
  [[clients.sources]]
  kind = "google-reviews"
  id = "reviews"
  account_id = "1"
  location_id = "2"
  client_id_env = "G_ID"
  client_secret_env = "G_SECRET"
  refresh_token_env = "G_REFRESH"
  api_base = "{reviews_api}/v4"
  token_url = "{reviews_api}/token"

  [[clients.sources]]
  kind = "google-places"
  id = "places"
  place_id = "{PLACE_ID}"
  key_env = "G_PLACES"
  api_base = "{places_api}/v1"
""",
    )


PLACE_ID = "ChIJ442GNENu5kcRGYUrvgqHw88"
GOOGLE_ENV = {
    "G_ID": "cid.apps.googleusercontent.com",
    "G_SECRET": "csecret",
    "G_REFRESH": "1//refresh",
    "G_PLACES": "AIzaPLACES",
}


async def test_google_reviews_stars_and_a_falling_rating(db_url: str, server: LocalServer, http: HttpClient) -> None:
    """A 1-star review whose words are polite is stored negative; the rating losing 0.3 the next day opens
    one low-urgency incident; the new review of the Places answer is stored once."""
    from veille.runtime.alerting import AlertingService
    from veille.scoring.loader import load_scorer
    from veille.store.schema_alerts import incidents

    profile = BusinessProfileFake(server)
    profile.reviews = [
        review("r1", 1, "Personnel très aimable et souriant, merci pour l'accueil.", when=later(1)),
        review("r2", 5, "Parfait, je recommande", when=later(2)),
    ]
    with LocalServer() as places_server:
        places = PlacesFake(places_server)
        places.places[PLACE_ID] = {"id": PLACE_ID, "rating": 4.4, "userRatingCount": 120, "reviews": []}
        config = load(db_url, google_config(db_url, server.url("").rstrip("/"), places_server.url("").rstrip("/")))
        clock = FakeClock(T0)
        engine = make_engine(db_url)
        alerting = AlertingService(config, engine, clock, {})
        pipeline = Pipeline(
            config, engine, clock, http, scorer=load_scorer(config.sentiment), hooks=alerting, env=GOOGLE_ENV.get
        )
        pipeline.load()
        await pipeline.start()
        await pipeline.poll("resto/reviews")
        await pipeline.poll("resto/places")
        clock.advance(86_400)  # the next day the listing's rating fell, and a new review appeared
        places.places[PLACE_ID] = {
            "id": PLACE_ID,
            "rating": 4.1,
            "userRatingCount": 121,
            "reviews": [place_review(PLACE_ID, 7, 2, "Bien mais sans plus", when=later(60 * 24))],
        }
        await pipeline.poll("resto/places", force=True)
        await pipeline.poll("resto/places", force=True)  # same answer again: nothing new
        await pipeline.stop()

    with read_conn(engine) as conn:
        rows = {r.external_id: r for r in conn.execute(select(hits)).all()}
        opened = conn.execute(select(incidents)).all()
        figures = sorted((r.source_key, r.metric, r.day.isoformat(), r.value) for r in conn.execute(select(audience)))
    engine.dispose()
    assert rows["r1"].sentiment_label == "neg" and "1/5 stars" in rows["r1"].sentiment_reasons
    assert rows["r2"].sentiment_label != "neg" and rows["r1"].extra["rating"] == "1"
    assert rows[f"places/{PLACE_ID}/reviews/R7"].sentiment_label == "neg"
    assert len(rows) == 3
    assert ("resto/places", "rating", "2026-11-21", 4.1) in figures and (
        "resto/reviews",
        "rating",
        "2026-11-20",
        4.4,
    ) in figures
    audience_incidents = [i for i in opened if i.cause == "audience"]
    assert len(audience_incidents) == 1
    assert audience_incidents[0].subject == "resto/places:rating" and audience_incidents[0].urgency == "low"
    assert "rating 4.4 -> 4.1" in audience_incidents[0].reasons[0]
