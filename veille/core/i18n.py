"""User-facing text in French by default, English on request (`lang = "en"` or VEILLE_LANG=en)."""

from __future__ import annotations

import os


def current_lang(configured: str | None = None) -> str:
    """VEILLE_LANG wins over the config's `lang`; anything but "en" means French."""
    lang = os.environ.get("VEILLE_LANG") or configured or "fr"
    return "en" if lang.lower().startswith("en") else "fr"


def tr(lang: str, fr: str, en: str) -> str:
    return en if lang == "en" else fr
