"""Budget enforcement in the engine: reserve, settle, release.

Before a call goes to a deployment, `BudgetBook.reserve` adds the call's
estimated cost to the ``reserved`` counter of every hard budget that
applies, with one conditional UPDATE per budget::

    UPDATE cost_budget_windows SET reserved = reserved + :estimate
    WHERE budget_id = :id AND period_start = :start
      AND spent + reserved + :estimate <= :limit

If any budget has no room, what the call reserved elsewhere is taken back
and the call gets `BudgetExceeded` (the engine then tries the next
deployment, so a free one still serves). The database applies the
condition under its write lock (SQLite) or row lock (PostgreSQL), so
concurrent calls in any number of processes cannot overshoot a hard budget
by more than the estimate error of calls already admitted. `settle` moves
the estimate from ``reserved`` to the real cost in ``spent`` and fires the
alerts it crossed; `release` drops the reservation of a call that failed.

One worker per process does the database work in a thread: whatever
reserves and settles arrive while it writes go together into its next
transaction, so under load a transaction serves many calls. A caller waits
for its reserve; settles and releases are written in the background (the
reservation holds the estimate until then, so nothing is admitted that
would not have been).

A call whose price is unknown, or a free model, reserves nothing and is
never refused by a money budget. Soft budgets are never checked, only
counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import text
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
from axtui.store.tables_cost import BudgetWindow
from axtui.types import Caller, Deployment

__all__ = ["BudgetBook", "Reservation"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]



class _Sql:
    """A statement compiled once per dialect and run on the driver's cursor.

    On the per-call path SQLAlchemy's own work per statement (about 150 µs)
    is ten times the database's; the SQL is still portable, written once and
    compiled by each dialect (UPDATE … RETURNING: SQLite 3.35+, PostgreSQL).
    """

    def __init__(self, sql: str) -> None:
        self.clause = text(sql)
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute with ``params``; the first row, or None."""
        name = conn.dialect.name
        compiled = self._compiled.get(name)
        if compiled is None:
            c = self.clause.compile(dialect=conn.dialect)
            compiled = self._compiled[name] = (c.string, tuple(c.positiontup) if c.positiontup else None)
        sql, order = compiled
        args: Sequence[Any] | Mapping[str, Any] = tuple(params[k] for k in order) if order is not None else params
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, args)
            row = cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()
        return None if row is None else tuple(row)


