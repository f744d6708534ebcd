"""Budget enforcement in the engine: reserve, settle, release.

Every hard budget has a counter per period in the store (``spent`` and
``reserved``). Room is added to ``reserved`` only with one conditional
UPDATE::

    UPDATE cost_budget_windows SET reserved = reserved + :amount
    WHERE budget_id = :id AND period_start = :start
      AND spent + reserved + :amount <= :limit

which the database applies under its write lock (SQLite) or row lock
(PostgreSQL). So at every instant, over every process sharing the store,
``spent + reserved <= limit``; a call admitted with an estimate that turns
out low is the only way past it (by that call's estimate error).

A process does not go to the database for every call. It *claims* room
ahead: a chunk of about 64 calls' estimates or two seconds of its demand,
never more than 1/128 of the limit and never more than a quarter of the room
left beyond what the waiting call needs. Each call reserves its estimate
from the claim in memory, in microseconds. When the claim runs short, the
calls that need room wait for one transaction that claims more; when the
budget has no room for the call, it is refused. `settle` replaces a call's
estimate with its real cost; the costs are moved from ``reserved`` to
``spent`` in batches about 20 times a second, and each batch fires the
alerts it crossed. `release` gives back the estimate of a call that failed.
Room a process holds but has not used goes back after a second without
calls (and on `flush` and close).

What each process holds is written down (``cost_budget_holds``) under a
lease (``budgets.lease_s``, `LEASE_S` = 10 s by default) that every pass of
the worker renews, at least every third of the lease while it holds anything. A process that dies stops
renewing: any other process that needs room, or renews its own, takes the
dead one's holds off ``reserved`` once the lease has run out. A process
that stalls past its lease loses its holds the same way; the calls it had
under way can then overshoot by their own cost, and nothing more.

The budgets in force are re-read every ``budgets.refresh_s`` (2 s by
default) in the background while calls flow; a call that finds them older
than that waits for a fresh read, so a budget created, raised, lowered or
deleted anywhere applies to every call that starts ``refresh_s`` after the
change. On the machine where the change is made it applies at once: every
change moves the budgets' change marker (`axtui.store.markers`), and a
call that finds it moved since the budgets in hand were read waits for a
read that starts after it. A changed budget's unused claimed
room is given back at once, so a lowered limit refuses new calls as soon
as it is read.

If any budget has no room, what the call reserved elsewhere goes back and
the call gets `BudgetExceeded` (the engine then tries the next deployment,
so a free one still serves).

A call whose price is unknown, or a free model, reserves nothing and is
never refused by a money budget. Soft budgets are never checked, only
counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, IntegrityError, InterfaceError

from axtui.aio import cancel_and_wait
from axtui.bus import EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import BudgetsConfig
from axtui.cost._ledger import Key, Ledger, Pass, Waiter, Window
from axtui.cost.alerts import AlertNotifier, crossed, record_crossings
from axtui.cost.budgets import BudgetInfo, budget_marker, list_budgets, scope_spend
from axtui.cost.periods import period_bounds
from axtui.errors import AxError, BudgetExceeded, StoreError
from axtui.money import format_usd
from axtui.store import Store
from axtui.store.raw import RawSql
from axtui.store.tables_cost import BudgetWindow
from axtui.types import Caller, Deployment

__all__ = ["LEASE_S", "BudgetBook", "Reservation"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]

_READ = RawSql(
    "SELECT spent_nanos, reserved_nanos FROM cost_budget_windows WHERE budget_id = :bid AND period_start = :start"
)

#: How long a process's hold on budget room stays valid without being renewed (seconds).
LEASE_S = 10.0
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
class Reservation:
    """What `BudgetBook.reserve` holds for one call.

    ``windows`` are the (budget, period start) counters the call counts
    against; ``held`` the subset where ``estimate_nanos`` was reserved.
    """

    windows: tuple[Window, ...]
    held: tuple[Window, ...] = ()
    estimate_nanos: int = 0
    done: bool = field(default=False)


@dataclass(slots=True)
class _Claim:
    """This process's share of one window's ``reserved`` counter (event-loop thread only)."""

    #: Nanos of this process's hold it may spend without asking (the store's hold, less room in transit).
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


def _end_nap(nap: asyncio.Future[None]) -> None:
    if not nap.done():
        nap.set_result(None)


class BudgetBook:
    """The engine's `Budgets`: budgets from the store, enforced with shared counters.

    Args:
        store: where budgets and their counters live.
        config: time zone, alert thresholds, webhook, refresh interval.
        clock: decides the period a call falls in, and when leases run out.
        bus: alerts go on it as `BudgetCrossed` events.
        notifier: delivers alerts (one is made from ``store`` and ``bus`` when None).
        lease_s: how long this process's holds stay valid without renewal (``config.lease_s`` when None).
    """

    def __init__(
        self,
        store: Store,
        config: BudgetsConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        notifier: AlertNotifier | None = None,
        lease_s: float | None = None,
    ) -> None:
        self.store = store
        self.config = config or BudgetsConfig()
        self.clock = clock
        self.notifier = notifier or AlertNotifier(store, bus=bus, clock=clock, attempts=self.config.webhook_attempts)
        self.lease_s = self.config.lease_s if lease_s is None else lease_s
        self.holder = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._budgets: list[BudgetInfo] = []
        self._loaded = False
        self._loaded_at: float | None = None
        self._refreshing: asyncio.Future[None] | None = None
        #: The change marker, and its version when the budgets in hand were read.
        self._marker = budget_marker(store)
        self._mark_read = self._marker.version()
        # Spend only grows within a period, so a counter seen full stays full:
        # refuse from memory instead of asking the database again.
        self._known_spent: dict[Key, int] = {}
        self._fired: set[tuple[int, int, int]] = set()
        self._seeded: set[Key] = set()
        self._claims: dict[Key, _Claim] = {}
        self._waiters: list[Waiter] = []
        self._ahead: dict[Window, int] = {}
        #: Settled costs not written yet: window -> [cost, the part held in a claim].
        self._spend: dict[Window, list[int]] = {}
        #: Room taken out of claims on the loop (a changed budget) that the next pass gives back.
        self._returning: dict[Key, int] = {}
        self._urgent = False
        self._flush_all = False
        self._renew = False
        #: Hard windows that refused a call without a pass (spend alone was past room): their
        #: "used up" event is recorded by the next pass.
        self._used_up: set[Window] = set()
        self._worker: asyncio.Task[None] | None = None
        self._nap: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._beat_timer: asyncio.TimerHandle | None = None
        self._periods: dict[str, tuple[int, int | None]] = {}
        self._conn: Connection | None = None
        #: Calls whose cost was settled, and how many of them the store has counted (`wait_written`).
        self._settled = 0
        self._written = 0
        self._written_cond = threading.Condition()
        #: The loop the worker runs on: `wait_written` hurries it from other threads.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The pass the worker is writing now, if any.
        self._passing: Pass | None = None
        self._last_error: str | None = None
        self._closed = False
        self._ledger = Ledger(self.holder, self.lease_s, self._seeded, self._crossings, self._refusal)

    # -- the budgets in force ------------------------------------------------------------

    def refresh(self) -> list[BudgetInfo]:
        """Re-read the budgets and reconcile their counters with the recorded spend.

        Runs every ``budgets.refresh_s`` on its own while calls flow.
        Reconciling raises a counter to what the rollups recorded for its
        scope this period, so spend that reached no counter (a call another
        process made before it saw the budget) still counts. A call whose
        record is written before its cost reaches the counters is not that:
        the recorder waits for this process's costs before it writes their
        records (`wait_written`), and the costs it could not wait for (the
        counters' writes failing) are left out of the recorded spend here.
        """
        read_at, mark = self.clock.monotonic(), self._marker.version()
        budgets = self._load(self._unwritten())
        self._apply(budgets, read_at)
        self._mark_read = mark
        return budgets

    def _load(self, unwritten: dict[Key, int]) -> list[BudgetInfo]:
        budgets = list_budgets(self.store)
        self._db(lambda conn: self._reconcile(conn, budgets, self.clock.now(), unwritten))
        return budgets

    def _unwritten(self) -> dict[Key, int]:
        """Costs settled here and not yet in the counters, per window (on the loop)."""
        out: dict[Key, int] = {}
        for pending in (self._passing.spend if self._passing else {}, self._spend):
            for (b, start), (cost, _) in pending.items():
                out[(b.id, start)] = out.get((b.id, start), 0) + cost
        return out

    def _apply(self, budgets: list[BudgetInfo], read_at: float) -> None:
        """Put freshly read budgets in force (on the loop); a changed budget's unused room goes back."""
        current = {b.id: b for b in budgets}
        for old in self._budgets:
            if current.get(old.id) == old:
                continue
            for key, claim in self._claims.items():
                if key[0] == old.id and claim.free > 0:
                    self._returning[key] = self._returning.get(key, 0) + claim.free
                    claim.held -= claim.free
        self._budgets = budgets
        self._loaded = True
        self._loaded_at = read_at

    def _reconcile(self, conn: Connection, budgets: list[BudgetInfo], now: float, unwritten: dict[Key, int]) -> None:
        for b in budgets:
            start = period_bounds(b.period, now, self.config.timezone)[0]
            counted = _READ.run(conn, {"bid": b.id, "start": start})
            if counted is None:
                continue  # created, and seeded from the rollups, by the first call of the period
            spent = int(counted[0])
            # What this process settled and has not written yet may be recorded already: it is counted when written.
            recorded = scope_spend(conn, b.scope, start, now) - unwritten.get((b.id, start), 0)
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
        if self._marker.version() != self._mark_read:
            # A budget changed on this machine since these were read: the call waits for a read.
            # One begun before the change leaves the marker's old version behind: then another.
            while self._marker.version() != self._mark_read:
                task = self._refreshing if self._running(self._refreshing) else self._start_refresh()
                await asyncio.shield(task)  # type: ignore[arg-type]
            return self._budgets
        age = None if self._loaded_at is None else self.clock.monotonic() - self._loaded_at
        task = self._refreshing
        # Refreshed beside the calls while they flow, so they rarely wait for it.
        if (age is None or age >= self.config.refresh_s / 2) and not self._running(task):
            task = self._start_refresh()
        if (not self._loaded or age is None or age >= self.config.refresh_s) and task is not None and not task.done():
            # Budgets older than the documented delay are not trusted: the call waits for them.
            await asyncio.shield(task)
        return self._budgets

    @staticmethod
    def _running(task: asyncio.Future[None] | None) -> bool:
        """Whether ``task`` is a read still under way on this event loop."""
        return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()

    def _start_refresh(self) -> asyncio.Future[None]:
        # The marker is taken before the budgets are read: a change made during the read moves it again.
        self._refreshing = asyncio.ensure_future(self._refresh_async(self._marker.version()))
        return self._refreshing

    async def _refresh_async(self, mark: tuple[int, int] | None) -> None:
        read_at = self.clock.monotonic()
        try:
            budgets = await asyncio.to_thread(self._load, self._unwritten())
        except AxError as exc:  # a store hiccup must not stop calls; keep the last known budgets
            log.warning("budgets not refreshed: %s", exc.message)
            self._loaded_at = self.clock.monotonic()
            self._mark_read = mark
            return
        self._apply(budgets, read_at)
        self._mark_read = mark
        if self._returning:
            self._wake(urgent=True)

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
                if (b.id, start, 100) not in self._fired:
                    self._used_up.add((b, start))
                    self._wake()
                raise self._refusal(b, start, known, 0, estimate)
        if not self._take(hard, estimate):
            answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(Waiter(hard, estimate, answer))
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
        held = reservation.held  # a tuple of the very window objects: found by identity, nothing hashed
        for w in reservation.windows:
            mine = w in held
            if mine:
                key = (w[0].id, w[1])
                claim = self._claims.get(key)
                if claim is None:
                    claim = self._claims[key] = _Claim()
                # The estimate is given back and the cost takes its place until it is written.
                claim.used += actual - reservation.estimate_nanos
            if actual:
                pending = self._spend.setdefault(w, [0, 0])
                pending[0] += actual
                pending[1] += actual if mine else 0
        if actual and reservation.windows:
            self._settled += 1
        if actual or held:
            self._wake()

    async def release(self, reservation: Reservation | None) -> None:
        """Drop the reservation of a call that failed before costing anything."""
        await self.settle(reservation, 0)

    def wait_written(self, timeout: float) -> bool:
        """From another thread: wait until every cost settled so far is in the counters.

        The recorder waits on it before it writes a batch of records (see
        `axtui.store.recorder.Recorder.add_barrier`). So a call's cost reaches
        its budget counters before its record reaches the spend rollups, and
        `refresh`, which raises a counter to the recorded spend of its scope,
        never counts a call whose cost is still on its way a second time.

        Returns:
            False when the costs are not written within ``timeout`` seconds
            (the database refuses them, or the book is closed).
        """
        target = self._settled

        def written() -> bool:
            return self._written >= target

        if written():
            return True
        loop = self._loop
        if loop is None or self._closed:
            return False
        # Settled costs are written within `_LINGER_S` while calls flow: waiting that long first costs
        # the loop nothing, where hurrying it for every batch of records made a pass (a transaction) each.
        natural = min(timeout, 2 * _LINGER_S)
        with self._written_cond:
            if self._written_cond.wait_for(written, natural):
                return True
        try:
            loop.call_soon_threadsafe(self._hurry)
        except RuntimeError:  # the loop is closed: nothing writes them now
            return False
        with self._written_cond:
            return self._written_cond.wait_for(written, timeout - natural)

    def _hurry(self) -> None:
        self._wake(urgent=True)

    def _wrote(self, upto: int) -> None:
        """The first ``upto`` settled costs are in the store."""
        if upto > self._written:
            with self._written_cond:
                self._written = upto
                self._written_cond.notify_all()

    async def flush(self) -> None:
        """Write every cost settled so far and give back unused room; returns when the store has them."""
        self._wake(urgent=True, everything=True)
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def aclose(self, timeout: float | None = None) -> None:
        """Write what is pending, then wait for webhook deliveries under way (a few seconds at most).

        A database that keeps refusing the counters (full, read-only, locked)
        is waited on for ``timeout`` seconds at most (``lease_s`` when None),
        never for ever: a stop must go on to write the call records. What
        could not be written is logged; the room this process holds comes
        back to the others when its lease runs out, and the calls' costs
        reach the counters from their records at the next refresh.
        """
        try:
            await asyncio.wait_for(self.flush(), self.lease_s if timeout is None else timeout)
        except TimeoutError:
            unwritten = [*self._spend.values(), *(self._passing.spend.values() if self._passing else ())]
            calls = self._settled - self._written
            await cancel_and_wait(self._worker)
            log.error("budget counters: the cost of %d call(s) (%s) could not be written before stopping: %s. "
                      "Refreshes count them from the call records; the room this process reserved comes back "
                      "within budgets.lease_s (%g s)", calls, format_usd(sum(c for c, _ in unwritten), nanos=True),
                      self._last_error or "the database did not answer", self.lease_s)
        self._closed = True
        for timer in (self._idle_timer, self._beat_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._beat_timer = None
        await self.notifier.drain()
        # A pass still running on its thread (the database never answered) holds the lock:
        # its connection goes with the process rather than holding up the stop.
        if self._lock.acquire(blocking=False):
            try:
                self._close_connection()
            finally:
                self._lock.release()

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
        loop = self._loop = asyncio.get_running_loop()
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

    def _beat(self) -> None:
        """Renew this process's leases (and take expired ones of dead processes) while it holds room."""
        self._beat_timer = None
        if any(c.held > 0 or c.used > 0 for c in self._claims.values()):
            self._renew = True
            self._wake(urgent=True)

    def _dispatch(self, now_loop: float, everything: bool) -> Pass | None:
        """Take what is pending into one pass (on the loop); None when nothing is."""
        give_back: dict[Key, int] = {}
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
        for key, nanos in self._returning.items():
            give_back[key] = give_back.get(key, 0) + nanos
        self._returning = {}
        spend, self._spend = self._spend, {}
        renew, self._renew = self._renew, False
        used_up, self._used_up = self._used_up, set()
        if not (spend or give_back or base or waiters or ahead or renew or used_up):
            return None
        # Settled costs leave the store's hold only from the part backing calls (never from the
        # room in transit to the waiters or back to the store).
        holding = {key: c.held for key, c in self._claims.items()}
        return Pass(spend, give_back, base, waiters, chunks, holding, ahead, reclaim=renew, used_up=used_up)

    def _absorb(self, p: Pass) -> None:
        """Apply a committed pass to the claims and answer its waiters (on the loop)."""
        at = asyncio.get_running_loop().time()
        for w, (_, from_claim) in p.spend.items():
            claim = self._claims.get((w[0].id, w[1]))
            if claim is not None:
                claim.used -= from_claim
        for w in p.ahead:
            self._claims.setdefault((w[0].id, w[1]), _Claim()).asking = False
        # The store's word on what this process holds is final: a hold taken because its
        # lease ran out (a stalled process) is gone, whatever the loop believed.
        for key in set(self._claims) | set(p.truth):
            claim = self._claims.setdefault(key, _Claim())
            claim.held = p.truth.get(key, 0) - self._returning.get(key, 0)
        for waiter, refusal in zip(p.waiters, p.refusals, strict=True):
            if refusal is not None:
                if not waiter.answer.done():
                    waiter.answer.set_exception(refusal)
                continue
            if waiter.answer.done():
                continue  # its caller went away: the room stays in the claim
            for b, start in waiter.hard:
                claim = self._claims[(b.id, start)]
                claim.used += waiter.estimate
                self._count(claim, waiter.estimate, at)
            waiter.answer.set_result(None)
        self._known_spent.update(p.spent)
        self._seeded.update(p.seeded)
        self._fired.update(p.attempted)
        if p.reclaimed:
            log.info("took back %s of budget room held by processes whose lease ran out",
                     format_usd(p.reclaimed, nanos=True))
        for alert, webhook in p.fired:
            self.notifier.publish(alert, webhook)

    def _restore(self, p: Pass) -> None:
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
        self._renew = self._renew or p.reclaim
        self._used_up |= p.used_up

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
                self._wrote(self._settled)  # nothing pending: every settled cost is in the store
                break
            upto = self._settled
            self._passing = p
            try:
                now = self.clock.now()
                await asyncio.to_thread(self._db, lambda conn, q=p, t=now: self._ledger.run(conn, q, t))
            except Exception as exc:
                self._passing = None
                why = exc.message if isinstance(exc, AxError) else f"{type(exc).__name__}: {exc}"
                self._last_error = why
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
            self._passing = None
            self._last_error = None
            failures = 0
            self._absorb(p)
            self._wrote(upto)
        if self._idle_timer is None and any(c.free > 0 for c in self._claims.values()):
            self._idle_timer = loop.call_later(_IDLE_S, self._idle)
        if self._beat_timer is None and any(c.held > 0 or c.used > 0 for c in self._claims.values()):
            self._beat_timer = loop.call_later(self.lease_s / 3, self._beat)

    # -- database work (in the worker's thread) ----------------------------------------------

    def _db(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction on this book's own connection, one at a time.

        Keeping one connection saves a pool round trip per transaction; when
        the database refuses (locked, full, damaged, gone away, a deadlock)
        the work is retried through `Store.run`, which waits out locks and
        explains failures. ``work`` must be safe to run again after a rollback.
        """
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self.store.engine.connect()
                with self._conn.begin():
                    return work(self._conn)
            except (InterfaceError, DatabaseError) as exc:
                if isinstance(exc, IntegrityError):
                    raise  # a conflict, not the database failing
                self._close_connection()
                return self.store.run(work)

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                log.debug("budget connection close failed", exc_info=True)
            self._conn = None

    def _crossings(self, conn: Connection, out: Pass, b: BudgetInfo, start: int, spent: int, now: float,
                   used_up: bool = False) -> None:
        """Record the thresholds ``spent`` reached; ``used_up``: a hard budget just refused a call, so it is at 100 %."""
        thresholds = b.thresholds or tuple(self.config.thresholds)
        reached = [t for t in thresholds if t >= 100] if used_up else crossed(thresholds, b.limit_nanos, spent)
        due = [t for t in reached if (b.id, start, t) not in self._fired and (b.id, start, t) not in out.attempted]
        if due:
            webhook = b.webhook or self.config.webhook
            out.fired.extend((a, webhook) for a in record_crossings(conn, b, start, spent, due, now,
                                                                    webhook=bool(webhook), used_up=used_up))
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

