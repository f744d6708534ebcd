"""Quota leases: how the store backend decides most requests in memory.

A decision in the store is a locked transaction (hundreds of microseconds,
and a wait whenever another writer holds the database). For a busy limit
the store backend instead takes a *lease*: it asks the store for the
request's own units plus a small grant in the same transaction, and spends
the grant locally, one request at a time, with no I/O.

What stays true:

- The store's algorithm grants every unit, so the units granted to all
  processes together never exceed the limit: a lease is spent quota, seen
  as used by every other process.
- A grant is small: at most 1/64 of the limit (of the bucket, for a token
  bucket with a smaller burst) and at most what the limit refills in
  `LEASE_TTL_S`. A limit too small for a grant of `MIN_GRANT` units gets
  none and every decision goes to the store, exactly as before.
- A lease lives `LEASE_TTL_S`; what it did not spend is given back to the
  store (refunded) when it expires and when the backend closes. So another
  process can be refused at most one grant early, for at most that long,
  and a hard-killed process holds back at most one grant per limit.
- Token corrections (`settle`) of a leased limit go to the lease: a refund
  adds units the store already counted as ours, an extra charge takes them
  from the lease first and is written to the store with the next refund.

Everything here runs on the event loop (no locks); only the transactions
in `axtui.ratelimit.backends.store` run on a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.rules import Slot

__all__ = ["LEASE_TTL_S", "MIN_GRANT", "Ask", "Lease", "LeaseBook", "grant_size"]

#: How long a lease's units may be spent before they are given back.
LEASE_TTL_S = 1.0
#: Grants below this are not worth a lease: such limits are decided in the store every time.
MIN_GRANT = 8


def grant_size(slot: Slot) -> int:
    """Units to lease beyond a request's own for ``slot`` (0: no leasing for this limit)."""
    lim = slot.limit
    if lim.kind == "mw":
        return 0  # a moving window logs every unit: a grant would bloat its log
    rate = lim.rate
    capacity = getattr(lim.engine, "capacity", rate.amount)
    grant = min(capacity // 64, int(rate.amount / rate.period_s * LEASE_TTL_S))
    return grant if grant >= MIN_GRANT else 0


@dataclass(slots=True)
class Lease:
    """Units of one limit this process holds.

    Attributes:
        slot: the limit it is of.
        units: units granted and not yet spent (negative: charged beyond the lease).
        base: what the store had left after the grant (for the headers).
        reset_at: when the store said the limit would be full again (clock seconds).
        expires: when the unspent units go back (monotonic seconds).
    """

    slot: Slot
    units: int
    base: int
    reset_at: float
    expires: float


@dataclass(slots=True)
class Ask:
    """One check of a decision that goes to the store.

    ``take`` units came from this process's lease (given back if the
    decision fails); ``need`` is what the store must admit; ``grant`` what
    to ask for beyond it (the store may grant 0).
    """

    slot: Slot
    cost: int
    take: int
    need: int
    grant: int


class LeaseBook:
    """This process's leases, by slot key (see the module docstring).

    Args:
        monotonic: the clock of lease lifetimes (the real one, whatever the decision clock).
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.leases: dict[str, Lease] = {}
        #: Units to write to the store at the next flush, by slot key (negative: refunds).
        self.pending: dict[str, tuple[Slot, int]] = {}
        self._monotonic = monotonic
        self._grants: dict[str, int] = {}

    def grant_for(self, slot: Slot) -> int:
        """`grant_size`, remembered per key (limits are fixed per key)."""
        g = self._grants.get(slot.key)
        if g is None:
            g = self._grants[slot.key] = grant_size(slot)
        return g

    def spend(self, checks: Sequence[Check], now: float) -> list[Verdict] | None:
        """Every check decided from leases, all spent; None (nothing spent) when one lease cannot cover it."""
        leases = self.leases
        mono = self._monotonic()
        for slot, cost in checks:
            lease = leases.get(slot.key)
            if lease is None or lease.expires <= mono or lease.units < cost:
                return None
        out: list[Verdict] = []
        for slot, cost in checks:
            lease = leases[slot.key]
            lease.units -= cost
            out.append(Verdict(True, None, lease.base + lease.units, max(0.0, lease.reset_at - now), 0.0))
        return out

    def borrow(self, checks: Sequence[Check]) -> list[Ask]:
        """The asks for the store: each check's cost less what a live lease covers (taken from it now)."""
        mono = self._monotonic()
        asks: list[Ask] = []
        for slot, cost in checks:
            lease = self.leases.get(slot.key)
            take = 0
            if lease is not None and lease.expires > mono and lease.units > 0:
                take = min(lease.units, cost)
                lease.units -= take
            asks.append(Ask(slot, cost, take, cost - take, self.grant_for(slot)))
        return asks

    def give_back(self, asks: Sequence[Ask]) -> None:
        """A failed decision: the units taken from leases return to them (or to the store, if expired)."""
        for ask in asks:
            if ask.take:
                lease = self.leases.get(ask.slot.key)
                if lease is not None:
                    lease.units += ask.take
                else:
                    self.charge(ask.slot, -ask.take)

    def keep(self, asks: Sequence[Ask], granted: Sequence[int], verdicts: Sequence[Verdict], now: float) -> list[Verdict]:
        """An admitted decision: grants become leases; the verdicts the caller sees."""
        expires = self._monotonic() + LEASE_TTL_S
        out: list[Verdict] = []
        for ask, got, v in zip(asks, granted, verdicts, strict=True):
            lease = self.leases.get(ask.slot.key)
            if got:
                if lease is None:
                    lease = self.leases[ask.slot.key] = Lease(ask.slot, 0, 0, 0.0, expires)
                elif lease.expires <= expires - LEASE_TTL_S:
                    # An expired lease's rest is refunded with the next flush; the new one starts clean.
                    self.charge(ask.slot, -lease.units)
                    lease.units = 0
                lease.units += got
                lease.expires = expires
            if lease is not None and ask.need and v.state is not None:
                lease.base = v.remaining
                lease.reset_at = now + v.reset_after
            held = lease.units if lease is not None and lease.expires > expires - LEASE_TTL_S else 0
            if ask.need or lease is None:
                base, reset_after = v.remaining, v.reset_after
            else:
                base, reset_after = lease.base, max(0.0, lease.reset_at - now)
            out.append(Verdict(True, v.state, base + max(0, held), reset_after, 0.0))
        return out

    def correct(self, slot: Slot, delta: int) -> bool:
        """A token correction for a leased limit, absorbed by its lease; False when the limit is not leased."""
        if not self.grant_for(slot):
            return False
        lease = self.leases.get(slot.key)
        if lease is not None and lease.expires > self._monotonic():
            if delta < 0:
                lease.units -= delta
                return True
            used = min(max(0, lease.units), delta)
            lease.units -= used
            delta -= used
        if delta:
            self.charge(slot, delta)
        return True

    def charge(self, slot: Slot, delta: int) -> None:
        """Queue ``delta`` units for the store (negative: a refund)."""
        old = self.pending.get(slot.key)
        total = (old[1] if old is not None else 0) + delta
        if total:
            self.pending[slot.key] = (slot, total)
        else:
            self.pending.pop(slot.key, None)

    def expire(self, *, everything: bool = False) -> list[tuple[Slot, int]]:
        """Close expired leases (all of them with ``everything``); the units to write to the store, taken."""
        mono = self._monotonic()
        for key, lease in list(self.leases.items()):
            if everything or lease.expires <= mono:
                del self.leases[key]
                if lease.units:
                    self.charge(lease.slot, -lease.units)
        out = list(self.pending.values())
        self.pending.clear()
        return out

    def held(self, key: str) -> int:
        """Unspent units of a live lease on ``key`` (for status: they are not in use yet)."""
        lease = self.leases.get(key)
        return max(0, lease.units) if lease is not None and lease.expires > self._monotonic() else 0

    def forget(self, prefix: str) -> None:
        """Drop the leases and queued corrections of keys starting with ``prefix`` (a subject was reset)."""
        for key in [k for k in self.leases if k.startswith(prefix)]:
            del self.leases[key]
        for key in [k for k in self.pending if k.startswith(prefix)]:
            del self.pending[key]

    def __bool__(self) -> bool:
        return bool(self.leases or self.pending)
