"""`[alerting]` and `[[contacts]]`: who gets woken, when, and how hard to insist.

Minimal until the escalation work fills it in; parsed through `veille.configreader.Reader`.
"""

from __future__ import annotations

from dataclasses import dataclass

from veille.configreader import Reader


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    enabled: bool = True


def parse_alerting(root: Reader, client_ids: set[str]) -> AlertingSettings:
    section = root.table("alerting")
    if section is None:
        return AlertingSettings()
    settings = AlertingSettings(enabled=section.bool("enabled", True))
    section.finish()
    return settings
