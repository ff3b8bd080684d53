"""Imports every module that defines tables, so `metadata` is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

TABLE_MODULES = [
    "veille.store.schema",
    "veille.store.schema_alerts",
    "veille.store.schema_inbox",
    "veille.store.schema_telegram",
    "veille.store.schema_web",
]


def all_metadata() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    from veille.store.schema import metadata

    return metadata
