"""One language at a time: the same commands in French and in English, and no fragment of the other
language in either (click's own messages, errors made by the network layer, config problems, health)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from veille.cli import cli
from veille.store.engine import make_engine, write_tx
from veille.store.migrate import upgrade
from veille.store.schema import clients, sources

# Words that only the other language would print; the fixture data below avoids them (and accents).
ENGLISH = re.compile(
    r"\b(the|is|not|and|with|failed|lookup|unhealthy|healthy|problems?|never|ago|usage|this|exit|unknown|"
    r"yet|must|write|running|found|refused|network|commands|valid|schema)\b",
    re.IGNORECASE,
)
FRENCH = re.compile(
    r"[éèêàâçùûôî]|\b(le|la|les|des|du|une|est|pas|aucun|pour|avec|dans|depuis|jamais|erreur|utilisation|"
    r"commandes|affiche|inconnue?|ligne)\b",
    re.IGNORECASE,
)
OTHER = {"fr": ENGLISH, "en": FRENCH}


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_HOME", "VEILLE_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    (tmp_path / "config.toml").write_text(
        f"""
[database]
url = "{url}"
[[clients]]
id = "resto"
keywords = ["pizza"]
[[clients.sources]]
kind = "rss"
url = "http://10.0.0.1/feed.xml"
[[clients.sources]]
kind = "mastodon"
instances = ["https://mastodon.example"]
search = ["pizza"]
token_env = "VEILLE_TEST_MASTODON_TOKEN_UNSET"
""",
        encoding="utf-8",
    )
    (tmp_path / "broken.toml").write_text('timezone = "Mars/Base"\nmystery = 1\n', encoding="utf-8")
    (tmp_path / "empty.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n[[clients]]\nid = "resto"\nkeywords = ["pizza"]\n',
        encoding="utf-8",
    )
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with write_tx(engine) as conn:
        conn.execute(clients.insert().values(id="resto", name="Resto", updated_at=now))
        conn.execute(
            sources.insert().values(
                key="resto/rss-1",
                client_id="resto",
                kind="rss",
                target="https://feed.example.org/rss",
                every_seconds=600,
                enabled=True,
                in_config=True,
                status="backing_off",
                consecutive_errors=3,
                hits_count=0,
                last_error_kind="network",
                last_error_message="DNS lookup failed (https://feed.example.org/rss)",
                note="X budget: 3/10 reads left this month; 1/2 Reddit streams failing (not_found)",
            )
        )
    engine.dispose()
    return tmp_path


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


RUNS: list[tuple[str, ...]] = [
    ("--help",),
    *((*path, "--help") for path in _commands(cli)),
    ("hits", "--bogus"),
    ("hits", "--limit", "0"),
    ("nosuchcommand",),
    ("hits", "--client", "nobody"),
    ("sources",),
    ("sources", "--wide"),
    ("config", "check"),
    ("hits", "--config", "broken.toml"),
    ("hits", "--config", "empty.toml"),
    ("health",),
    ("alerts",),
    ("status",),
    ("purge", "--older-than", "1h"),
    ("purge", "--older-than", "3d", "--dry-run"),
    ("ack", "999"),
    ("mute", "resto", "--for", "soon"),
]


def _outputs(lang: str) -> dict[tuple[str, ...], str]:
    runner = CliRunner()
    return {args: runner.invoke(cli, list(args), env={"VEILLE_LANG": lang}).output for args in RUNS}


def test_each_language_speaks_alone(place: Path) -> None:
    mixed = []
    for lang in ("fr", "en"):
        for args, output in _outputs(lang).items():
            assert output.strip(), args
            fragment = OTHER[lang].search(output)
            if fragment is not None:
                mixed.append(f"{lang} `veille {' '.join(args)}` shows {fragment[0]!r}:\n{output}")
    assert not mixed, "\n".join(mixed)


def test_the_translations_say_the_same_things(place: Path) -> None:
    french, english = _outputs("fr"), _outputs("en")
    pairs = {
        ("hits", "--help"): ("Utilisation : ", "Usage: "),
        ("hits", "--bogus"): ("Erreur : Option inconnue : '--bogus'.", "Error: No such option '--bogus'."),
        ("sources",): ("échec de la résolution DNS (https://feed.example.org/rss)", "DNS lookup failed"),
        ("sources", "--wide"): ("budget X : 3/10 lectures restantes ce mois-ci ; 1/2 flux Reddit", "X budget: 3/10"),
        ("config", "check"): ("variable d'environnement VEILLE_TEST_MASTODON_TOKEN_UNSET", "10.0.0.1"),
        ("hits", "--config", "broken.toml"): ("n'est pas un fuseau horaire connu", "clé inconnue"),
        ("hits", "--config", "empty.toml"): ("lancez `veille db upgrade`", "run `veille db upgrade`"),
        ("health",): ("pas de fichier de santé", "no health file"),
    }
    for args, (in_french, in_english) in pairs.items():
        assert in_french in french[args], french[args]
        assert in_english in (english if args != ("hits", "--config", "broken.toml") else french)[args]


def test_the_config_file_language_is_used_for_help_too(place: Path) -> None:
    (place / "config.toml").write_text('lang = "en"\n' + (place / "config.toml").read_text(), encoding="utf-8")
    assert CliRunner().invoke(cli, ["--help"]).output.startswith("Usage: ")
    assert CliRunner().invoke(cli, ["--help"], env={"VEILLE_LANG": "fr"}).output.startswith("Utilisation : ")


@pytest.fixture
def incident_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from tests.support.alerting import CONFIG, hit
    from veille.config import load_config
    from veille.core.clock import SystemClock
    from veille.runtime.alerting import AlertingService

    for name in ("VEILLE_CONFIG", "VEILLE_DATABASE_URL", "VEILLE_HOME", "VEILLE_LANG"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.toml"
    text = CONFIG.format(channel="console", extra="").replace(
        'timezone = "Europe/Paris"', f'timezone = "Europe/Paris"\n[database]\nurl = "sqlite:///{tmp_path}/v.db"'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(str(path), environ={})
    engine = make_engine(config.database_url)
    upgrade(engine)
    clock = SystemClock()
    with write_tx(engine) as conn:
        AlertingService(config, engine, clock, {}).on_new_hits(conn, [hit(clock)])  # type: ignore[arg-type]
    engine.dispose()
    return str(path)


def test_incidents_read_in_one_language(incident_config: str) -> None:
    """`alerts`, `status` and `ack` on a real incident: states, urgencies and causes are words of the language."""
    runner = CliRunner()
    runs = [("alerts",), ("status",), ("ack", "1", "--contact", "backup"), ("alerts",), ("hits", "--incident", "1")]
    seen = {}
    for lang in ("fr", "en"):
        for args in runs:
            result = runner.invoke(cli, [*args, "--config", incident_config], env={"VEILLE_LANG": lang})
            output = result.output.replace("Gégé", "Gege").replace("gégé", "gege")  # the client's name is data
            seen[lang, args] = output
            fragment = OTHER[lang].search(output)
            assert fragment is None, f"{lang} `veille {' '.join(args)}` shows {fragment[0]!r}:\n{output}"
    # the second `alerts` of each language: taken by backup
    assert "bad buzz" in seen["fr", ("alerts",)] and "pris en charge par backup" in seen["fr", ("alerts",)]
    assert "taken by backup" in seen["en", ("alerts",)] and "high" in seen["en", ("alerts",)]
    assert "Incidents ouverts : 1" in seen["fr", ("status",)]


def test_every_click_module_speaks_through_the_catalogue() -> None:
    """click's modules call the gettext functions they imported: each one is routed to the run's catalogue
    (a click upgrade adding a module would otherwise print English in French runs)."""
    import gettext
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(click.__path__, "click."):
        if info.name == "click._winconsole":
            continue  # Windows only
        module = importlib.import_module(info.name)
        assert getattr(module, "_", None) is not gettext.gettext, info.name
        assert getattr(module, "ngettext", None) is not gettext.ngettext, info.name
