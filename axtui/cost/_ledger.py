"""The database side of budget enforcement: one transaction per pass of a `BudgetBook`'s worker.

A window's ``reserved`` counter is the sum of its holds, one per process
(``cost_budget_holds``): every statement that changes ``reserved`` changes
the writer's own hold by the same amount in the same transaction. Room is
only ever added with the conditional UPDATE below, so at every commit
``spent + reserved <= limit`` unless a settled cost exceeded its estimate.

Holds are leased: each pass renews its holder's (``expires_at`` = now +
lease), and a pass that needs room first takes every other holder's expired
hold off ``reserved``. A holder whose hold was taken treats it as gone (the
renewal returns what it still holds, and the book believes only that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from axtui.cost.alerts import BudgetAlert
from axtui.cost.budgets import BudgetInfo, seed_window
from axtui.errors import BudgetExceeded, StoreError
from axtui.store.raw import RawSql

__all__ = ["Key", "Ledger", "Pass", "Waiter", "Window"]

Window = tuple[BudgetInfo, int]
Key = tuple[int, int]
Fired = list[tuple[BudgetAlert, str | None]]

_RESERVE = RawSql(
    "UPDATE cost_budget_windows SET reserved_nanos = reserved_nanos + :est, updated_at = :now "
    "WHERE budget_id = :bid AND period_start = :start AND spent_nanos + reserved_nanos + :est <= :limit "
    "RETURNING spent_nanos"
)
_SETTLE = RawSql(
    "UPDATE cost_budget_windows SET spent_nanos = spent_nanos + :actual, reserved_nanos = reserved_nanos - :held, "
    "updated_at = :now WHERE budget_id = :bid AND period_start = :start RETURNING spent_nanos"
)
_READ = RawSql(
    "SELECT spent_nanos, reserved_nanos FROM cost_budget_windows WHERE budget_id = :bid AND period_start = :start"
)
_HOLD_SUB = RawSql(
    "UPDATE cost_budget_holds SET held_nanos = held_nanos - :n, expires_at = :exp "
    "WHERE budget_id = :bid AND period_start = :start AND holder = :me AND held_nanos >= :n RETURNING held_nanos"
)
_HOLD_READ = RawSql(
    "SELECT held_nanos FROM cost_budget_holds WHERE budget_id = :bid AND period_start = :start AND holder = :me"
)
_HOLD_ADD = RawSql(
    "UPDATE cost_budget_holds SET held_nanos = held_nanos + :n, expires_at = :exp "
    "WHERE budget_id = :bid AND period_start = :start AND holder = :me RETURNING held_nanos"
)
_HOLD_NEW = RawSql(
    "INSERT INTO cost_budget_holds (budget_id, period_start, holder, held_nanos, expires_at) "
    "VALUES (:bid, :start, :me, :n, :exp)"
)
_RENEW = RawSql(
    "UPDATE cost_budget_holds SET expires_at = :exp WHERE holder = :me "
    "RETURNING budget_id, period_start, held_nanos"
)
_FORGET = RawSql("DELETE FROM cost_budget_holds WHERE holder = :me AND held_nanos = 0")
_EXPIRED = RawSql(
    "DELETE FROM cost_budget_holds WHERE expires_at < :now AND holder <> :me "
    "RETURNING budget_id, period_start, held_nanos"
)
_UNRESERVE = RawSql(
    "UPDATE cost_budget_windows SET reserved_nanos = reserved_nanos - :n, updated_at = :now "
    "WHERE budget_id = :bid AND period_start = :start"
)


@dataclass(slots=True)
class Waiter:
    """A call waiting for room that its process's claims did not have."""

    hard: tuple[Window, ...]
    estimate: int
    answer: asyncio.Future[None]


