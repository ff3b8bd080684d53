"""One exception root, grouped by what the caller can do about it.

    VeilleError
    ├── ConfigError            fix the config file (carries every problem at once)
    ├── SecretMissing          set the named environment variable
    ├── SchemaVersionError     run `veille db upgrade` (or upgrade veille)
    ├── StorageError           the database refused a write; retry the whole cycle later
    └── FetchError             one source failed; record it on that source, others go on
        ├── RetryableFetchError     network, 5xx, timeouts: back off and retry
        │   └── RateLimited         429/503 with Retry-After, API quota: wait `retry_after`
        └── PermanentFetchError     4xx, unsafe content, forbidden address: retry rarely
            └── AuthFailed          credentials missing or revoked: retry rarely, show in `veille sources`

Every FetchError carries an ErrorKind (stored as text on the source) and a message that is
safe to show: it never contains a secret or a full URL with credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from veille.core.i18n import N_
from veille.core.models import ErrorKind


class VeilleError(Exception):
    """Root of every error veille raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file: where it is, what is wrong, how to fix it."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        """English, from msgid templates: shown through `Wording.text` in the reader's language."""
        if not self.fix:
            return N_("{path}: {message}").format(path=self.path, message=self.message)
        return N_("{path}: {message} ({fix})").format(path=self.path, message=self.message, fix=self.fix)


class ConfigError(VeilleError):
    """The config file is invalid; `problems` lists every problem found, not just the first."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(N_("{file}: {count} problem(s):").format(file=file, count=len(self.problems)) + "\n" + lines)


class SecretMissing(VeilleError):
    """A secret named by environment variable is not set. Names the variable, never a value."""

    def __init__(self, variable: str, purpose: str) -> None:
        self.variable = variable
        super().__init__(
            N_("environment variable {variable} is not set ({purpose})").format(variable=variable, purpose=purpose)
        )


class SchemaVersionError(VeilleError):
    """The database schema is behind or ahead of the code."""


class StorageError(VeilleError):
    """A write failed (read-only database, disk full...). The cycle's state must not advance."""


class FetchError(VeilleError):
    """A source could not be polled this time."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_after: float | None = None) -> None:
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{kind.value}: {message}")


class RetryableFetchError(FetchError):
    """Transient: the next poll may well succeed."""


class RateLimited(RetryableFetchError):
    """The peer asked us to wait (Retry-After, rate-limit headers, exhausted quota or budget)."""

    def __init__(self, message: str, *, retry_after: float | None, kind: ErrorKind | None = None) -> None:
        super().__init__(kind or ErrorKind.RATE_LIMITED, message, retry_after=retry_after)


class PermanentFetchError(FetchError):
    """Will not fix itself soon (4xx, unsafe feed, forbidden address): back off to the cap."""


class AuthFailed(PermanentFetchError):
    """Credentials are missing, wrong or revoked."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.AUTH, message)


class Problems:
    """Collects config problems so that validation reports all of them at once."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, path: str, message: str, fix: str = "") -> None:
        self.items.append(ConfigProblem(path, message, fix))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
