"""Every config key veille reads is documented in the example config.toml (K3, datasette's test_docs)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.paths import REPO_ROOT
from veille.config import load_config
from veille.core.configreader import Reader

ROOT = REPO_ROOT


def test_every_key_read_appears_in_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    read: set[tuple[str, str]] = set()
    original = Reader._get

    def recording(self: Reader, key: str, *args: Any, **kwargs: Any) -> Any:
        read.add((self.path, key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(Reader, "_get", recording)
    load_config(str(ROOT / "config.toml"), environ={})
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*#?\s*([a-z_][a-z0-9_]*)\s*=", text, re.MULTILINE))
    documented |= set(re.findall(r"^\s*#?\s*\[+([a-z_.]+)\]+", text, re.MULTILINE))
    documented |= {part for name in list(documented) for part in name.split(".")}
    missing = sorted({f"{path}.{key}" if path else key for path, key in read if key not in documented})
    assert not missing, f"keys read but not documented in config.toml: {missing}"
