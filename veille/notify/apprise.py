"""Apprise as a second channel (ntfy, e-mail, SMS gateways, Slack...): optional extra `veille[apprise]`.

Apprise reports only success or failure, so a failure is retried with backoff (`NotifyRetryable`)
and an address Apprise cannot parse is permanent. Apprise URLs often embed a token, so a contact's
address may be `env:NAME`: the URL is then read from that environment variable at send time and
never stored in the outbox or logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from veille.core.incidents import Urgency
from veille.notify.base import Delivery, Notification, NotifyPermanent, NotifyRetryable
from veille.notify.render import render_text


class AppriseNotifier:
    channel = "apprise"

    def __init__(self, *, environ: Mapping[str, str] | None = None, timeout: float = 20.0) -> None:
        import apprise  # the optional extra: imported only when the channel is configured

        self._apprise = apprise
        self._environ = os.environ if environ is None else environ
        self._timeout = timeout

    def _resolve(self, address: str) -> str:
        if address.startswith("env:"):
            name = address[4:]
            value = self._environ.get(name)
            if not value:
                raise NotifyPermanent(f"environment variable {name} is not set (Apprise URL)")
            return value
        return address

    async def send(self, notification: Notification, address: str) -> Delivery:
        target = self._resolve(address)
        client: Any = self._apprise.Apprise()
        if not client.add(target):
            raise NotifyPermanent("Apprise cannot use this address (check the URL scheme)")
        notify_type = (
            self._apprise.NotifyType.FAILURE if notification.urgency is Urgency.HIGH else self._apprise.NotifyType.INFO
        )
        result = await client.async_notify(
            body=render_text(notification), title=notification.title, notify_type=notify_type, timeout=self._timeout
        )
        if not result:
            raise NotifyRetryable("Apprise reported a failed delivery", ambiguous=False)
        return Delivery((f"apprise-{notification.outbox_id}",))

    async def aclose(self) -> None:
        return None
