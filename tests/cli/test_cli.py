"""CLI: deterministic output in three formats, clear errors, read-only under a busy writer (K1, K2, K3)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support.paths import REPO_ROOT
from tests.support.seed import add_rss_source
from veille.cli import cli
from veille.cli.wording import configured_lang
from veille.core.matching import MatchResult
from veille.core.models import Item, SentimentLabel, SentimentResult
from veille.store.engine import make_engine, write_tx
from veille.store.hits import MatchedItem, SourceRef, store_items
from veille.store.migrate import upgrade
from veille.store.schema import clients, sources

ROOT = REPO_ROOT


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.setenv("VEILLE_LANG", "en")
    monkeypatch.delenv("VEILLE_CONFIG", raising=False)
    monkeypatch.delenv("VEILLE_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[database]
url = "{url}"
[[clients]]
id = "resto"
name = "Chez Gégé"
keywords = ["chez gégé"]
[[clients]]
id = "tapis"
keywords = ["tapis royal"]
""",
        encoding="utf-8",
    )
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with write_tx(engine) as conn:
        conn.execute(
            clients.insert(),
            [
                {"id": "resto", "name": "Chez Gégé", "updated_at": now},
                {"id": "tapis", "name": "Tapis Royal", "updated_at": now},
            ],
        )
        ref = add_rss_source(conn)
        match = MatchResult(True, False, ("chez gege",))
        store_items(
            conn,
            ref,
            [
                MatchedItem(Item("old", "Chez Gégé il y a longtemps", title="Ancien"), match),
            ],
            now - timedelta(days=3),
        )
        store_items(
            conn,
            ref,
            [
                MatchedItem(
                    Item(
                        "a",
                        "Chez Gégé: \x1b[31mrouge\x1b[0m [bold]gras[/bold]",
                        title="Avis A",
                        author="alice",
                        url="https://example.org/a",
                    ),
                    match,
                ),
                MatchedItem(Item("b", "Chez Gégé, pizza froide, 100% déçu", title="Avis B", author="bob"), match),
            ],
            now - timedelta(hours=1),
        )
    engine.dispose()
    return config, url


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_hits_json_is_deterministic_and_filtered(setup: tuple[Path, str]) -> None:
    config, _ = setup
    first = invoke("hits", "--config", str(config), "--client", "resto", "--since", "24h", "--format", "json")
    second = invoke("hits", "--config", str(config), "--client", "resto", "--since", "24h", "--format", "json")
    assert first.exit_code == 0 and first.output == second.output
    rows = json.loads(first.output)
    assert [r["external_id"] if "external_id" in r else r["title"] for r in rows] == ["Avis B", "Avis A"]
    assert rows[0]["client_id"] == "resto"


