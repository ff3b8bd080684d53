"""The layout's import rules, read from the code itself (AST over `veille/`, imports inside functions
included): each folder is one part and the arrows point down, so a newcomer knows what a part may use.

    core                      leaves: value types, errors, clock, wording, helpers; imports nothing of veille
    net, store, alerting,     net, store, alerting and scoring import only core; sources imports core and net;
    scoring, sources, notify  notify imports core and store (the Telegram notifier keeps its routes)
    config                    builds every part's settings: core, net, alerting, scoring, notify, sources
    reports                   core, store
    runtime                   wires everything (the only part that joins store and a pure part)
    web                       the dashboard: anything but cli (reads store, acts through runtime)
    cli                       the commands: anything
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "veille"

ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "net": frozenset({"core"}),
    "store": frozenset({"core"}),
    "alerting": frozenset({"core"}),
    "scoring": frozenset({"core"}),
    "sources": frozenset({"core", "net"}),
    "notify": frozenset({"core", "store"}),
    "config": frozenset({"core", "net", "alerting", "scoring", "notify", "sources"}),
    "reports": frozenset({"core", "store"}),
    "runtime": frozenset({"core", "net", "store", "alerting", "scoring", "sources", "notify", "config", "reports"}),
    "web": frozenset(
        {"core", "net", "store", "alerting", "scoring", "sources", "notify", "config", "reports", "runtime"}
    ),
    "cli": frozenset(
        {"core", "net", "store", "alerting", "scoring", "sources", "notify", "config", "reports", "runtime", "web"}
    ),
    # the package's own entry points
    "__init__": frozenset({"core"}),
    "__main__": frozenset({"cli"}),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """Every veille module `source` imports, at any depth (functions, TYPE_CHECKING blocks included)."""
    known_set = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "veille")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "veille":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known_set else target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", files)
    return graph


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rule_breaks(graph: Mapping[str, set[str]]) -> list[str]:
    breaks = []
    for module, targets in sorted(graph.items()):
        part = part_of(module)
        allowed = ALLOWED.get(part)
        if allowed is None:
            breaks.append(f"{module}: the folder '{part}' is not in the layout (add it to ALLOWED with its rules)")
            continue
        for target in sorted(targets):
            other = part_of(target)
            if other != part and other not in allowed:
                breaks.append(f"{module} imports {target}: '{part}' may import only {sorted(allowed)}")
    return breaks


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    edges = defaultdict(set, {m: {t for t in ts if t in graph} for m, ts in graph.items()})

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def without_parent_edges(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """A package's `__init__` re-exporting its modules is not a circle with them."""
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_every_import_points_down() -> None:
    assert rule_breaks(import_graph()) == []


def test_no_import_circle() -> None:
    assert cycles(without_parent_edges(import_graph())) == []


def kind_literals(source: str, kinds: Iterable[str]) -> list[str]:
    """String literals in code (docstrings aside) that spell a source kind."""
    tree = ast.parse(source)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    wanted = set(kinds)
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in wanted and id(node) not in docstrings
    ]


def test_nothing_outside_sources_names_a_source_kind() -> None:
    """Adding a network is one module plus a registry entry: the runtime and the CLI ask the driver."""
    from veille.sources.registry import DRIVERS

    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.is_relative_to(ROOT / "sources"):
            continue
        found = kind_literals(path.read_text(encoding="utf-8"), DRIVERS)
        offenders += [f"{path.relative_to(ROOT)}: {kind!r}" for kind in found]
    assert offenders == []


def test_a_kind_named_outside_sources_is_found() -> None:
    code = '"""Docstrings may say "rss"."""\nif kind == "rss":\n    pass\n'
    assert kind_literals(code, {"rss"}) == ["rss"]


# The rules themselves are tested on small trees, so that a broken checker cannot pass silently.


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    package = root / "veille"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"core/a.py": "from veille.store import b\n", "store/b.py": ""}, "veille.core.a imports veille.store.b"),
        (
            {"store/a.py": "def f():\n    from veille.alerting.x import y\n", "alerting/x.py": "y = 1\n"},
            "veille.store.a imports veille.alerting.x",
        ),
        (
            {
                "alerting/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import veille.runtime.d\n",
                "runtime/d.py": "",
            },
            "veille.alerting.a imports veille.runtime.d",
        ),
        (
            {"scoring/a.py": "from ..store import engine\n", "store/engine.py": ""},
            "veille.scoring.a imports veille.store.engine",
        ),
        ({"webhooks/a.py": ""}, "the folder 'webhooks' is not in the layout"),
        ({"web/a.py": "from veille.cli import main\n", "cli/__init__.py": ""}, "veille.web.a imports veille.cli"),
    ],
)
def test_a_bad_import_is_reported(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    package = write_tree(tmp_path, {"__init__.py": "", **files})
    breaks = rule_breaks(import_graph(package))
    assert any(expected in line for line in breaks), breaks


def test_a_good_import_is_not_reported(tmp_path: Path) -> None:
    package = write_tree(tmp_path, {"__init__.py": "", "store/a.py": "from veille.core import m\n", "core/m.py": ""})
    assert rule_breaks(import_graph(package)) == []


def test_a_circle_is_reported(tmp_path: Path) -> None:
    package = write_tree(
        tmp_path,
        {
            "__init__.py": "",
            "scoring/loader.py": "def f():\n    from veille.scoring import transformer\n",
            "scoring/transformer.py": "from veille.scoring.loader import f\n",
        },
    )
    assert cycles(without_parent_edges(import_graph(package))) == [
        ["veille.scoring.loader", "veille.scoring.transformer"]
    ]
