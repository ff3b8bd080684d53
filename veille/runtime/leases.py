"""Which sources this process may poll: its source leases, renewed in the background (G7).

Two daemons on one database (PostgreSQL) share the sources: each polls only those it holds the
lease of, so polls, API budgets and cursors never clash. A daemon renews its leases and claims free
or expired ones every lease/3; one that is killed is taken over once its leases expire, one that
stops cleanly releases them at once. A lease held by a process of this host that no longer exists
(a crash, then a restart by systemd) is taken at once too: waiting for it would only delay the restart.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine

from veille.core.clock import Clock
from veille.core.version import __version__
from veille.runtime.outbox import default_owner
from veille.store import leases as lease_store
from veille.store.engine import read_conn, write_tx
from veille.store.sources import SourceRow, load_sources

# A lease is trusted for this share of its length after the renewal that started at `now`: it stops
# polls before another daemon whose clock runs up to lease/6 ahead (20 s at 2 m) could take it over.
TRUSTED_SHARE = 5 / 6


@dataclass(frozen=True, slots=True)
class LeaseUnits:
    """What is leased: each polled source by itself, a stream group (one consumer) through its leader.

    `spread` names each unit's host, so that a daemon's share mixes hosts and the per-host limits hold;
    `followers` are the other sources of a leader's stream group: they go wherever the leader goes."""

    ids: Sequence[int]
    spread: Mapping[int, str] = field(default_factory=dict)
    followers: Mapping[int, Sequence[int]] = field(default_factory=dict)

    def signature(self) -> str:
        """Daemons share the sources only with daemons that list the same ones (the same config)."""
        return hashlib.sha256(",".join(map(str, sorted(self.ids))).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one renewal found: the sources held now, those newly taken (with their stored state), those
    lost to another daemon, and those handed over to even out the shares."""

    held: frozenset[int]
    acquired: dict[int, SourceRow]
    lost: frozenset[int]
    valid_until: datetime
    released: frozenset[int] = frozenset()
    share: int = 0  # this daemon's fair share of the units after this round


class SourceLeases:
    def __init__(
        self, engine: Engine, clock: Clock, *, lease: timedelta, owner: str | None = None, capacity: float = 1.0
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lease = lease
        self.owner = owner or default_owner()
        self.capacity = capacity
        self.held: frozenset[int] = frozenset()
        self.valid_until: datetime | None = None

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: two may fail before the lease runs out."""
        return self.lease.total_seconds() / 3

    def holds(self, source_id: int) -> bool:
        return source_id in self.held and self.valid_until is not None and self.clock.now() < self.valid_until

    def take(self, units: LeaseUnits | Collection[int], *, busy: Collection[int] = ()) -> LeaseRound:
        """Renew, even out the shares, claim, and read the newly held sources' state, in one transaction
        (run it in a thread).

        Each live daemon (known by its heartbeat in `daemons`) holds about capacity / total capacity of
        the units. Beyond its share a daemon hands over idle units (never one being polled: `busy`),
        from the hosts it holds most of; below it, it claims free ones, from the hosts it holds least of.
        The state is read in the claiming transaction: the previous holder's last write is in it."""
        if not isinstance(units, LeaseUnits):
            units = LeaseUnits(ids=list(units))
        now = self.clock.now()
        with write_tx(self.engine) as conn:
            lease_store.limit_idle(conn, self.lease)
            live = lease_store.live_daemons(conn, now, self.lease)
            # A daemon of this host whose process is gone (killed, then restarted by systemd) holds nothing
            # and counts in no share, whether or not it had leases: otherwise each kill would shrink the
            # next daemon's share until the dead one's heartbeat aged out.
            dead = dead_owners(lease_store.live_owners(conn, now) | {d.owner for d in live}, self.owner)
            lease_store.forget_daemons(conn, dead)
            signature = units.signature()
            others = [d for d in live if d.owner != self.owner and d.owner not in dead and d.units_hash == signature]
            share = fair_share(len(units.ids), self.capacity, [d.capacity for d in others])
            renewed = lease_store.renew(conn, self.owner, units.ids, now, self.lease)
            released: set[int] = set()
            if len(renewed) > share:
                excess = pick_excess(renewed - set(busy), len(renewed) - share, units.spread)
                released = lease_store.release_some(conn, self.owner, excess)
                renewed -= released
            # Claimed rows were not ours a moment ago: another daemon may have polled them since we
            # last did (even ones we still think we hold, if our renewals failed meanwhile).
            candidates = spread_order([i for i in units.ids if i not in renewed], renewed, units.spread)
            claimed = lease_store.claim(
                conn, self.owner, candidates, now, self.lease, dead=dead, limit=share - len(renewed)
            )
            leaders = renewed | claimed
            following = [f for leader in leaders for f in units.followers.get(leader, ())]
            lease_store.mark_followers(conn, self.owner, following, now, self.lease)
            newly_following = [f for leader in claimed for f in units.followers.get(leader, ())]
            acquired = load_sources(conn, [*claimed, *newly_following])
            held = frozenset(leaders | set(following))
            lease_store.heartbeat(
                conn,
                self.owner,
                host=_host(),
                pid=os.getpid(),
                version=__version__,
                capacity=self.capacity,
                now=now,
                held=len(held),
                units_hash=signature,
            )
        released_all = frozenset(released | {f for r in released for f in units.followers.get(r, ())})
        return LeaseRound(
            held, acquired, self.held - held - released_all, now + self.lease * TRUSTED_SHARE, released_all, share
        )

    def publish(self, lease_round: LeaseRound) -> None:
        """Poll by the new set (on the event loop, once the acquired sources' state is mirrored)."""
        self.held = lease_round.held
        self.valid_until = lease_round.valid_until

    def release(self) -> int:
        """Give every lease back (clean stop): the other daemons take over at their next renewal, and stop
        counting this one in their shares at once."""
        self.held = frozenset()
        with write_tx(self.engine) as conn:
            lease_store.forget_daemon(conn, self.owner)
            lease_store.forget_stale_daemons(conn, self.clock.now(), STALE_DAEMON)
            return lease_store.release(conn, self.owner)

    def held_elsewhere(self, ids: Collection[int]) -> dict[int, str]:
        """Among `ids`, the sources a live daemon holds (read only: `veille run --once` takes no lease)."""
        now = self.clock.now()
        with read_conn(self.engine) as conn:
            dead = dead_owners(lease_store.live_owners(conn, now), self.owner)
            return lease_store.held_elsewhere(conn, self.owner, ids, now, dead=dead)


STALE_DAEMON = timedelta(days=1)  # a killed daemon's row leaves `veille daemons` after this long


def lease_units(sources: Mapping[str, tuple[int, str]], groups: Iterable[Sequence[str]]) -> LeaseUnits:
    """The units the sources (key -> (id, host)) are leased in: polled sources one by one, a stream group
    through the source with the lowest id (its leader)."""
    grouped = {key for keys in groups for key in keys}
    ids = [source_id for key, (source_id, _) in sources.items() if key not in grouped]
    followers: dict[int, list[int]] = {}
    for keys in groups:
        members = sorted(sources[k][0] for k in keys)
        ids.append(members[0])
        followers[members[0]] = members[1:]
    return LeaseUnits(ids=ids, spread={source_id: host for source_id, host in sources.values()}, followers=followers)


def spread_key(target: str, kind: str) -> str:
    """The host a source's polls go to (its target's host; the kind for targets that are not URLs)."""
    return urlsplit(target).hostname or kind


def fair_share(units: int, capacity: float, others: Sequence[float]) -> int:
    """This daemon's share of `units` among the live daemons (rounded up, so that every unit has a holder)."""
    total = capacity + sum(others)
    return math.ceil(units * capacity / total) if total > 0 else units


def spread_order(candidates: Sequence[int], held: Collection[int], spread: Mapping[int, str]) -> list[int]:
    """Candidates to claim, one host after another, the hosts this daemon holds least of first."""
    mine = Counter(spread.get(i, "") for i in held)
    by_host: dict[str, list[int]] = {}
    for unit in candidates:
        by_host.setdefault(spread.get(unit, ""), []).append(unit)
    hosts = sorted(by_host, key=lambda h: (mine[h], h))
    ordered: list[int] = []
    for rank in range(max((len(v) for v in by_host.values()), default=0)):
        ordered += [by_host[h][rank] for h in hosts if rank < len(by_host[h])]
    return ordered


def pick_excess(idle: Collection[int], count: int, spread: Mapping[int, str]) -> list[int]:
    """`count` idle units to hand over, each from the host this daemon holds most of at that moment."""
    by_host: dict[str, list[int]] = {}
    for unit in sorted(idle):
        by_host.setdefault(spread.get(unit, ""), []).append(unit)
    picked: list[int] = []
    while len(picked) < count and by_host:
        host = max(by_host, key=lambda h: (len(by_host[h]), h))
        picked.append(by_host[host].pop())
        if not by_host[host]:
            del by_host[host]
    return picked


def _host() -> str:
    return socket.gethostname()[:64]


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
