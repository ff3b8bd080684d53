"""Notifiers: where alerts leave veille (console, Telegram, Apprise...)."""