@dataclass(slots=True)
class Pass:
    """One worker transaction: what it was given (on the loop) and what it did (in the thread)."""

    #: Costs to move to ``spent``: window -> [cost, the part backed by this process's hold].
    spend: dict[Window, list[int]]
    #: Unused room to give back: key -> nanos.
    give_back: dict[Key, int]
    #: Free room taken out of the claims for the waiters to use first: window -> nanos.
    base: dict[Window, int]
    waiters: list[Waiter]
    chunks: dict[Window, int]
    #: This process's hold per key as the loop saw it when the pass was made.
    holding: dict[Key, int]
    #: Claims running low, topped up ahead of need if the budget has room: window -> nanos.
    ahead: dict[Window, int] = field(default_factory=dict)
    #: Take other holders' expired holds off ``reserved`` first.
    reclaim: bool = False
    #: Hard windows that refused a call on what was already spent: record their "used up" event.
    used_up: set[Window] = field(default_factory=set)
    # What the pass did (reset at its start, so a retried transaction starts clean).
    refusals: list[BudgetExceeded | None] = field(default_factory=list)
    #: Room added to this process's claims per window (from ``base`` and new claims).
    kept: dict[Window, int] = field(default_factory=dict)
    fired: Fired = field(default_factory=list)
    attempted: set[tuple[int, int, int]] = field(default_factory=set)
    spent: dict[Key, int] = field(default_factory=dict)
    seeded: set[Key] = field(default_factory=set)
    #: What this process holds in the store after the pass, per key.
    truth: dict[Key, int] = field(default_factory=dict)
    #: Nanos of expired holds taken off ``reserved``.
    reclaimed: int = 0

    def reset(self) -> None:
        """Forget what an earlier, rolled-back try of this pass did."""
        self.refusals = []
        self.kept = {}
        self.fired = []
        self.attempted = set()
        self.spent = {}
        self.seeded = set()
        self.truth = {}
        self.reclaimed = 0


#: A claim takes at most this share of the room left beyond what the waiting call needs.
ROOM_SHARE = 4

Crossings = Callable[[Connection, Pass, BudgetInfo, int, int, float, bool], None]
Refusal = Callable[[BudgetInfo, int, int, int, int], BudgetExceeded]


