"""The dashboard in a real browser: headless Chromium (Debian's package, installed by scripts/test.sh)
driven by Playwright against the real server on loopback, over a database filled by the real pipeline.
Log in, overview, a client, take an incident (and `veille alerts` agrees), mark a message of the reply
inbox answered (and `veille inbox` agrees), sources, log out; on a
desktop and on a phone's screen. Screenshots of every page are saved for review (path printed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.web import PASSWORDS, Site, filled_site, serving

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no /usr/bin/chromium: scripts/test.sh installs Debian's chromium where apt-get is available",
    ),
]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """Filled before the browser starts (Playwright's sync API keeps an event loop in this thread)."""
    with filled_site(tmp_path, f"sqlite:///{tmp_path / 'veille.db'}", inbox=True) as filled:
        yield filled


@pytest.fixture
def browser(site: Site) -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


def test_a_day_at_the_desk_and_on_the_phone(site: Site, browser: object, tmp_path: Path) -> None:
    from veille.cli import cli

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    with serving(site.config) as live:
        context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="fr-FR")  # type: ignore[attr-defined]
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

        page.goto(f"{live.url}/clients/resto")  # a deep link: login first, then back here
        assert "/login" in page.url
        page.screenshot(path=shots / "01-login.png", full_page=True)
        page.fill("input[name=name]", "camille")
        page.fill("input[name=password]", PASSWORDS["camille"])
        page.click("form[action='/login'] button[type=submit]")
        assert page.url.endswith("/clients/resto")

        page.goto(f"{live.url}/")
        assert page.locator(".card h2").all_inner_texts() == ["Chez Gégé"]  # camille sees only her client
        page.screenshot(path=shots / "02-overview.png", full_page=True)

        page.click(".card h2 a")
        assert page.url.endswith("/clients/resto")
        assert page.locator("svg.chart rect").count() > 0
        assert "<script>alert('pwned')</script>" in page.locator("ul.hits").inner_text()  # shown as text
        page.screenshot(path=shots / "03-client.png", full_page=True)
        page.select_option("select[name=sentiment]", "neg")
        page.click("form.filters button")
        assert "sentiment=neg" in page.url
        page.screenshot(path=shots / "04-client-negative.png", full_page=True)

        page.click("nav a[href='/incidents']")
        page.screenshot(path=shots / "05-incidents.png", full_page=True)
        page.click("table.list tbody tr >> nth=0 >> a >> nth=0")
        incident_id = int(page.url.rsplit("/", 1)[1])
        page.click("form[action$='/ack'] button")
        assert "Vous avez pris cet incident" in page.locator(".flash").inner_text()
        assert "camille" in page.locator(".facts").inner_text()
        page.screenshot(path=shots / "06-incident-taken.png", full_page=True)

        listed = CliRunner().invoke(cli, ["alerts", "--config", str(site.config_path), "--format", "json"])
        assert listed.exit_code == 0, listed.output
        taken = next(i for i in json.loads(listed.output) if i["id"] == incident_id)
        assert taken["status"] == "acked" and taken["acks"][0].startswith("ack camille")

        page.goto(f"{live.url}/")
        page.click(".card a.waiting")  # the overview's "waiting for a reply" count
        assert page.url.endswith("/inbox?client=resto")
        row = page.locator("table.inbox tbody tr")
        assert row.count() == 1 and "une table pour 4" in row.inner_text() and "Léa B." in row.inner_text()
        item_id = int(row.locator("td").first.inner_text())
        page.screenshot(path=shots / "07-inbox.png", full_page=True)
        row.locator("form[action$='/answered'] button").click()
        assert f"#{item_id} marquée comme répondue." in page.locator(".flash").inner_text()
        assert page.locator("table.inbox").count() == 0
        page.screenshot(path=shots / "08-inbox-answered.png", full_page=True)
        waiting = CliRunner().invoke(cli, ["inbox", "--config", str(site.config_path), "--format", "json"])
        assert waiting.exit_code == 0, waiting.output
        assert [i["client"] for i in json.loads(waiting.output)] == ["tapis"]  # the CLI agrees: resto's is closed

        page.click("nav a[href='/sources']")
        assert "resto/broken" in page.locator("table.list").inner_text()
        page.screenshot(path=shots / "09-sources.png", full_page=True)

        page.click("footer button")  # English
        assert page.locator("h1").inner_text() == "Sources"
        assert "Last success" in page.locator("table.list thead").inner_text()
        page.screenshot(path=shots / "10-sources-english.png", full_page=True)
        page.click("footer button")  # back to French

        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
        phone.add_cookies(context.cookies())
        small = phone.new_page()
        for path, name in (("/", "11-phone-overview"), (f"/incidents/{incident_id}", "12-phone-incident")):
            small.goto(f"{live.url}{path}")
            assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
            small.screenshot(path=shots / f"{name}.png", full_page=True)
        phone.close()

        page.click("header form button")  # log out
        assert "/login" in page.url
        page.goto(f"{live.url}/")
        assert "/login" in page.url
        page.screenshot(path=shots / "13-logged-out.png", full_page=True)
        context.close()
    assert [p for p in problems if "favicon" not in p and "404" not in p] == []
    assert len(list(shots.glob("*.png"))) == 13
    kept = Path(shutil.copytree(shots, tmp_path.parent / "veille-web-screenshots", dirs_exist_ok=True))
    print(f"copied to: {kept}")
