"""The default notifier when no Telegram token is configured: a readable message on stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from veille.core.textsafe import terminal_safe
from veille.notify.base import Delivery, Notification
from veille.notify.render import render_text

# E9: feed text must not drive the operator's terminal.


class ConsoleNotifier:
    """Prints each notification. `show_silent=False` skips silent ones (a quieter log)."""

    channel = "console"

    def __init__(self, stream: TextIO | None = None, *, show_silent: bool = True) -> None:
        self._stream = stream
        self.show_silent = show_silent
        self.count = 0

    async def send(self, notification: Notification, address: str) -> Delivery:
        self.count += 1
        if notification.silent and not self.show_silent:
            return Delivery((f"console-{self.count}",))
        stream = self._stream or sys.stdout
        text = terminal_safe(render_text(notification), keep_newlines=True)
        who = notification.contact + (f" <{address}>" if address else "")
        stream.write(f"--- {who}\n{text}\n")
        stream.flush()
        return Delivery((f"console-{self.count}",))

    async def aclose(self) -> None:
        return None