class Ledger:
    """Runs passes for one holder (one `BudgetBook`) inside a transaction.

    Args:
        holder: this process's name in ``cost_budget_holds``.
        lease_s: how long a hold stays valid without renewal.
        seeded: windows the book knows exist (read only here).
        crossings: records and queues the alerts a new spend crossed.
        refusal: builds the error for a call that does not fit.
    """

    def __init__(self, holder: str, lease_s: float, seeded: set[Key], crossings: Crossings, refusal: Refusal) -> None:
        self.holder = holder
        self.lease_s = lease_s
        self._seeded = seeded
        self._crossings = crossings
        self._refusal = refusal

    def run(self, conn: Connection, p: Pass, now: float) -> None:
        """Apply ``p`` in the transaction open on ``conn``."""
        p.reset()
        exp = now + self.lease_s
        if p.reclaim or p.waiters:
            p.reclaimed = self.reclaim(conn, now)
        holding = dict(p.holding)
        # Costs first: the room they give back is there for the waiters after them.
        for w in sorted(p.spend, key=_order):
            cost, from_claim = p.spend[w]
            self._write_spend(conn, p, holding, w, cost, from_claim, now, exp)
        for key in sorted(p.give_back):
            taken = self._unhold(conn, key, p.give_back[key], exp)
            if taken:
                _SETTLE.run(conn, {"actual": 0, "held": taken, "now": now, "bid": key[0], "start": key[1]})
        for b, start in sorted(p.used_up, key=_order):
            counted = _READ.run(conn, {"bid": b.id, "start": start})
            self._crossings(conn, p, b, start, int(counted[0]) if counted else 0, now, True)
        room = dict(p.base)
        for waiter in p.waiters:
            p.refusals.append(self._serve(conn, p, room, waiter, now, exp))
        for w, nanos in room.items():
            p.kept[w] = p.kept.get(w, 0) + nanos
        for w, amount in p.ahead.items():
            got = self._claim(conn, p, w, amount, 1, now, exp) if amount > 0 else None
            if got:
                p.kept[w] = p.kept.get(w, 0) + got
        rows = _RENEW.run_all(conn, {"exp": exp, "me": self.holder})
        p.truth = {(int(r[0]), int(r[1])): int(r[2]) for r in rows}
        if any(v == 0 for v in p.truth.values()):
            _FORGET.run(conn, {"me": self.holder})

    def reclaim(self, conn: Connection, now: float) -> int:
        """Take every other holder's expired hold off its window's ``reserved``; the nanos taken."""
        total = 0
        for bid, start, nanos in _EXPIRED.run_all(conn, {"now": now, "me": self.holder}):
            if nanos:
                _UNRESERVE.run(conn, {"n": int(nanos), "now": now, "bid": int(bid), "start": int(start)})
                total += int(nanos)
        return total

    def _unhold(self, conn: Connection, key: Key, nanos: int, exp: float) -> int:
        """Take up to ``nanos`` off this holder's hold; what was taken (0 when the hold is gone)."""
        params = {"n": nanos, "exp": exp, "bid": key[0], "start": key[1], "me": self.holder}
        if _HOLD_SUB.run(conn, params) is not None:
            return nanos
        row = _HOLD_READ.run(conn, params)
        if row is None or int(row[0]) <= 0:
            return 0
        part = int(row[0])
        _HOLD_SUB.run(conn, {**params, "n": part})
        return part

    def _hold(self, conn: Connection, key: Key, nanos: int, exp: float) -> None:
        params = {"n": nanos, "exp": exp, "bid": key[0], "start": key[1], "me": self.holder}
        if _HOLD_ADD.run(conn, params) is None:
            _HOLD_NEW.run(conn, params)

    def _write_spend(self, conn: Connection, p: Pass, holding: dict[Key, int], w: Window, cost: int,
                     from_claim: int, now: float, exp: float) -> None:
        b, start = w
        key = (b.id, start)
        # A cost above its estimate is spent beyond the hold: only what the hold has leaves ``reserved``.
        held = min(from_claim, holding.get(key, 0))
        if held:
            held = self._unhold(conn, key, held, exp)
            holding[key] = holding.get(key, 0) - held
        params = {"actual": cost, "held": held, "now": now, "bid": b.id, "start": start}
        row = None
        for attempt in range(2):
            if not from_claim or attempt:
                self._seed(conn, p, b, start, now, force=attempt > 0)
            row = _SETTLE.run(conn, params)
            if row is not None:
                break
        if row is None:
            return  # the budget was deleted meanwhile
        spent = int(row[0])
        p.spent[key] = spent
        self._crossings(conn, p, b, start, spent, now, False)

    def _serve(self, conn: Connection, p: Pass, room: dict[Window, int], waiter: Waiter, now: float, exp: float
               ) -> BudgetExceeded | None:
        """Find ``waiter.estimate`` of room on each of its windows, or refuse it and take none."""
        taken: list[Window] = []
        for w in waiter.hard:
            have = room.get(w, 0)
            if have < waiter.estimate:
                need = waiter.estimate - have
                got = self._claim(conn, p, w, max(need, p.chunks.get(w, need)), need, now, exp)
                if got is None:
                    for tw in taken:  # all or nothing: it stays this process's room
                        room[tw] = room.get(tw, 0) + waiter.estimate
                    b, start = w
                    counted = _READ.run(conn, {"bid": b.id, "start": start})
                    spent, reserved = (int(counted[0]), int(counted[1])) if counted else (0, 0)
                    self._crossings(conn, p, b, start, spent, now, True)  # a hard budget that refuses is used up
                    return self._refusal(b, start, spent, max(0, reserved - have - p.kept.get(w, 0)), waiter.estimate)
                have += got
            room[w] = have - waiter.estimate
            taken.append(w)
        # The waiter's estimate leaves the room here and joins its claim's ``used`` on the loop.
        for w in taken:
            p.kept[w] = p.kept.get(w, 0) + waiter.estimate
        return None

    def _claim(self, conn: Connection, p: Pass, w: Window, want: int, need: int, now: float, exp: float) -> int | None:
        """Add between ``need`` and ``want`` to the window's ``reserved`` and this holder's hold.

        Beyond ``need``, a claim takes at most 1/`ROOM_SHARE` of the room
        left, so room claimed ahead never starves the other processes of
        more than a fraction of what is left. Returns the nanos claimed, or
        None when the budget has no room for ``need``.
        """
        b, start = w
        key = (b.id, start)
        row = None
        for attempt in range(2):
            self._seed(conn, p, b, start, now, force=attempt > 0)
            row = _READ.run(conn, {"bid": b.id, "start": start})
            if row is not None:
                break
        if row is None:
            raise StoreError(f"budget #{b.id} has no counter for the period starting {start}; "
                             "it may have been deleted")
        left = b.limit_nanos - int(row[0]) - int(row[1])
        if left < need:
            return None
        amount = max(need, min(want, need + (left - need) // ROOM_SHARE))
        for ask in (amount, need) if amount > need else (need,):
            params = {"est": ask, "now": now, "bid": b.id, "start": start, "limit": b.limit_nanos}
            got = _RESERVE.run(conn, params)
            if got is not None:
                p.spent[key] = int(got[0])
                self._hold(conn, key, ask, exp)
                return ask
        return None

    def _seed(self, conn: Connection, p: Pass, b: BudgetInfo, start: int, now: float, *, force: bool) -> None:
        key = (b.id, start)
        if force or (key not in self._seeded and key not in p.seeded):
            seed_window(conn, b.id, b.scope, start, now)
            p.seeded.add(key)


def _order(w: Window) -> Key:
    return (w[0].id, w[1])
