"""The health file the daemon rewrites every few seconds, and the check `veille health` runs on it.

Docker's HEALTHCHECK runs `veille health`: it fails when the scheduler has stalled (the file has not
been refreshed within twice the heartbeat), when storage writes fail, or when the daemon says so.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veille.core.paths import sqlite_path

if TYPE_CHECKING:
    from veille.config import Config

HEARTBEAT_SECONDS = 10.0


@dataclass(slots=True)
class Health:
    pid: int
    updated_at: str  # ISO, UTC
    storage_ok: bool = True
    sources: int = 0
    failing_sources: int = 0
    problems: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


def write_health(path: Path, health: Health) -> None:
    """Atomic replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".health-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(health), handle)
    os.replace(tmp, path)


def check_health(path: Path, now: datetime, *, max_age: float = 2 * HEARTBEAT_SECONDS + 5) -> list[str]:
    """Problems that make the daemon unhealthy (empty list: healthy)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"no health file at {path}: is the daemon running?"]
    except (OSError, ValueError) as exc:
        return [f"unreadable health file {path}: {exc}"]
    problems = list(data.get("problems") or [])
    age = (now - datetime.fromisoformat(data["updated_at"])).total_seconds()
    if age > max_age:
        problems.append(f"scheduler stalled: last heartbeat {age:.0f}s ago")
    if not data.get("storage_ok", True):
        problems.append("database writes are failing")
    return problems


def health_path(config: Config) -> Path:
    if config.daemon.health_file:
        return Path(config.daemon.health_file)
    db = sqlite_path(config.database_url)
    return (db.parent if db else Path(".")) / "veille-health.json"


OLDEST_PENDING_ALERT = 15 * 60.0  # seconds: an alert stuck longer than this turns health red (J3)


def alerting_health(report: dict[str, Any]) -> dict[str, Any]:
    age = float(report.get("oldest_pending_seconds") or 0.0)
    if age > OLDEST_PENDING_ALERT:
        report["problems"] = [f"oldest pending alert is {age / 60:.0f} min old"]
    return report


def telegram_health(status: dict[str, Any]) -> dict[str, Any]:
    problems = [] if status.get("auth_ok", True) else ["telegram: the bot token was rejected"]
    return {"telegram": status, "problems": problems}
