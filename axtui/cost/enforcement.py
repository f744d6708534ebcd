"""Budget enforcement in the engine: reserve, settle, release.

Before a call goes to a deployment, `BudgetBook.reserve` adds the call's
estimated cost to the ``reserved`` counter of every hard budget that
applies, with one conditional UPDATE per budget::

    UPDATE cost_budget_windows SET reserved = reserved + :estimate
    WHERE budget_id = :id AND period_start = :start
      AND spent + reserved + :estimate <= :limit

all in one transaction: if any budget has no room, nothing is reserved and
the call gets `BudgetExceeded` (the engine then tries the next deployment,
so a free one still serves). The database applies the condition under its
write lock (SQLite) or row lock (PostgreSQL), so concurrent calls in any
number of processes cannot overshoot a hard budget by more than the
estimate error of calls already admitted. `settle` then moves the
estimate from ``reserved`` to the real cost in ``spent`` and fires the
alerts it crossed; `release` drops the reservation of a call that failed.

A call whose price is unknown, or a free model, reserves nothing and is
never refused by a money budget. Soft budgets are never checked, only
counted. Database work runs in a worker thread, one at a time per process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from axtui.bus import EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import BudgetsConfig
from axtui.cost.alerts import AlertNotifier, BudgetAlert, crossed, record_crossings
from axtui.cost.budgets import BudgetInfo, list_budgets, scope_spend, seed_window
from axtui.cost.periods import period_bounds
from axtui.errors import AxError, BudgetExceeded
from axtui.money import format_usd
from axtui.store import Store
from axtui.store.tables_cost import BudgetWindow
from axtui.types import Caller, Deployment

__all__ = ["BudgetBook", "Reservation"]

log = logging.getLogger(__name__)
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Reservation:
    """What `BudgetBook.reserve` holds for one call.

    ``windows`` are the (budget, period start) counters the call counts
    against; ``held`` the subset where ``estimate_nanos`` was reserved.
    """

    windows: tuple[tuple[BudgetInfo, int], ...]
    held: tuple[tuple[BudgetInfo, int], ...] = ()
    estimate_nanos: int = 0
    done: bool = field(default=False)


class BudgetBook:
    """The engine's `Budgets`: budgets from the store, enforced with shared counters.

    Args:
        store: where budgets and their counters live.
        config: time zone, alert thresholds, webhook.
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
        self._loaded_at: float | None = None
        # Spend only grows within a period, so a counter seen full stays full:
        # refuse from memory instead of asking the database again.
        self._known_spent: dict[tuple[int, int], int] = {}
        self._fired: set[tuple[int, int, int]] = set()
        self._refreshing: asyncio.Future[None] | None = None

    # -- the budgets in force ------------------------------------------------------------

    def refresh(self) -> list[BudgetInfo]:
        """Re-read the budgets and reconcile their counters with the recorded spend.

        Runs every ``budgets.refresh_s`` on its own. Reconciling raises a
        counter to what the rollups recorded for its scope this period, so
        spend that reached no counter (a call another process made before it
        saw the budget) still counts.
        """
        with self._lock:
            budgets = list_budgets(self.store)
            self.store.run(lambda conn: self._reconcile(conn, budgets, self.clock.now()))
        self._budgets = budgets
        self._loaded_at = self.clock.monotonic()
        return budgets

    def _reconcile(self, conn: Connection, budgets: list[BudgetInfo], now: float) -> None:
        for b in budgets:
            start = period_bounds(b.period, now, self.config.timezone)[0]
            counted = conn.execute(
                select(_WINDOWS.c.spent_nanos).where(_WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start)
            ).scalar()
            if counted is None:
                continue  # created, and seeded from the rollups, by the first call of the period
            recorded = scope_spend(conn, b.scope, start, now)
            if recorded > counted:
                # Only ever raised (a concurrent settle may have raised it further meanwhile).
                conn.execute(
                    _WINDOWS.update()
                    .where(_WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start,
                           _WINDOWS.c.spent_nanos < recorded)
                    .values(spent_nanos=recorded, updated_at=now)
                )
                counted = recorded
            self._known_spent[(b.id, start)] = int(counted)

    async def _current(self) -> list[BudgetInfo]:
        stale = self._loaded_at is None or self.clock.monotonic() - self._loaded_at >= self.config.refresh_s
        task = self._refreshing
        if stale and (task is None or task.done() or task.get_loop() is not asyncio.get_running_loop()):
            # One refresh at a time; every call arriving meanwhile waits for it rather than
            # slipping through with no budgets known.
            task = self._refreshing = asyncio.ensure_future(self._refresh_async())
        if task is not None and not task.done():
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
        await asyncio.to_thread(self._locked, self._reserve_in, hard, estimate, now)
        return Reservation(windows, hard, estimate)

    async def settle(self, reservation: Reservation | None, actual_nanos: int | None) -> None:
        """Replace the reservation with the real cost (None, an unknown price, counts as nothing)."""
        if reservation is None or reservation.done:
            return
        reservation.done = True
        actual = max(0, actual_nanos or 0)
        if not actual and not reservation.held:
            return
        try:
            fired = await asyncio.to_thread(self._locked, self._settle_in, reservation, actual, self.clock.now())
        except AxError as exc:  # the call already happened; losing its count must not fail it
            log.error("budget spend of %d nano-dollars not counted: %s", actual, exc.message)
            return
        for alert, webhook in fired:
            self.notifier.publish(alert, webhook)

    async def release(self, reservation: Reservation | None) -> None:
        """Drop the reservation of a call that failed before costing anything."""
        if reservation is None or reservation.done:
            return
        reservation.done = True
        if not reservation.held:
            return
        try:
            await asyncio.to_thread(self._locked, self._release_in, reservation, self.clock.now())
        except AxError as exc:
            log.error("budget reservation not released: %s", exc.message)

    async def aclose(self) -> None:
        """Wait for webhook deliveries under way (a few seconds at most)."""
        await self.notifier.drain()

    # -- database work (in a worker thread, one at a time) -----------------------------------

    def _locked(self, fn, *args):  # type: ignore[no-untyped-def]
        with self._lock:
            return self.store.run(lambda conn: fn(conn, *args))

    def _reserve_in(self, conn: Connection, hard: tuple[tuple[BudgetInfo, int], ...], estimate: int, now: float) -> None:
        for b, start in hard:
            seed_window(conn, b.id, b.scope, start, now)
            row = conn.execute(
                _WINDOWS.update()
                .where(
                    _WINDOWS.c.budget_id == b.id,
                    _WINDOWS.c.period_start == start,
                    _WINDOWS.c.spent_nanos + _WINDOWS.c.reserved_nanos + estimate <= b.limit_nanos,
                )
                .values(reserved_nanos=_WINDOWS.c.reserved_nanos + estimate, updated_at=now)
                .returning(_WINDOWS.c.spent_nanos)
            ).first()
            if row is None:
                spent, reserved = conn.execute(
                    select(_WINDOWS.c.spent_nanos, _WINDOWS.c.reserved_nanos).where(
                        _WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start
                    )
                ).one()
                self._known_spent[(b.id, start)] = int(spent)
                # Raising rolls the whole transaction back: no budget keeps a partial reservation.
                raise self._refusal(b, start, int(spent), int(reserved), estimate)
            self._known_spent[(b.id, start)] = int(row[0])

    def _settle_in(
        self, conn: Connection, res: Reservation, actual: int, now: float
    ) -> list[tuple[BudgetAlert, str | None]]:
        held = {(b.id, start) for b, start in res.held}
        fired: list[tuple[BudgetAlert, str | None]] = []
        for b, start in res.windows:
            was_held = (b.id, start) in held
            if not was_held:
                if not actual:
                    continue
                seed_window(conn, b.id, b.scope, start, now)
            row = conn.execute(
                _WINDOWS.update()
                .where(_WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start)
                .values(
                    spent_nanos=_WINDOWS.c.spent_nanos + actual,
                    reserved_nanos=_WINDOWS.c.reserved_nanos - (res.estimate_nanos if was_held else 0),
                    updated_at=now,
                )
                .returning(_WINDOWS.c.spent_nanos)
            ).first()
            if row is None:
                continue  # the budget was deleted meanwhile
            spent = int(row[0])
            self._known_spent[(b.id, start)] = spent
            fired.extend(self._crossings(conn, b, start, spent, now))
        return fired

    def _crossings(
        self, conn: Connection, b: BudgetInfo, start: int, spent: int, now: float
    ) -> list[tuple[BudgetAlert, str | None]]:
        thresholds = b.thresholds or tuple(self.config.thresholds)
        due = [t for t in crossed(thresholds, b.limit_nanos, spent) if (b.id, start, t) not in self._fired]
        if not due:
            return []
        webhook = b.webhook or self.config.webhook
        new = record_crossings(conn, b, start, spent, due, now, webhook=bool(webhook))
        self._fired.update((b.id, start, t) for t in due)
        return [(a, webhook) for a in new]

    def _release_in(self, conn: Connection, res: Reservation, now: float) -> None:
        for b, start in res.held:
            conn.execute(
                _WINDOWS.update()
                .where(_WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start)
                .values(reserved_nanos=_WINDOWS.c.reserved_nanos - res.estimate_nanos, updated_at=now)
            )

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