_RESERVE = _Sql(
    "UPDATE cost_budget_windows SET reserved_nanos = reserved_nanos + :est, updated_at = :now "
    "WHERE budget_id = :bid AND period_start = :start AND spent_nanos + reserved_nanos + :est <= :limit "
    "RETURNING spent_nanos"
)
_SETTLE = _Sql(
    "UPDATE cost_budget_windows SET spent_nanos = spent_nanos + :actual, reserved_nanos = reserved_nanos - :held, "
    "updated_at = :now WHERE budget_id = :bid AND period_start = :start RETURNING spent_nanos"
)
_READ = _Sql(
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


@dataclass(slots=True)
class _Outcome:
    """What one worker transaction did, applied to memory once it committed."""

    refusals: list[BudgetExceeded | None] = field(default_factory=list)
    fired: Fired = field(default_factory=list)
    attempted: set[tuple[int, int, int]] = field(default_factory=set)
    spent: dict[tuple[int, int], int] = field(default_factory=dict)
    seeded: set[tuple[int, int]] = field(default_factory=set)


class BudgetBook:
    """The engine's `Budgets`: budgets from the store, enforced with shared counters.

    Args:
        store: where budgets and their counters live.
        config: time zone, alert thresholds, webhook, refresh interval.
        clock: decides the period a call falls in.
        bus: alerts go to its ``budget`` topic.
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
        self._reserving: list[tuple[tuple[Window, ...], int, asyncio.Future[None]]] = []
        self._settling: list[tuple[Reservation, int]] = []
        self._worker: asyncio.Task[None] | None = None
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
        windows = tuple((b, period_bounds(b.period, now, self.config.timezone)[0]) for b in budgets)
        estimate = estimate_nanos or 0
        hard = tuple(w for w in windows if w[0].hard)
        if estimate <= 0 or not hard:
            return Reservation(windows)
        for b, start in hard:
            known = self._known_spent.get((b.id, start))
            if known is not None and known + estimate > b.limit_nanos:
                raise self._refusal(b, start, known, 0, estimate)
        answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reserving.append((hard, estimate, answer))
        self._wake()
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
        if actual or reservation.held:
            self._settling.append((reservation, actual))
            self._wake()

    async def release(self, reservation: Reservation | None) -> None:
        """Drop the reservation of a call that failed before costing anything (in the background)."""
        await self.settle(reservation, 0)

    async def flush(self) -> None:
        """Wait until every reserve, settle and release made so far has reached the store."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def aclose(self) -> None:
        """Write what is pending, then wait for webhook deliveries under way (a few seconds at most)."""
        await self.flush()
        await self.notifier.drain()
        with self._lock:
            self._close_connection()

    # -- the worker ------------------------------------------------------------------------

    def _wake(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._work())

    async def _work(self) -> None:
        failures = 0
        while self._settling or self._reserving:
            settles, self._settling = self._settling, []
            reserves, self._reserving = self._reserving, []
            asks = [(hard, estimate) for hard, estimate, _ in reserves]
            try:
                now = self.clock.now()
                out = await asyncio.to_thread(
                    self._db, lambda conn, s=settles, a=asks, t=now: self._apply(conn, s, a, t)
                )
            except Exception as exc:
                why = exc.message if isinstance(exc, AxError) else f"{type(exc).__name__}: {exc}"
                err = exc if isinstance(exc, AxError) else StoreError(f"budget counters could not be updated: {why}")
                for _, _, answer in reserves:
                    if not answer.done():
                        answer.set_exception(err)
                failures += 1
                if failures >= 3:
                    log.error("%d budget settles not counted: %s", len(settles), why)
                    failures = 0
                elif settles:
                    # The calls already happened: their spend is retried, not dropped.
                    log.warning("budget settles not written yet (%s); retrying", why)
                    self._settling[:0] = settles
                    await self.clock.sleep(0.5 * failures)
                continue
            failures = 0
            self._known_spent.update(out.spent)
            self._seeded.update(out.seeded)
            self._fired.update(out.attempted)
            for (hard, estimate, answer), refusal in zip(reserves, out.refusals, strict=True):
                if answer.cancelled():
                    if refusal is None:  # its caller went away: give the room back
                        self._settling.append((Reservation(hard, hard, estimate), 0))
                elif refusal is None:
                    answer.set_result(None)
                else:
                    answer.set_exception(refusal)
            for alert, webhook in out.fired:
                self.notifier.publish(alert, webhook)

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

    # -- database work (in the worker's thread) ----------------------------------------------

    def _apply(
        self, conn: Connection, settles: list[tuple[Reservation, int]], reserves: list[tuple[tuple[Window, ...], int]],
        now: float,
    ) -> _Outcome:
        # Settles first: the room they give back is there for the reserves after them.
        out = _Outcome()
        for res, actual in settles:
            self._settle_one(conn, out, res, actual, now)
        for hard, estimate in reserves:
            out.refusals.append(self._reserve_one(conn, out, hard, estimate, now))
        return out

    def _seed(self, conn: Connection, out: _Outcome, b: BudgetInfo, start: int, now: float, *, force: bool) -> None:
        key = (b.id, start)
        if force or (key not in self._seeded and key not in out.seeded):
            seed_window(conn, b.id, b.scope, start, now)
            out.seeded.add(key)

    def _reserve_one(
        self, conn: Connection, out: _Outcome, hard: tuple[Window, ...], estimate: int, now: float
    ) -> BudgetExceeded | None:
        taken: list[Window] = []
        for b, start in hard:
            refusal = self._reserve_window(conn, out, b, start, estimate, now)
            if refusal is not None:
                for tb, tstart in taken:  # all or nothing
                    _SETTLE.run(conn, {"actual": 0, "held": estimate, "now": now, "bid": tb.id, "start": tstart})
                return refusal
            taken.append((b, start))
        return None

    def _reserve_window(
        self, conn: Connection, out: _Outcome, b: BudgetInfo, start: int, estimate: int, now: float
    ) -> BudgetExceeded | None:
        params = {"est": estimate, "now": now, "bid": b.id, "start": start, "limit": b.limit_nanos}
        for attempt in range(2):
            self._seed(conn, out, b, start, now, force=attempt > 0)
            row = _RESERVE.run(conn, params)
            if row is not None:
                out.spent[(b.id, start)] = int(row[0])
                return None
            found = _READ.run(conn, {"bid": b.id, "start": start})
            if found is not None:
                out.spent[(b.id, start)] = int(found[0])
                return self._refusal(b, start, int(found[0]), int(found[1]), estimate)
            # No counter yet (a new period, or one a rolled-back transaction never made): make it, once more.
        raise StoreError(f"budget #{b.id} has no counter for the period starting {start}; it may have been deleted")

    def _settle_one(self, conn: Connection, out: _Outcome, res: Reservation, actual: int, now: float) -> None:
        held = {(b.id, start) for b, start in res.held}
        for b, start in res.windows:
            was_held = (b.id, start) in held
            if not was_held and not actual:
                continue
            params = {"actual": actual, "held": res.estimate_nanos if was_held else 0, "now": now, "bid": b.id,
                      "start": start}
            row = None
            for attempt in range(2):
                if not was_held or attempt:
                    self._seed(conn, out, b, start, now, force=attempt > 0)
                row = _SETTLE.run(conn, params)
                if row is not None:
                    break
            if row is None:
                continue  # the budget was deleted meanwhile
            spent = int(row[0])
            out.spent[(b.id, start)] = spent
            self._crossings(conn, out, b, start, spent, now)

    def _crossings(self, conn: Connection, out: _Outcome, b: BudgetInfo, start: int, spent: int, now: float) -> None:
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

