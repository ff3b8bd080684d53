"""Config validation: every problem at once, with dotted paths and fixes (RELIABILITY I1-I3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT
from veille.config import load_config, parse_config
from veille.core.errors import ConfigError

ROOT = REPO_ROOT

GOOD = """
[database]
url = "sqlite:///x.db"

[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé", "-recrutement"]

  [[clients.sources]]
  kind = "rss"
  url = "https://example.org/feed.xml"
  every = "10m"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="bad.toml", environ={})
    return [str(p) for p in info.value.problems]


def test_example_config_is_valid() -> None:
    config = load_config(str(ROOT / "config.toml"), environ={})
    assert {c.id for c in config.clients} == {"resto", "tapis", "osteo", "appli"}
    names = {c.id: c.name for c in config.clients}
    assert names["resto"] == "Chez Gégé" and names["tapis"] == "Tapis Royal"
    assert names["osteo"] == "Cabinet Ostéo Lemoine"
    for client in config.clients:
        kinds = {s.kind for s in client.sources}
        assert "rss" in kinds
        assert any(k.startswith("#") for k in client.keywords) and any(k.startswith("@") for k in client.keywords)
        assert any(k.startswith("-") or " -" in k for k in client.keywords)


def test_good_config_parses() -> None:
    config = parse_config(GOOD, environ={})
    source = config.sources[0]
    assert source.key.startswith("resto/rss-")
    assert source.every.total_seconds() == 600
    assert config.database_url == "sqlite:///x.db"


def test_every_problem_reported_at_once_with_paths() -> None:
    text = """
lang = "de"
colour = "blue"

[http]
timeout = 30
allow_private_addresses = "yes"

[[clients]]
id = "resto"
keywords = ["chez gégé"]
  [[clients.sources]]
  kind = "rss"
  url = "ftp://example.org/feed"
  every = "10 minutes"
  [[clients.sources]]
  kind = "carrier-pigeon"

[[clients]]
id = "resto"
keywords = []
"""
    found = problems_of(text)
    joined = "\n".join(found)
    assert "lang: 'de' is not one of: en, fr" in joined
    assert "colour: unknown key" in joined
    assert "http.timeout: must be a duration string" in joined
    assert "http.allow_private_addresses: must be true or false" in joined
    assert "clients[0].sources[0].url: scheme must be http or https" in joined
    assert "clients[0].sources[0].every" in joined
    assert "clients[0].sources[1].kind: 'carrier-pigeon' is not one of" in joined
    assert "clients[1].id: duplicate client id 'resto'" in joined
    assert "clients[1].keywords: is empty" in joined
    assert len(found) >= 9
    assert all("(" in p for p in found), "every problem says how to fix it"


def test_source_unknown_key_and_url_with_credentials() -> None:
    text = GOOD.replace('every = "10m"', 'every = "10m"\n  urll = "x"').replace(
        "https://example.org/feed.xml", "https://user:pw@example.org/feed.xml"
    )
    joined = "\n".join(problems_of(text))
    assert "clients[0].sources[0].urll: unknown key" in joined
    assert "must not contain a user name or password" in joined
    assert "pw" not in joined.replace("password", "")


def test_secret_written_in_file_is_refused_without_echoing_it() -> None:
    text = GOOD + '\n[telegram]\ntoken_env = "123456:AAE-secret-token-value"\n'
    found = "\n".join(problems_of(text))
    assert "telegram.token_env: must name an environment variable" in found
    assert "AAE-secret-token-value" not in found


def test_database_password_refused() -> None:
    text = GOOD.replace("sqlite:///x.db", "postgresql+psycopg://veille:hunter22@db/veille")
    found = "\n".join(problems_of(text))
    assert "database.url: must not contain a password" in found and "hunter22" not in found


def test_toml_syntax_error_names_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[[clients]\nid=", file="broken.toml", environ={})
    assert "broken.toml" in str(info.value)


def test_environment_overrides_database_url(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_config(None, environ={"VEILLE_CONFIG": str(path), "VEILLE_DATABASE_URL": "sqlite:///other.db"})
    assert config.database_url == "sqlite:///other.db"
    assert config.path == str(path)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "VEILLE_LANG": "en", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "veille", *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


def test_config_check_exits_2_listing_all_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('lang = 3\n[[clients]]\nid = "A B"\nkeywords = ["x"]\n', encoding="utf-8")
    result = _cli("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert "lang: must be a string" in result.stderr
    assert "clients[0].id" in result.stderr
    assert str(path) in result.stderr


def test_config_check_names_missing_secret_and_redacts(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD + '\n[telegram]\ntoken_env = "VEILLE_TEST_TG_TOKEN"\n', encoding="utf-8")
    secret = "987654:ZZsecret-value-never-shown"
    result = _cli("config", "check", "--show", "--config", str(path), env={"VEILLE_TEST_TG_TOKEN": secret})
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert "VEILLE_TEST_TG_TOKEN (=***)" in result.stdout
    result = _cli("config", "check", "--config", str(path))
    assert "VEILLE_TEST_TG_TOKEN" in result.stdout  # named, with what happens without it


def test_config_check_refuses_private_address_feed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD.replace("https://example.org/feed.xml", "http://0177.0.0.1/feed"), encoding="utf-8")
    result = _cli("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert "allow_private_addresses" in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://veille@db/veille", "only SQLite and PostgreSQL"),
        ("postgresql+asyncpg://veille@db/veille", "only SQLite and PostgreSQL"),
        ("postgresql://veille@db:port/veille", "is not a database URL"),
    ],
)
def test_database_url_veille_cannot_use(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[database]\nurl = "{url}"\n', environ={})
    assert any(p.path == "database.url" and says in p.message for p in caught.value.problems)


def test_web_section_defaults_values_and_problems() -> None:
    default = parse_config(GOOD, environ={}).web
    assert (default.enabled, default.host, default.port, default.secure_cookies) == (False, "127.0.0.1", 8080, False)
    web = parse_config(
        GOOD + '[web]\nenabled = true\nport = 9000\npublic_url = "https://veille.example.org/"\n', environ={}
    ).web
    assert web.enabled and web.port == 9000 and web.public_url == "https://veille.example.org"
    assert web.secure_cookies
    problems = problems_of(GOOD + '[web]\nport = 0\npublic_url = "ftp://x"\nsecret_env = "abc def"\ntypo = 1\n')
    assert any(p.startswith("web.port") for p in problems)
    assert any(p.startswith("web.public_url") for p in problems)
    assert any(p.startswith("web.secret_env") for p in problems)
    assert any("typo" in p for p in problems)
