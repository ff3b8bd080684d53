"""The dashboard's access rules, over real HTTP against the real app under uvicorn on loopback, with a
database filled by the real pipeline: anonymous visitors see nothing, a user never sees another
user's client (URL guessing included), actions need the session's CSRF token, outside text is
escaped, failed logins are limited, and the session cookie and headers are set as they must be."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest
from click.testing import CliRunner

from tests.support.web import PASSWORDS, Site, filled_site, serving
from veille.core.incidents import Status
from veille.store import alerts as alert_store
from veille.store import inbox as inbox_store
from veille.store.engine import make_engine, read_conn


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    with filled_site(tmp, f"sqlite:///{tmp / 'veille.db'}", inbox=True) as filled:
        yield filled


@pytest.fixture
def base_url(site: Site) -> Iterator[str]:
    with serving(site.config) as live:  # a fresh app per test: a fresh login limiter
        yield live.url


def incidents_of(site: Site) -> dict[str, list[alert_store.Incident]]:
    engine = make_engine(site.config.database_url)
    with read_conn(engine) as conn:
        found = alert_store.list_incidents(conn, limit=100)
    engine.dispose()
    by_client: dict[str, list[alert_store.Incident]] = {}
    for incident in found:
        by_client.setdefault(incident.client_id, []).append(incident)
    return by_client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: httpx.Client, name: str, password: str | None = None) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"csrf": token, "name": name, "password": password or PASSWORDS[name], "next": "/"}
    )


@contextmanager
def logged_in(base_url: str, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url) as client:
        response = login(client, name)
        assert response.status_code == 303 and response.headers["location"] == "/"
        yield client


PAGES = ["/", "/clients/resto", "/clients/tapis", "/incidents", "/incidents?all=1", "/sources", "/inbox"]


def inbox_of(site: Site) -> dict[str, inbox_store.InboxItem]:
    """Each client's conversation (the page's waiting message), whatever its state."""
    engine = make_engine(site.config.database_url)
    with read_conn(engine) as conn:
        found = {item.client_id: item for item in inbox_store.by_ids(conn, range(1, 100))}
    engine.dispose()
    assert set(found) == {"resto", "tapis"}, "filled_site(inbox=True) opens one conversation per client"
    return found


def test_anonymous_visitors_see_no_page_and_can_do_nothing(site: Site, base_url: str) -> None:
    incident = incidents_of(site)["resto"][0]
    with httpx.Client(base_url=base_url) as anonymous:
        for path in [*PAGES, f"/incidents/{incident.id}"]:
            response = anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
            assert "Gégé" not in response.text and "Tapis" not in response.text
        token = csrf_of(anonymous.get("/login").text)  # even with a valid anonymous token
        for verb in ("ack", "snooze", "mute"):
            response = anonymous.post(f"/incidents/{incident.id}/{verb}", data={"csrf": token})
            assert response.status_code == 403, verb
        waiting = inbox_of(site)["resto"]
        for verb in ("answered", "no-reply"):
            assert anonymous.post(f"/inbox/{waiting.id}/{verb}", data={"csrf": token}).status_code == 403, verb
    assert incidents_of(site)["resto"][0].status is incident.status
    assert inbox_of(site)["resto"].state is inbox_store.State.WAITING


def test_the_inbox_shows_and_closes_only_the_users_own_conversations(site: Site, base_url: str) -> None:
    mine, theirs = inbox_of(site)["resto"], inbox_of(site)["tapis"]
    with logged_in(base_url, "camille") as camille:
        overview = camille.get("/").text
        assert 'href="/inbox?client=resto"' in overview and 'href="/inbox"' in overview  # the count, the nav
        page = camille.get("/inbox").text
        assert "une table pour 4" in page and "Léa B." in page and "commande de tapis" not in page
        assert "commande de tapis" not in camille.get("/inbox?client=tapis").text  # URL guessing
        token = csrf_of(page)
        for verb in ("answered", "no-reply"):
            assert camille.post(f"/inbox/{theirs.id}/{verb}", data={"csrf": token}).status_code == 404, verb
        assert camille.post(f"/inbox/{mine.id}/answered").status_code == 403  # no CSRF token
        assert camille.post(f"/inbox/{mine.id}/answered", data={"csrf": "forged"}).status_code == 403
        assert inbox_of(site)["resto"].state is inbox_store.State.WAITING
        closed = camille.post(f"/inbox/{mine.id}/no-reply", data={"csrf": token, "back": "?client=resto"})
        assert closed.status_code == 303 and closed.headers["location"] == "/inbox?client=resto"
        after = camille.get(closed.headers["location"]).text
        assert "pas besoin de réponse" in after and "une table pour 4" not in after
        again = camille.post(f"/inbox/{mine.id}/answered", data={"csrf": token})  # already closed: told so
        assert "attend plus de réponse" in camille.get(again.headers["location"]).text
    done = inbox_of(site)
    assert done["resto"].state is inbox_store.State.NO_REPLY and done["resto"].closed_by == "web:camille"
    assert done["tapis"].state is inbox_store.State.WAITING


def test_a_user_never_sees_another_users_client(site: Site, base_url: str) -> None:
    theirs = incidents_of(site)["tapis"][0]
    with logged_in(base_url, "camille") as camille:
        overview = camille.get("/")
        assert overview.status_code == 200 and "Chez Gégé" in overview.text
        assert "Tapis Dupont" not in overview.text
        assert camille.get("/clients/resto").status_code == 200
        guessed = camille.get("/clients/tapis")
        assert guessed.status_code == 404 and "secret interne" not in guessed.text
        assert camille.get("/clients/nobody").status_code == 404  # the same answer as an unknown one
        assert camille.get(f"/incidents/{theirs.id}").status_code == 404
        assert "Tapis" not in camille.get("/incidents?all=1").text
        sources = camille.get("/sources").text
        assert "resto/news" in sources and "tapis/news" not in sources
        token = csrf_of(overview.text)
        for verb in ("ack", "snooze", "mute"):
            assert camille.post(f"/incidents/{theirs.id}/{verb}", data={"csrf": token}).status_code == 404
    after = incidents_of(site)["tapis"][0]
    assert after.status is theirs.status and after.acked_by is None
    with logged_in(base_url, "alex") as alex:
        assert alex.get("/clients/tapis").status_code == 200
        assert alex.get("/clients/resto").status_code == 404


def test_an_action_without_the_csrf_token_is_refused(site: Site, base_url: str) -> None:
    incident = incidents_of(site)["resto"][0]
    with logged_in(base_url, "camille") as camille:
        assert camille.post(f"/incidents/{incident.id}/ack").status_code == 403
        assert camille.post(f"/incidents/{incident.id}/ack", data={"csrf": "forged"}).status_code == 403
        with httpx.Client(base_url=base_url) as other:  # another session's token is not this one's
            foreign = csrf_of(other.get("/login").text)
        assert camille.post(f"/incidents/{incident.id}/snooze", data={"csrf": foreign}).status_code == 403
        assert camille.post("/logout").status_code == 403
        assert incidents_of(site)["resto"][0].acked_by is None
        token = csrf_of(camille.get(f"/incidents/{incident.id}").text)
        taken = camille.post(f"/incidents/{incident.id}/ack", data={"csrf": token})
        assert taken.status_code == 303
        page = camille.get(taken.headers["location"])
        assert "Vous avez pris cet incident" in page.text
    after = incidents_of(site)["resto"][0]
    assert after.status is Status.ACKED and after.acked_by == "camille"
    engine = make_engine(site.config.database_url)
    with read_conn(engine) as conn:
        events = alert_store.events_for(conn, [incident.id])
    engine.dispose()
    assert any(e.kind == "ack" and e.actor == "web:camille" for e in events)  # recorded as the bot's are


def test_markup_in_a_post_is_shown_as_text(base_url: str) -> None:
    with logged_in(base_url, "camille") as camille:
        page = camille.get("/clients/resto", params={"q": "pwned"}).text
    assert "&lt;script&gt;alert(" in page
    assert "<script>" not in page and "<b>gras" not in page
    assert "javascript:" not in page  # a link that is not http(s) is not a link


def test_failed_logins_are_limited_per_name_and_address(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as attacker:
        for _ in range(3):  # [web] login_attempts = 3 in the test config
            assert login(attacker, "camille", "wrong-password").status_code == 401
        blocked = login(attacker, "camille", "wrong-password")
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        # the right password does not get through either while the name is blocked
        assert login(attacker, "camille").status_code == 429
        # and the address is blocked for other names too
        assert login(attacker, "alex").status_code == 429


def test_session_cookie_flags_and_security_headers(site: Site) -> None:
    secure = replace(site.config, web=replace(site.config.web, public_url="https://veille.example.org"))
    for config, expect_secure in ((site.config, False), (secure, True)):
        with serving(config) as live, httpx.Client(base_url=live.url) as client:
            response = login(client, "camille")
            cookie = response.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            assert ("secure" in cookie.split("; ")) is expect_secure
            for path in ["/", "/login", "/clients/nobody", "/static/style.css"]:
                headers = client.get(path).headers
                csp = headers["content-security-policy"]
                assert "default-src 'none'" in csp and "script-src" not in csp  # no script may run at all
                assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
                assert ("strict-transport-security" in headers) is expect_secure


def test_login_never_redirects_to_another_site(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        token = csrf_of(client.get("/login").text)
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            response = client.post(
                "/login", data={"csrf": token, "name": "camille", "password": PASSWORDS["camille"], "next": target}
            )
            assert response.headers["location"] == "/", target
            client.cookies.clear()
            token = csrf_of(client.get("/login").text)


def test_a_new_password_ends_the_old_sessions(site: Site, base_url: str) -> None:
    from veille.cli import cli

    def passwd(password: str) -> None:
        changed = CliRunner().invoke(
            cli, ["web", "passwd", "alex", "--config", str(site.config_path)], input=f"{password}\n{password}\n"
        )
        assert changed.exit_code == 0, changed.output

    with logged_in(base_url, "alex") as alex:
        assert alex.get("/clients/tapis").status_code == 200
        passwd("another-long-password")
        assert alex.get("/clients/tapis").status_code == 303
    passwd(PASSWORDS["alex"])


def test_an_incident_shows_its_deliveries_and_history_with_outside_text_escaped(site: Site, base_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from veille.store.engine import write_tx
    from veille.store.schema import outbox

    incident = incidents_of(site)["resto"][0]
    engine = make_engine(site.config.database_url)
    with write_tx(engine) as conn:
        row = alert_store.enqueue(
            conn,
            incident_id=incident.id,
            client_id="resto",
            contact="camille",
            channel="console",
            address="camille",
            kind="notify",
            urgency="high",
            silent=False,
            payload={},
            now=datetime.now(UTC),
        )
        conn.execute(update(outbox).where(outbox.c.id == row).values(last_error="<img src=x onerror=alert(1)>"))
    engine.dispose()
    with logged_in(base_url, "camille") as camille:
        page = camille.get(f"/incidents/{incident.id}").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    assert "en attente" in page  # the delivery's state, in words
    assert "ouvert" in page  # the history: the incident was opened
    summarized = next(i for i in incidents_of(site)["resto"] if i.summary is not None)
    with logged_in(base_url, "camille") as camille:
        page = camille.get(f"/incidents/{summarized.id}").text
    assert "En bref" in page and "auteurs" in page  # its summary (issue 16), in the alert's words


def test_stored_errors_and_notes_are_shown_in_the_page_language(site: Site, base_url: str) -> None:
    """Source errors and notes are stored in English (N_ templates): the French page says them in French."""
    from sqlalchemy import update

    from veille.store.engine import write_tx
    from veille.store.schema import sources

    engine = make_engine(site.config.database_url)
    with write_tx(engine) as conn:
        conn.execute(
            update(sources)
            .where(sources.c.key == "resto/news")
            .values(
                last_error_kind="network",
                last_error_message="DNS lookup failed (https://news.example.org/rss)",
                note="X budget: 3/10 reads left this month",
            )
        )
    engine.dispose()
    with logged_in(base_url, "camille") as camille:
        page = camille.get("/sources").text
    assert "réseau: échec de la résolution DNS (https://news.example.org/rss)" in page
    assert "budget X : 3/10 lectures restantes ce mois-ci" in page
    assert "DNS lookup failed" not in page and "reads left" not in page
