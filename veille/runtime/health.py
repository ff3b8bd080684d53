"""The health file the daemon rewrites every few seconds, and the check `veille health` runs on it.

Docker's HEALTHCHECK runs `veille health`: it fails when the daemon's process is gone (same host: its
pid no longer exists, or belongs to a process started later), when the scheduler has stalled (the file
has not been refreshed within twice the heartbeat), when storage writes fail, or when the daemon says so.
The file lives beside the SQLite database, or in $VEILLE_HOME (veille.core.paths.data_dir), never in
whatever directory the daemon was started from.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veille.core.i18n import N_
from veille.core.paths import data_dir

if TYPE_CHECKING:
    from veille.config import Config
    from veille.notify.telegram.notifier import TelegramStatus

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
    host: str = ""  # where pid means something
    process_started: float = 0.0  # the process's start time (epoch s): a reused pid is another process


def this_process() -> tuple[str, float]:
    """(host, start time) of the calling process, for Health.host and Health.process_started."""
    import psutil  # here, not at the top: `veille run --once` imports this module and never calls it

    return socket.gethostname(), psutil.Process().create_time()


def _process_gone(data: dict[str, Any]) -> str | None:
    """Why the daemon that wrote the file is not running, when this host can tell (else None)."""
    import psutil

    pid, host = data.get("pid"), data.get("host")
    if not isinstance(pid, int) or not host or host != socket.gethostname():
        return None  # another machine's (or an older veille's) daemon: only the heartbeat's age can tell
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return N_("the daemon is not running (its process {pid} is gone)").format(pid=pid)
    except psutil.Error:
        return None  # exists but unreadable (another user): assume alive
    recorded = data.get("process_started") or 0.0
    if recorded and abs(started - float(recorded)) > 1.0:
        return N_("the daemon is not running (process {pid} is gone; that pid is now another program)").format(pid=pid)
    return None


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
        return [N_("no health file at {path}: is the daemon running?").format(path=path)]
    except (OSError, ValueError) as exc:
        return [N_("unreadable health file {path}: {error}").format(path=path, error=exc)]
    gone = _process_gone(data)
    if gone:
        return [gone]  # the file's other problems are stale
    problems = list(data.get("problems") or [])
    age = (now - datetime.fromisoformat(data["updated_at"])).total_seconds()
    if age > max_age:
        problems.append(N_("scheduler stalled: last heartbeat {age:.0f}s ago").format(age=age))
    if not data.get("storage_ok", True):
        problems.append(N_("database writes are failing"))
    return problems


def health_path(config: Config) -> Path:
    """[daemon] health_file, else beside the SQLite database or in $VEILLE_HOME (PostgreSQL: the data dir)."""
    if config.daemon.health_file:
        return Path(config.daemon.health_file)
    return data_dir(config.database_url) / "veille-health.json"


OLDEST_PENDING_ALERT = 15 * 60.0  # seconds: an alert stuck longer than this turns health red (J3)


def alerting_health(report: dict[str, Any]) -> dict[str, Any]:
    age = float(report.get("oldest_pending_seconds") or 0.0)
    if age > OLDEST_PENDING_ALERT:
        report["problems"] = [N_("oldest pending alert is {minutes:.0f} min old").format(minutes=age / 60)]
    return report


def telegram_health(status: TelegramStatus) -> dict[str, Any]:
    problems = [] if status["auth_ok"] else [N_("telegram: the bot token was rejected")]
    return {"telegram": status, "problems": problems}