def test_hits_csv_and_search(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = invoke("hits", "--config", str(config), "--search", "100%", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["title"] for r in rows] == ["Avis B"]


def _store(url: str, *items: Item) -> None:
    """More hits on the fixture's one source (resto/rss-1)."""
    engine = make_engine(url)
    with write_tx(engine) as conn:
        sid = conn.execute(sources.select().where(sources.c.key == "resto/rss-1")).one().id
        ref = SourceRef(sid, "resto/rss-1", "resto", "rss")
        match = MatchResult(True, False, ("chez gege",))
        store_items(conn, ref, [MatchedItem(item, match) for item in items], datetime.now(UTC))
    engine.dispose()


def test_hits_lang_filters_and_shows_unscored_posts(setup: tuple[Path, str]) -> None:
    config, url = setup
    engine = make_engine(url)
    with write_tx(engine) as conn:
        sid = conn.execute(sources.select().where(sources.c.key == "resto/rss-1")).one().id
        ref = SourceRef(sid, "resto/rss-1", "resto", "rss")
        match = MatchResult(True, False, ("chez gege",))
        verdicts = [SentimentResult.unscored("de"), SentimentResult(SentimentLabel.POS, 0.7, "fr")]
        texts = ["Chez Gégé: das Essen war kalt", "Chez Gégé, super accueil"]
        store_items(
            conn,
            ref,
            [MatchedItem(Item(f"l{i}", t), match, v) for i, (t, v) in enumerate(zip(texts, verdicts, strict=True))],
            datetime.now(UTC),
        )
    engine.dispose()
    german = invoke("hits", "--config", str(config), "--lang", "de", "--format", "json")
    assert [(r["text"], r["sentiment_lang"], r["sentiment_label"]) for r in json.loads(german.output)] == [
        ("Chez Gégé: das Essen war kalt", "de", None)
    ]
    french = invoke("hits", "--config", str(config), "--lang", "FR", "--format", "csv")
    assert [r["text"] for r in csv.DictReader(io.StringIO(french.output))] == ["Chez Gégé, super accueil"]
    table = invoke("hits", "--config", str(config), "--lang", "unscored", "--wide")
    assert "unscored (de)" in table.output and "super accueil" not in table.output
    # Here --lang is the posts' language: the messages stay in English (VEILLE_LANG) with --lang fr.
    assert "No hits." in invoke("hits", "--config", str(config), "--lang", "fr", "--search", "nowhere").output
    for args in (["hits", "--lang", "fr"], ["--log-level", "debug", "hits", "--lang=fr"]):
        assert configured_lang(args) == "en"  # VEILLE_LANG
    assert configured_lang(["report", "--lang", "fr"]) == "fr"  # there --lang is the messages' language
    bad = CliRunner().invoke(cli, ["hits", "--config", str(config), "--lang", "french"])
    assert bad.exit_code == 2 and "write a language code such as fr, en, es, de, or unscored" in bad.output
    assert "Traceback" not in bad.output


def test_hits_csv_never_writes_a_formula(setup: tuple[Path, str]) -> None:
    config, url = setup
    _store(url, Item("f", '=HYPERLINK("http://evil","x") chez gégé', title="=cmd|' /C calc'!A0", author="@SUM(1)"))
    result = invoke("hits", "--config", str(config), "--search", "HYPERLINK", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(result.output)))
    assert row["title"] == "'=cmd|' /C calc'!A0"
    assert row["author"] == "'@SUM(1)"
    assert row["text"].startswith("'=HYPERLINK(")


