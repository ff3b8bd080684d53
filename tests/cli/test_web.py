"""`veille web passwd|users|remove`: users in the database, argon2 hashes, clear refusals."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.support.web import CONFIG
from veille.cli import cli
from veille.store.engine import make_engine, read_conn
from veille.store.migrate import upgrade
from veille.store.users import get_user


def make_config(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    path = tmp_path / "config.toml"
    feeds = {"resto_feed": "https://example.org/r.xml", "tapis_feed": "https://example.org/t.xml"}
    no_own = {"resto_own": "", "tapis_own": ""}  # no own-channel sources
    path.write_text(
        CONFIG.format(db_url=url, broken_feed="https://example.org/b.xml", **no_own, **feeds), encoding="utf-8"
    )
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return str(path)


def run(*args: str, stdin: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["web", *args], input=stdin)
    return result.exit_code, result.output


def test_passwd_creates_a_user_scoped_like_its_contact_and_hashes_the_password(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    code, output = run("passwd", "camille", "--config", config, stdin="a-long-password\na-long-password\n")
    assert code == 0 and "resto" in output and "tapis" not in output
    code, output = run("passwd", "intern", "--config", config, "--clients", "tapis", stdin="pw-0123456789\n" * 2)
    assert code == 0 and "tapis" in output
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    with read_conn(engine) as conn:
        user = get_user(conn, "camille")
    engine.dispose()
    assert user is not None and user.password_hash.startswith("$argon2") and "a-long-password" not in user.password_hash
    code, output = run("users", "--config", config)
    assert code == 0 and "camille: resto" in output and "intern: tapis" in output
    code, output = run("remove", "intern", "--config", config)
    assert code == 0 and "intern" not in run("users", "--config", config)[1]


def test_passwd_refuses_short_passwords_unknown_clients_and_mismatches(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    code, output = run("passwd", "camille", "--config", config, stdin="short\nshort\n")
    assert code == 2 and "10" in output
    code, output = run("passwd", "camille", "--config", config, "--clients", "nobody", stdin="")
    assert code == 2 and "nobody" in output
    code, output = run("passwd", "camille", "--config", config, stdin="first-password\nsecond-password\n" * 1)
    assert code != 0
    code, output = run("remove", "ghost", "--config", config)
    assert code == 1 and "ghost" in output
    assert "Traceback" not in output
