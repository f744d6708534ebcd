"""Budget enforcement in the engine: reserve, settle, release.

Every hard budget has a counter per period in the store (``spent`` and
``reserved``). Room is taken from it with one conditional UPDATE::

    UPDATE cost_budget_windows SET reserved = reserved + :amount
    WHERE budget_id = :id AND period_start = :start
      AND spent + reserved + :amount <= :limit

which the database applies under its write lock (SQLite) or row lock
(PostgreSQL), so processes sharing the store can never take more room
between them than the budget has.

A process does not go to the database for every call. It *claims* room
ahead, a chunk of about 64 calls' estimates (at most 1/128 of the limit,
never less than the call needs), and each call reserves its estimate from
the claim in memory, in microseconds. When the claim runs short, the
calls that need room wait for one transaction that claims more; when the
database has no room for a full chunk it is asked for exactly what the
waiting call needs, counting what this process already holds, so one
process is refused exactly when the budget is full. `settle` replaces a
call's estimate with its real cost; the costs are moved from ``reserved``
to ``spent`` in batches about 20 times a second, and each batch fires the
alerts it crossed. `release` gives back the estimate of a call that
failed. Room a process holds but has not used goes back after a second
without calls (and on `flush` and close), so it never starves another
process for long: across processes a call may be refused while a sibling
holds at most one chunk of unused room.

If any budget has no room, what the call reserved elsewhere goes back and
the call gets `BudgetExceeded` (the engine then tries the next deployment,
so a free one still serves). Concurrent calls cannot overshoot a hard
budget by more than the estimate error of calls already admitted.

A call whose price is unknown, or a free model, reserves nothing and is
never refused by a money budget. Soft budgets are never checked, only
counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from axtui.bus import EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import BudgetsConfig
from axtui.cost.alerts import AlertNotifier, BudgetAlert, crossed, record_crossings
from axtui.cost.budgets import BudgetInfo, list_budgets, scope_spend, seed_window
from axtui.cost.periods import period_bounds
from axtui.errors import AxError, BudgetExceeded, StoreError
from axtui.money import format_usd
from axtui.store import Store
from axtui.store.raw import RawSql
from axtui.store.tables_cost import BudgetWindow
from axtui.types import Caller, Deployment

__all__ = ["BudgetBook", "Reservation"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]



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

Window = tuple[BudgetInfo, int]
Fired = list[tuple[BudgetAlert, str | None]]


@dataclass(slots=True)
class Reservation:
    """What `BudgetBook.reserve` holds for one call.

    ``windows`` are the (budget, period start) counters the call counts
    against; ``held`` the subset where ``estimate_nanos`` was reserved.
    """

    windows: tuple[Window, ...]
    held: tuple[Window, ...] = ()
    estimate_nanos: int = 0
    done: bool = field(default=False)


#: How long settled costs wait to be written together (they are already counted in memory).
_LINGER_S = 0.05
#: Unused room goes back to the store after this long without a call reserving from it.
_IDLE_S = 1.0
#: A claim covers about this many calls' estimates, or two seconds of them when more (at most
#: `_MAX_SHARE` of the limit); it is topped up once half is used, so calls rarely wait for it.
_CHUNK_CALLS = 64
_CHUNK_S = 2.0
_MAX_SHARE = 128


@dataclass(slots=True)
class _Claim:
    """This process's share of one window's ``reserved`` counter (event-loop thread only)."""

    #: Nanos this process added to the window's ``reserved``: it may spend them without asking.
    held: int = 0
    #: Of ``held``, what backs calls under way and costs settled but not yet written.
    used: int = 0
    #: How much to claim when more is needed.
    chunk: int = 0
    #: Event-loop time of the last reservation from this claim.
    last_used: float = 0.0
    #: Nanos reserved per second lately, and the count since ``since``.
    rate: float = 0.0
    taken: int = 0
    since: float = 0.0
    #: More room has been asked for and not come back yet.
    asking: bool = False

    @property
    def free(self) -> int:
        return self.held - self.used


@dataclass(slots=True)
class _Waiter:
    """A call waiting for room that its claims did not have."""

    hard: tuple[Window, ...]
    estimate: int
    answer: asyncio.Future[None]


@dataclass(slots=True)
class _Pass:
    """One worker transaction: what it was given (on the loop) and what it did (in the thread)."""

    #: Costs to move to ``spent``: window -> (cost, the part held in this process's claim).
    spend: dict[Window, list[int]]
    #: Unused room to give back: (budget id, period start) -> nanos.
    give_back: dict[tuple[int, int], int]
    #: Free room taken out of the claims for the waiters to use first: window -> nanos.
    base: dict[Window, int]
    waiters: list[_Waiter]
    chunks: dict[Window, int]
    #: Claims running low, topped up ahead of need if the budget has room: window -> nanos.
    ahead: dict[Window, int] = field(default_factory=dict)
    refusals: list[BudgetExceeded | None] = field(default_factory=list)
    #: Room held by this process after the pass, per window, from ``base`` and new claims.
    kept: dict[Window, int] = field(default_factory=dict)
    #: Per written window: what was taken off ``reserved`` (the claim's part of the cost).
    released: dict[Window, int] = field(default_factory=dict)
    fired: Fired = field(default_factory=list)
    attempted: set[tuple[int, int, int]] = field(default_factory=set)
    spent: dict[tuple[int, int], int] = field(default_factory=dict)
    seeded: set[tuple[int, int]] = field(default_factory=set)


def _end_nap(nap: asyncio.Future[None]) -> None:
    if not nap.done():
        nap.set_result(None)


class BudgetBook:
    """The engine's `Budgets`: budgets from the store, enforced with shared counters.

    Args:
        store: where budgets and their counters live.
        config: time zone, alert thresholds, webhook, refresh interval.
        clock: decides the period a call falls in.
        bus: alerts go on it as `BudgetCrossed` events.
        notifier: delivers alerts (one is made from ``store`` and ``bus`` when None).
    """

    def __init__(
        self,
        store: Store,
        config: BudgetsConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        notifier: AlertNotifier | None = None,
    ) -> None:
        self.store = store
        self.config = config or BudgetsConfig()
        self.clock = clock
        self.notifier = notifier or AlertNotifier(store, bus=bus, clock=clock, attempts=self.config.webhook_attempts)
        self._lock = threading.Lock()
        self._budgets: list[BudgetInfo] = []
        self._loaded = False
        self._loaded_at: float | None = None
        self._refreshing: asyncio.Future[None] | None = None
        # Spend only grows within a period, so a counter seen full stays full:
        # refuse from memory instead of asking the database again.
        self._known_spent: dict[tuple[int, int], int] = {}
        self._fired: set[tuple[int, int, int]] = set()
        self._seeded: set[tuple[int, int]] = set()
        self._claims: dict[tuple[int, int], _Claim] = {}
        self._waiters: list[_Waiter] = []
        self._ahead: dict[Window, int] = {}
        #: Settled costs not written yet: window -> [cost, the part held in a claim].
        self._spend: dict[Window, list[int]] = {}
        self._urgent = False
        self._flush_all = False
        self._worker: asyncio.Task[None] | None = None
        self._nap: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._periods: dict[str, tuple[int, int | None]] = {}
        self._conn: Connection | None = None

    # -- the budgets in force ------------------------------------------------------------

    def refresh(self) -> list[BudgetInfo]:
        """Re-read the budgets and reconcile their counters with the recorded spend.

        Runs every ``budgets.refresh_s`` on its own. Reconciling raises a
        counter to what the rollups recorded for its scope this period, so
        spend that reached no counter (a call another process made before it
        saw the budget) still counts.
        """
        budgets = list_budgets(self.store)
        self._db(lambda conn: self._reconcile(conn, budgets, self.clock.now()))
        self._budgets = budgets
        self._loaded = True
        self._loaded_at = self.clock.monotonic()
        return budgets

    def _reconcile(self, conn: Connection, budgets: list[BudgetInfo], now: float) -> None:
        for b in budgets:
            start = period_bounds(b.period, now, self.config.timezone)[0]
            counted = _READ.run(conn, {"bid": b.id, "start": start})
            if counted is None:
                continue  # created, and seeded from the rollups, by the first call of the period
            spent = int(counted[0])
            recorded = scope_spend(conn, b.scope, start, now)
            if recorded > spent:
                # Only ever raised (a concurrent settle may have raised it further meanwhile).
                conn.execute(
                    _WINDOWS.update()
                    .where(_WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start,
                           _WINDOWS.c.spent_nanos < recorded)
                    .values(spent_nanos=recorded, updated_at=now)
                )
                spent = recorded
            self._known_spent[(b.id, start)] = spent

    async def _current(self) -> list[BudgetInfo]:
        stale = self._loaded_at is None or self.clock.monotonic() - self._loaded_at >= self.config.refresh_s
        task = self._refreshing
        if stale and (task is None or task.done() or task.get_loop() is not asyncio.get_running_loop()):
            task = self._refreshing = asyncio.ensure_future(self._refresh_async())
        if not self._loaded and task is not None and not task.done():
            # The first load is waited for, so no call slips through before any budget is
            # known; later refreshes run beside the calls, which use the budgets known so far.
            await asyncio.shield(task)
        return self._budgets

    async def _refresh_async(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
        except AxError as exc:  # a store hiccup must not stop calls; keep the last known budgets
            log.warning("budgets not refreshed: %s", exc.message)
            self._loaded_at = self.clock.monotonic()

    async def applicable(self, caller: Caller, deployment: Deployment) -> list[BudgetInfo]:
        """The budgets a call by ``caller`` to ``deployment`` counts against."""
        return [b for b in await self._current() if b.scope.matches(caller, deployment)]

    # -- Budgets port ----------------------------------------------------------------------

    async def reserve(self, caller: Caller, deployment: Deployment, estimate_nanos: int | None) -> Reservation | None:
        """Reserve the estimated cost against every hard budget that applies.

        Raises:
            BudgetExceeded: a hard budget has no room for the estimate.
            StoreError: the counters could not be read or written.
        """
        budgets = await self.applicable(caller, deployment)
        if not budgets:
            return None
        now = self.clock.now()
        windows = tuple((b, self._start(b.period, now)) for b in budgets)
        estimate = estimate_nanos or 0
        hard = tuple(w for w in windows if w[0].hard)
        if estimate <= 0 or not hard:
            return Reservation(windows)
        for b, start in hard:
            known = self._known_spent.get((b.id, start))
            if known is not None and known + estimate > b.limit_nanos:
                raise self._refusal(b, start, known, 0, estimate)
        if not self._take(hard, estimate):
            answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(_Waiter(hard, estimate, answer))
            self._wake(urgent=True)
            await answer
        return Reservation(windows, hard, estimate)

    async def settle(self, reservation: Reservation | None, actual_nanos: int | None) -> None:
        """Replace the reservation with the real cost (None, an unknown price, counts as nothing).

        Returns at once; the counters are updated in the background (`flush` waits).
        """
        if reservation is None or reservation.done:
            return
        reservation.done = True
        actual = max(0, actual_nanos or 0)
        held = set(reservation.held)
        for w in reservation.windows:
            if w in held:
                claim = self._claims[(w[0].id, w[1])]
                # The estimate is given back and the cost takes its place until it is written.
                claim.used += actual - reservation.estimate_nanos
            if actual:
                pending = self._spend.setdefault(w, [0, 0])
                pending[0] += actual
                pending[1] += actual if w in held else 0
        if actual or held:
            self._wake()

    async def release(self, reservation: Reservation | None) -> None:
        """Drop the reservation of a call that failed before costing anything."""
        await self.settle(reservation, 0)

    async def flush(self) -> None:
        """Write every cost settled so far and give back unused room; returns when the store has them."""
        self._wake(urgent=True, everything=True)
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def aclose(self) -> None:
        """Write what is pending, then wait for webhook deliveries under way (a few seconds at most)."""
        await self.flush()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        await self.notifier.drain()
        with self._lock:
            self._close_connection()

    # -- claims (event-loop thread) ----------------------------------------------------------

    def _start(self, period: str, now: float) -> int:
        """The start of the period holding ``now`` (remembered until the period ends)."""
        known = self._periods.get(period)
        if known is None or (known[1] is not None and not known[0] <= now < known[1]):
            known = self._periods[period] = period_bounds(period, now, self.config.timezone)
        return known[0]

    def _take(self, hard: tuple[Window, ...], estimate: int) -> bool:
        """Reserve ``estimate`` from this process's claims on every window, or from none."""
        claims = self._claims
        for b, start in hard:
            claim = claims.get((b.id, start))
            if claim is None or claim.free < estimate:
                return False
        at = asyncio.get_running_loop().time()
        low = False
        for w in hard:
            claim = claims[(w[0].id, w[1])]
            claim.used += estimate
            self._count(claim, estimate, at)
            if claim.free < claim.chunk // 2 and not claim.asking:
                claim.asking = True
                self._ahead[w] = estimate
                low = True
        if low:
            self._wake(urgent=True)
        return True

    @staticmethod
    def _count(claim: _Claim, estimate: int, at: float) -> None:
        if at - claim.since >= 1.0:
            claim.rate = claim.taken / (at - claim.since) if claim.since else 0.0
            claim.taken, claim.since = 0, at
        claim.taken += estimate
        claim.last_used = at

    @staticmethod
    def _chunk(b: BudgetInfo, claim: _Claim, estimate: int) -> int:
        return min(b.limit_nanos // _MAX_SHARE, max(estimate * _CHUNK_CALLS, int(claim.rate * _CHUNK_S)))

    # -- the worker --------------------------------------------------------------------------

    def _wake(self, *, urgent: bool = False, everything: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._urgent = self._urgent or urgent
        if urgent and self._nap is not None:
            _end_nap(self._nap)
        self._flush_all = self._flush_all or everything
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._work())

    def _idle(self) -> None:
        self._idle_timer = None
        if any(c.free > 0 for c in self._claims.values()):
            self._wake()

    def _dispatch(self, now_loop: float, everything: bool) -> _Pass | None:
        """Take what is pending into one pass (on the loop); None when nothing is."""
        give_back: dict[tuple[int, int], int] = {}
        base: dict[Window, int] = {}
        chunks: dict[Window, int] = {}
        waiters, self._waiters = self._waiters, []
        needing = {w: w for waiter in waiters for w in waiter.hard}
        for w in needing:
            claim = self._claims.setdefault((w[0].id, w[1]), _Claim())
            if claim.free > 0:
                base[w] = claim.free
                claim.held -= claim.free
            chunks[w] = claim.chunk = max(self._chunk(w[0], claim, x.estimate) for x in waiters if w in x.hard)
        ahead: dict[Window, int] = {}
        for w, estimate in self._ahead.items():
            low = self._claims.get((w[0].id, w[1]))
            if low is None:
                continue
            if w in needing:
                low.asking = False  # the waiters' claim tops it up
                continue
            low.chunk = self._chunk(w[0], low, estimate)
            ahead[w] = max(0, low.chunk - low.free)
        self._ahead = {}
        waiting = {(w[0].id, w[1]) for w in needing}
        for key, claim in list(self._claims.items()):
            if claim.free <= 0:
                if claim.held == 0 and claim.used == 0 and not claim.asking and key not in waiting:
                    del self._claims[key]
                continue
            idle = now_loop - claim.last_used >= _IDLE_S
            spare = claim.free if (everything or idle) else max(0, claim.free - 2 * claim.chunk)
            if spare:
                give_back[key] = spare
                claim.held -= spare
        spend, self._spend = self._spend, {}
        if not (spend or give_back or base or waiters or ahead):
            return None
        return _Pass(spend, give_back, base, waiters, chunks, ahead)

    def _absorb(self, p: _Pass) -> None:
        """Apply a committed pass to the claims and answer its waiters (on the loop)."""
        at = asyncio.get_running_loop().time()
        for w, (_, from_claim) in p.spend.items():
            claim = self._claims.get((w[0].id, w[1]))
            if claim is not None:
                claim.used -= from_claim
                claim.held -= p.released.get(w, 0)
        for w, kept in p.kept.items():
            claim = self._claims.setdefault((w[0].id, w[1]), _Claim())
            claim.held += kept
        for w in p.ahead:
            self._claims.setdefault((w[0].id, w[1]), _Claim()).asking = False
        for waiter, refusal in zip(p.waiters, p.refusals, strict=True):
            if refusal is not None:
                if not waiter.answer.done():
                    waiter.answer.set_exception(refusal)
                continue
            for b, start in waiter.hard:
                claim = self._claims[(b.id, start)]
                if waiter.answer.done():
                    continue  # its caller went away: the room stays in the claim
                claim.used += waiter.estimate
                self._count(claim, waiter.estimate, at)
            if not waiter.answer.done():
                waiter.answer.set_result(None)
        self._known_spent.update(p.spent)
        self._seeded.update(p.seeded)
        self._fired.update(p.attempted)
        for alert, webhook in p.fired:
            self.notifier.publish(alert, webhook)

    def _restore(self, p: _Pass) -> None:
        """Put a pass that failed back, so its costs are retried and its room is not lost."""
        for w, (cost, from_claim) in p.spend.items():
            pending = self._spend.setdefault(w, [0, 0])
            pending[0] += cost
            pending[1] += from_claim
        for key, nanos in p.give_back.items():
            self._claims.setdefault(key, _Claim()).held += nanos
        for w, nanos in p.base.items():
            self._claims.setdefault((w[0].id, w[1]), _Claim()).held += nanos
        for w in p.ahead:
            self._claims.setdefault((w[0].id, w[1]), _Claim()).asking = False

    async def _work(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            if not self._urgent and not self._waiters:
                # Costs already counted in memory wait a moment, so a busy second takes a few
                # transactions; a call that needs room cuts the wait short (`_wake`).
                nap = self._nap = loop.create_future()
                timer = loop.call_later(_LINGER_S, _end_nap, nap)
                await nap
                timer.cancel()
                self._nap = None
            everything, self._flush_all = self._flush_all, False
            self._urgent = False
            p = self._dispatch(loop.time(), everything)
            if p is None:
                break
            try:
                now = self.clock.now()
                await asyncio.to_thread(self._db, lambda conn, q=p, t=now: self._run_pass(conn, q, t))
            except Exception as exc:
                why = exc.message if isinstance(exc, AxError) else f"{type(exc).__name__}: {exc}"
                err = exc if isinstance(exc, AxError) else StoreError(f"budget counters could not be updated: {why}")
                for waiter in p.waiters:
                    if not waiter.answer.done():
                        waiter.answer.set_exception(err)
                p.waiters.clear()
                self._restore(p)
                failures += 1
                if failures >= 3:
                    log.error("budget counters not updated: %s; %d costs kept in memory", why, len(self._spend))
                    failures = 0
                elif p.spend:
                    log.warning("budget costs not written yet (%s); retrying", why)
                await self.clock.sleep(0.5 * failures)
                continue
            failures = 0
            self._absorb(p)
        if self._idle_timer is None and any(c.free > 0 for c in self._claims.values()):
            self._idle_timer = loop.call_later(_IDLE_S, self._idle)

    # -- database work (in the worker's thread) ----------------------------------------------

    def _run_pass(self, conn: Connection, p: _Pass, now: float) -> None:
        # Costs first: the room they give back is there for the waiters after them.
        for w, (cost, from_claim) in p.spend.items():
            self._write_spend(conn, p, w, cost, from_claim, now)
        for (bid, start), nanos in p.give_back.items():
            _SETTLE.run(conn, {"actual": 0, "held": nanos, "now": now, "bid": bid, "start": start})
        room = dict(p.base)
        for waiter in p.waiters:
            p.refusals.append(self._serve(conn, p, room, waiter, now))
        for w, nanos in room.items():
            p.kept[w] = p.kept.get(w, 0) + nanos
        for w, amount in p.ahead.items():
            # Ahead of need: only when the budget has room for all of it (no partial top-up).
            if amount and self._claim(conn, p, w, amount, now) is not None:
                p.kept[w] = p.kept.get(w, 0) + amount

    def _serve(self, conn: Connection, p: _Pass, room: dict[Window, int], waiter: _Waiter, now: float
               ) -> BudgetExceeded | None:
        """Find ``waiter.estimate`` of room on each of its windows, or refuse it and take none."""
        taken: list[tuple[Window, int]] = []
        for w in waiter.hard:
            have = room.get(w, 0)
            if have < waiter.estimate:
                need = waiter.estimate - have
                got = self._claim(conn, p, w, max(need, p.chunks.get(w, need)), now)
                if got is None and p.chunks.get(w, need) > need:
                    got = self._claim(conn, p, w, need, now)
                if got is None:
                    for tw, nanos in taken:  # all or nothing: it stays this process's room
                        room[tw] = room.get(tw, 0) + nanos
                    b, start = w
                    counted = _READ.run(conn, {"bid": b.id, "start": start})
                    spent, reserved = (int(counted[0]), int(counted[1])) if counted else (0, 0)
                    return self._refusal(b, start, spent, reserved - have - p.kept.get(w, 0), waiter.estimate)
                have += got
            room[w] = have - waiter.estimate
            taken.append((w, waiter.estimate))
        # The waiter's estimate leaves the room here and joins its claim's ``used`` on the loop.
        for w, nanos in taken:
            p.kept[w] = p.kept.get(w, 0) + nanos
        return None

    def _claim(self, conn: Connection, p: _Pass, w: Window, amount: int, now: float) -> int | None:
        """Add ``amount`` to the window's ``reserved`` if the budget has room; the amount, or None."""
        b, start = w
        params = {"est": amount, "now": now, "bid": b.id, "start": start, "limit": b.limit_nanos}
        for attempt in range(2):
            self._seed(conn, p, b, start, now, force=attempt > 0)
            row = _RESERVE.run(conn, params)
            if row is not None:
                p.spent[(b.id, start)] = int(row[0])
                return amount
            if _READ.run(conn, {"bid": b.id, "start": start}) is not None:
                return None
            # No counter yet (a new period, or one a rolled-back transaction never made): make it, once more.
        raise StoreError(f"budget #{b.id} has no counter for the period starting {start}; it may have been deleted")

    def _seed(self, conn: Connection, p: _Pass, b: BudgetInfo, start: int, now: float, *, force: bool) -> None:
        key = (b.id, start)
        if force or (key not in self._seeded and key not in p.seeded):
            seed_window(conn, b.id, b.scope, start, now)
            p.seeded.add(key)

    def _write_spend(self, conn: Connection, p: _Pass, w: Window, cost: int, from_claim: int, now: float) -> None:
        b, start = w
        claim = self._claims.get((b.id, start))
        # A cost above its estimate is spent beyond the claim: only what the claim holds leaves ``reserved``.
        held = min(from_claim, claim.held if claim is not None else 0)
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
        p.released[w] = held
        spent = int(row[0])
        p.spent[(b.id, start)] = spent
        self._crossings(conn, p, b, start, spent, now)

    def _db(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction on this book's own connection, one at a time.

        Keeping one connection saves a pool round trip per transaction; when
        the database refuses (locked, gone away) the work is retried through
        `Store.run`, which waits out locks and explains failures.
        """
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self.store.engine.connect()
                with self._conn.begin():
                    return work(self._conn)
            except (OperationalError, InterfaceError):
                self._close_connection()
                return self.store.run(work)

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                log.debug("budget connection close failed", exc_info=True)
            self._conn = None

    def _crossings(self, conn: Connection, out: _Pass, b: BudgetInfo, start: int, spent: int, now: float) -> None:
        thresholds = b.thresholds or tuple(self.config.thresholds)
        due = [t for t in crossed(thresholds, b.limit_nanos, spent)
               if (b.id, start, t) not in self._fired and (b.id, start, t) not in out.attempted]
        if due:
            webhook = b.webhook or self.config.webhook
            out.fired.extend((a, webhook) for a in record_crossings(conn, b, start, spent, due, now,
                                                                    webhook=bool(webhook)))
            out.attempted.update((b.id, start, t) for t in due)

    def _refusal(self, b: BudgetInfo, start: int, spent: int, reserved: int, estimate: int) -> BudgetExceeded:
        _, end = period_bounds(b.period, self.clock.now(), self.config.timezone)
        when = "it does not reset (a total budget)" if end is None else "it resets when the period ends"
        in_flight = f" + {format_usd(reserved, nanos=True)} reserved by calls under way" if reserved else ""
        return BudgetExceeded(
            f"budget #{b.id} ({b.scope}, {format_usd(b.limit_nanos, nanos=True)}"
            f"{'' if b.period == 'total' else '/' + b.period}, hard) has no room for this call: "
            f"{format_usd(spent, nanos=True)} spent{in_flight} + ~{format_usd(estimate, nanos=True)} for this call; "
            f"{when}. Raise it with `ax cost budget set AMOUNT --scope {b.scope} --period {b.period} --hard`",
            budget_id=b.id,
            retry_after=None if end is None else max(0.0, end - self.clock.now()),
        )