def test_hits_table_strips_terminal_escapes_and_markup_is_literal(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = invoke("hits", "--config", str(config), "--limit", "5")
    assert result.exit_code == 0
    assert "\x1b" not in result.output
    assert "[bold]gras[/bold]" in result.output


def test_empty_result_exits_0(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = invoke("hits", "--config", str(config), "--client", "tapis", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_unknown_client_is_one_line_error(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = CliRunner().invoke(cli, ["hits", "--config", str(config), "--client", "nope"])
    assert result.exit_code != 0
    assert "unknown client: 'nope'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_since_is_explained(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = CliRunner().invoke(cli, ["hits", "--config", str(config), "--since", "yesterday"])
    assert result.exit_code == 2 and "24h" in result.output


def test_sources_table_and_json(setup: tuple[Path, str]) -> None:
    config, _ = setup
    rows = json.loads(invoke("sources", "--config", str(config), "--format", "json").output)
    assert rows[0]["kind"] == "rss" and rows[0]["hits_count"] == 3
    table = invoke("sources", "--config", str(config)).output
    assert "example.org" in table
    assert json.loads(invoke("sources", "--config", str(config), "--broken", "--format", "json").output) == []


def test_database_not_migrated_says_what_to_run(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "new.db"}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["hits", "--config", str(config)])
    assert result.exit_code == 2 and "veille db upgrade" in result.output


def test_reads_never_wait_for_the_writer(setup: tuple[Path, str]) -> None:
    """A writer holding the write lock does not block or fail `veille hits` (WAL + deferred reads)."""
    config, url = setup
    engine = make_engine(url)
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with write_tx(engine) as conn:
            conn.execute(clients.update().values(name="busy"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(5)
    try:
        started = time.monotonic()
        for _ in range(20):
            result = invoke("hits", "--config", str(config), "--format", "json")
            assert result.exit_code == 0 and "locked" not in result.output
        assert time.monotonic() - started < 20
    finally:
        release.set()
        thread.join()
        engine.dispose()


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, path))
    return found


@pytest.mark.parametrize("path", _all_commands(cli), ids=" ".join)
def test_every_command_has_help_and_is_documented(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    for lang, usage in (("en", "Usage: "), ("fr", "Utilisation : ")):
        monkeypatch.setenv("VEILLE_LANG", lang)
        result = invoke(*path, "--help")
        assert result.exit_code == 0 and result.output.startswith(usage)
    command: click.Command | None = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(click.Context(command), name)
    assert command is not None
    assert command.help, f"`veille {' '.join(path)}` has no help text"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"veille {' '.join(path)}" in readme, f"`veille {' '.join(path)}` is not in the README"


def test_disabled_sources_say_so(setup: tuple[Path, str]) -> None:
    config, url = setup
    engine = make_engine(url)
    with write_tx(engine) as conn:
        conn.execute(
            sources.insert().values(
                key="resto/x-1",
                client_id="resto",
                kind="x",
                target="x: chez gégé",
                every_seconds=600,
                enabled=False,
                in_config=True,
                status="new",
                consecutive_errors=0,
                hits_count=0,
            )
        )
    engine.dispose()
    table = invoke("sources", "--config", str(config)).output
    assert "disabled" in table and "x: chez gégé" in table


def test_hits_of_an_incident(setup: tuple[Path, str]) -> None:
    """The Telegram "…tronqué, voir `veille hits --incident N`" hint leads somewhere real."""
    from veille.store.schema_alerts import incidents

    config, url = setup
    engine = make_engine(url)
    opened = datetime.now(UTC) - timedelta(minutes=30)
    with write_tx(engine) as conn:
        incident_id = conn.execute(
            incidents.insert()
            .values(
                key="resto:buzz",
                client_id="resto",
                cause="buzz",
                subject="",
                status="open",
                urgency="high",
                firing=True,
                opened_at=opened,
                notify_at=opened,
                last_evidence_at=opened,
                title="Bad buzz",
                reasons=[],
                hit_count=2,
                top_hits=[],
                score=0.9,
                version=1,
                notified_version=1,
                notified_contacts=[],
                held_for=[],
                level=0,
                loops=0,
                flaps=0,
                updated_at=opened,
            )
            .returning(incidents.c.id)
        ).scalar_one()
    engine.dispose()
    rows = json.loads(
        invoke("hits", "--config", str(config), "--incident", str(incident_id), "--format", "json").output
    )
    assert sorted(r["title"] for r in rows) == ["Avis A", "Avis B"]  # not the 3-day-old one
    result = CliRunner().invoke(cli, ["hits", "--config", str(config), "--incident", "999"])
    assert result.exit_code != 0 and "unknown incident: 999" in result.output


@pytest.mark.parametrize("command", [("config", "check"), ("run", "--once"), ("run",)], ids=" ".join)
def test_check_and_run_refuse_the_same_file(command: tuple[str, ...], setup: tuple[Path, str]) -> None:
    """A forbidden source address: `config check` refuses the file, and the daemon does not start on it
    (a subprocess with a deadline: a daemon that starts anyway fails the test instead of hanging it)."""
    config, _ = setup
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + '[[clients.sources]]\nkind = "rss"\nid = "local"\nurl = "http://127.0.0.1:9/feed.xml"\n',
        encoding="utf-8",
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "veille", *command, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"veille {' '.join(command)} started on a file that config check refuses")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"{config}: 1 problem:"
    assert lines[1].startswith("  - sources.tapis/local.url:") and "allow_private_addresses" in lines[1]


def test_hits_search_ignores_case_and_accents(setup: tuple[Path, str]) -> None:
    config, _ = setup
    result = invoke("hits", "--config", str(config), "--search", "GEGE", "--all", "--format", "json")
    assert {r["title"] for r in json.loads(result.output)} == {"Ancien", "Avis A", "Avis B"}


def test_hits_and_sources_fit_80_columns(setup: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config, url = setup
    monkeypatch.setenv("COLUMNS", "80")
    long_text = "Chez Gégé " + "la pizza était froide et le service très lent, " * 6
    _store(
        url,
        Item(
            "long",
            long_text,
            title="Un titre d'article",
            url="https://www.example.org/2026/12/03/un-tres-long-chemin-d-article-de-presse-locale.html",
        ),
    )
    for command in ("hits", "sources"):
        result = invoke(command, "--config", str(config))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= 80, result.output
    table = invoke("hits", "--config", str(config)).output
    (row,) = [line for line in table.splitlines() if "Un titre" in line]
    assert "Un titre d'article — C" in row and row.rstrip().endswith("…")  # the title first, cells cut
    assert "example.org/2026/12/0" in row and "https://" not in row and "www." not in row  # the link shortened
    wider = invoke("hits", "--config", str(config), "--client", "resto").output  # one client: no client column
    assert "Un titre d'article — Chez Gég" in wider
    wide = invoke("hits", "--config", str(config), "--wide").output
    assert (
        "https://www.example.org/2026/12/03/un-tres-long-chemin-d-article-de-presse-locale.html"
        in wide.replace("\n", "")
        or "un-tres-long-chemin" in wide
    )


def test_wide_characters_are_counted_by_their_screen_width(
    setup: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emojis and CJK take two columns on a terminal: an 80-column table counts them so, and cuts inside no
    character."""
    from rich.cells import cell_len

    config, url = setup
    monkeypatch.setenv("COLUMNS", "80")
    _store(url, Item("emoji", "Chez Gégé 😡😡😡 " + "寿司が冷たい 🍕 " * 12, title="Pizza 🍕🍕 froide"))
    result = invoke("hits", "--config", str(config))
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "Pizza" in line]
    assert cell_len(row) <= 80 and len(row) < 80 and row.rstrip().endswith("…")
    assert all(cell_len(line) <= 80 for line in result.output.splitlines())


def test_empty_tables_say_so(setup: tuple[Path, str]) -> None:
    config, _ = setup
    assert invoke("hits", "--config", str(config), "--client", "tapis").output.strip() == "No hits."
    assert invoke("sources", "--config", str(config), "--broken").output.strip() == "No failing sources."


def test_report_formats_spelt_out_in_the_cli_match_the_reports() -> None:
    from veille.cli.report import FORMATS
    from veille.reports import FORMATS as REPORT_FORMATS

    assert FORMATS == REPORT_FORMATS


def test_the_cli_builds_its_commands_without_the_heavy_parts() -> None:
    """`veille --help` and the argument parsing of every command import no database, report or network code
    (they are imported by the command that needs them): measured by bench/cli_start.py."""
    code = (
        "import sys, veille.cli; "
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'rich', 'httpx', 'telegram', 'sklearn', 'numpy', "
        "'veille.config', 'veille.store', 'veille.reports', 'veille.runtime') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_command_table_names_what_each_module_registers() -> None:
    """`veille X` imports only X's module, found through COMMANDS: the table must match the modules."""
    import importlib

    from veille.cli import COMMAND_MODULES, COMMANDS

    registered: dict[str, str] = {}
    for module in COMMAND_MODULES:
        group = click.Group()
        importlib.import_module(module).register(group)
        registered.update(dict.fromkeys(group.commands, module))
    assert registered == COMMANDS


def test_a_command_loads_only_its_own_module(setup: tuple[Path, str]) -> None:
    config, _url = setup
    probe = (
        "import sys, runpy; sys.argv = ['veille', 'hits', '--config', sys.argv[1]]\n"
        "try:\n    runpy.run_module('veille', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('veille.cli.')), file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(config)], check=False, capture_output=True, text=True, env=env
    )
    loaded = done.stderr.strip().splitlines()[-1]
    assert "veille.cli.core" in loaded and "veille.cli.report" not in loaded and "veille.cli.web" not in loaded
