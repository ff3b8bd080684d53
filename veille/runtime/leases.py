"""Which sources this process may poll: its source leases, renewed in the background (G7).

Two daemons on one database (PostgreSQL) share the sources: each polls only those it holds the
lease of, so polls, API budgets and cursors never clash. A daemon renews its leases and claims free
or expired ones every lease/3; one that is killed is taken over once its leases expire, one that
stops cleanly releases them at once. A lease held by a process of this host that no longer exists
(a crash, then a restart by systemd) is taken at once too: waiting for it would only delay the restart.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from veille.core.clock import Clock
from veille.runtime.outbox import default_owner
from veille.store import leases as lease_store
from veille.store.engine import read_conn, write_tx
from veille.store.sources import SourceRow, load_sources

# A lease is trusted for this share of its length after the renewal that started at `now`: it stops
# polls before another daemon whose clock runs up to lease/6 ahead (20 s at 2 m) could take it over.
TRUSTED_SHARE = 5 / 6


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one renewal found: the sources held now, those newly taken (with their stored state), those lost."""

    held: frozenset[int]
    acquired: dict[int, SourceRow]
    lost: frozenset[int]
    valid_until: datetime


class SourceLeases:
    def __init__(self, engine: Engine, clock: Clock, *, lease: timedelta, owner: str | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.lease = lease
        self.owner = owner or default_owner()
        self.held: frozenset[int] = frozenset()
        self.valid_until: datetime | None = None

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: two may fail before the lease runs out."""
        return self.lease.total_seconds() / 3

    def holds(self, source_id: int) -> bool:
        return source_id in self.held and self.valid_until is not None and self.clock.now() < self.valid_until

    def take(self, ids: Collection[int]) -> LeaseRound:
        """Renew, claim, and read the newly held sources' state, in one transaction (run it in a thread).

        The state is read in the claiming transaction: the previous holder's last write is in it."""
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            lease_store.limit_idle(conn, self.lease)
            dead = dead_owners(lease_store.live_owners(conn, now), self.owner)
            renewed = lease_store.renew(conn, self.owner, ids, now, self.lease)
            # Claimed rows were not ours a moment ago: another daemon may have polled them since we
            # last did (even ones we still think we hold, if our renewals failed meanwhile).
            claimed = lease_store.claim(conn, self.owner, ids, now, self.lease, dead=dead)
            acquired = load_sources(conn, claimed)
        held = frozenset(renewed | claimed)
        return LeaseRound(held, acquired, self.held - held, now + self.lease * TRUSTED_SHARE)

    def publish(self, lease_round: LeaseRound) -> None:
        """Poll by the new set (on the event loop, once the acquired sources' state is mirrored)."""
        self.held = lease_round.held
        self.valid_until = lease_round.valid_until

    def release(self) -> int:
        """Give every lease back (clean stop): the other daemon takes over at its next renewal."""
        self.held = frozenset()
        with write_tx(self.engine) as conn:
            return lease_store.release(conn, self.owner)

    def held_elsewhere(self, ids: Collection[int]) -> dict[int, str]:
        """Among `ids`, the sources a live daemon holds (read only: `veille run --once` takes no lease)."""
        now = self.clock.now()
        with read_conn(self.engine) as conn:
            dead = dead_owners(lease_store.live_owners(conn, now), self.owner)
            return lease_store.held_elsewhere(conn, self.owner, ids, now, dead=dead)


def dead_owners(owners: Iterable[str], me: str) -> set[str]:
    """Owners ("host:pid:random", see `default_owner`) that were processes of this host and are gone.

    Our own pid under another owner id is a previous life of this process's pid (a container
    restarted with the same hostname). Owners of other hosts are never judged: only their leases'
    expiry frees their sources."""
    host = socket.gethostname()[:30]
    dead = set()
    for owner in owners:
        name, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if owner == me or name != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or not _alive(pid):
            dead.add(owner)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
