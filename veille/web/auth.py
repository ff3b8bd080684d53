"""Who may see what: argon2 password hashes, the clients a user sees (the bot's contact scoping),
login attempts limited per user name and per address, CSRF tokens compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from veille.config import ClientConfig, Config
from veille.store.users import WebUser

_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: WebUser | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def password_mark(user: WebUser) -> str:
    """A short fingerprint of the hash kept in the session: a new password ends the old sessions."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def visible_clients(user: WebUser, config: Config) -> list[ClientConfig]:
    """The configured clients `user` may see: its own list, else the contact of the same id's clients
    (as the Telegram bot scopes a contact), else none."""
    allowed: Iterable[str] | None = user.clients
    if allowed is None:
        # as the bot: [[contacts]] by id, and a [[telegram.contacts]] entry of the same name wins
        by_contact = {c.id: c.clients for c in config.alerting.contacts}
        by_contact.update({c.name: c.clients for c in config.telegram.contacts})
        allowed = by_contact.get(user.name, ())
    wanted = set(allowed)
    return [c for c in config.clients if "*" in wanted or c.id in wanted]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: object, given: object) -> bool:
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)


class LoginLimiter:
    """At most `attempts` failed logins per key (user name, address) within `window` seconds; past
    that, logins for the key are refused until the oldest failure leaves the window."""

    def __init__(self, attempts: int, window: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._now = monotonic
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        cutoff = self._now() - self.window
        while found and found[0] <= cutoff:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        waits = []
        for key in keys:
            recent = self._recent(key)
            if len(recent) >= self.attempts:
                waits.append(recent[0] + self.window - self._now())
        return max(waits) if waits else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self._now()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 100_000:  # a spray of names: forget the oldest keys
            for key in list(self._failures)[:50_000]:
                del self._failures[key]

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
