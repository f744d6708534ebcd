"""A hypothesis state machine that tries to break a hard budget's invariant.

Several `BudgetBook`s (each stands for a process) share one store and one
budget. Steps: reserve, settle (at or under the estimate), release, change
the limit, a process dies (its room and calls under way abandoned), and
recovery after the lease. After every step, in the store:

- ``spent + reserved`` never exceeds the limit (after a lowering: what was
  already spent and reserved then, falling to the new limit as it settles);
- ``reserved`` is exactly the sum of the processes' holds;
- once the lease of a dead process has run out, its holds are gone and
  every live process holds exactly what its calls under way reserved.

The machine is deterministic, so hypothesis can replay and shrink what it
finds: the event loop runs on the fake clock (the books' idle and lease
timers fire when the machine lets time pass, never by the wall clock), and
every step ends with no transaction under way in a worker thread (a pass
still running when a step returned would commit while the next one reads).
The counters are read in one statement, so one snapshot of the store.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import literal, select, union_all

from axtui.clock import FakeClock
from axtui.config import BudgetsConfig
from axtui.cost import enforcement
from axtui.cost.budgets import Scope, set_budget, update_budget
from axtui.cost.enforcement import BudgetBook, Reservation
from axtui.errors import BudgetExceeded
from axtui.store import Store
from axtui.store.tables_cost import BudgetHold, BudgetWindow
from axtui.types import Caller, Deployment

DEP = Deployment("openai", "gpt-4o-mini", "gpt-4o-mini")
LEASE = 10.0
REFRESH = 2.0
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]
_HOLDS = BudgetHold.__table__  # type: ignore[attr-defined]


class _FakeTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose timers run on ``clock``: they fire when the machine advances it."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    def time(self) -> float:
        return self._clock.monotonic()


@functools.cache
def _migrated() -> Path:
    """An empty migrated store, made once and copied for each example (migrating takes a while)."""
    path = Path(tempfile.mkdtemp(prefix="ax-budget-machine-template-")) / "ax.db"
    Store.open(f"sqlite:///{path}").close()
    return path


class BudgetMachine(RuleBasedStateMachine):
    """Processes reserving against one hard budget, some of them dying."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.loop = _FakeTimeLoop(self.clock)
        self._linger, enforcement._LINGER_S = enforcement._LINGER_S, 0.0  # no naps between passes
        self.folder = Path(tempfile.mkdtemp(prefix="ax-budget-machine-"))
        shutil.copy(_migrated(), self.folder / "ax.db")
        self.store = Store.open(f"sqlite:///{self.folder / 'ax.db'}")
        self.books: list[BudgetBook] = []
        self.inflight: list[tuple[BudgetBook, Reservation, int]] = []
        self.dead: list[BudgetBook] = []
        self.died_at: float | None = None
        self.limit = 0
        self.bound = 0
        self.budget_id = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def quiet(self) -> None:
        """Let every book finish its passes (and refreshes): no transaction is left under way."""
        self.run(_quiet(self.books + self.dead))

    def tick(self, seconds: float) -> None:
        """Let fake time pass; the living renew their leases first (as their timers would)."""
        for book in self.books:
            self.run(_renew(book))
        self.clock.advance(seconds)

    def new_book(self) -> BudgetBook:
        book = BudgetBook(self.store, BudgetsConfig(refresh_s=REFRESH), clock=self.clock, lease_s=LEASE)
        self.books.append(book)
        return book

    def counters(self) -> tuple[int, int, dict[str, int]]:
        """``spent``, ``reserved`` and the holds, read in one statement once no pass is under way."""
        self.quiet()
        rows = self.store.run(lambda conn: conn.execute(_COUNTERS).all())
        window = next(((int(r[1]), int(r[2])) for r in rows if r[0] is None), (0, 0))
        by_holder: dict[str, int] = {}
        for holder, nanos, _ in rows:
            if holder is not None:
                by_holder[holder] = by_holder.get(holder, 0) + int(nanos)
        return window[0], window[1], by_holder

    @initialize(limit=st.integers(1, 400), processes=st.integers(1, 3))
    def start(self, limit: int, processes: int) -> None:
        self.limit = self.bound = limit
        budget, _ = set_budget(self.store, Scope("global"), "day", limit, hard=True, now=self.clock.now())
        self.budget_id = budget.id
        for _ in range(processes):
            self.new_book()

    @precondition(lambda self: bool(self.books))
    @rule(which=st.integers(0, 10), estimate=st.integers(1, 60))
    def reserve(self, which: int, estimate: int) -> None:
        book = self.books[which % len(self.books)]
        try:
            res = self.run(book.reserve(Caller("alice"), DEP, estimate))
        except BudgetExceeded:
            return
        assert res is not None and res.held
        self.inflight.append((book, res, estimate))

    @precondition(lambda self: bool(self.inflight))
    @rule(which=st.integers(0, 100), cheaper=st.integers(0, 100))
    def settle(self, which: int, cheaper: int) -> None:
        book, res, estimate = self.inflight.pop(which % len(self.inflight))
        actual = estimate - min(estimate, cheaper) * (cheaper % 2)  # at or under the estimate
        self.run(book.settle(res, actual))

    @precondition(lambda self: bool(self.inflight))
    @rule(which=st.integers(0, 100))
    def release(self, which: int) -> None:
        book, res, _ = self.inflight.pop(which % len(self.inflight))
        self.run(book.release(res))

    @precondition(lambda self: bool(self.books))
    @rule(which=st.integers(0, 10))
    def flush(self, which: int) -> None:
        self.run(self.books[which % len(self.books)].flush())

    @rule(limit=st.integers(1, 400))
    def change_limit(self, limit: int) -> None:
        spent, reserved, _ = self.counters()
        update_budget(self.store, self.budget_id, limit_nanos=limit, now=self.clock.now())
        self.limit = limit
        self.bound = max(limit, spent + reserved)
        self.tick(REFRESH)  # the documented delay: every book reads the change before its next call

    @precondition(lambda self: bool(self.books))
    @rule(which=st.integers(0, 10))
    def process_dies(self, which: int) -> None:
        # A hard kill between two of its transactions (the database commits one whole or not at
        # all): nothing more is written, no lease renewed; its calls under way are lost with it.
        # Its worker is idle first: a pass whose task were cancelled would still run in its
        # thread, so the dead process would go on writing while the machine reads.
        self.quiet()
        book = self.books.pop(which % len(self.books))
        for timer in (book._idle_timer, book._beat_timer):
            if timer is not None:
                timer.cancel()
        book._idle_timer = book._beat_timer = None
        with book._lock:  # its connection goes with it
            book._close_connection()
        self.inflight = [x for x in self.inflight if x[0] is not book]
        self.dead.append(book)
        self.died_at = self.clock.now()
        self.tick(1.0)

    @precondition(lambda self: self.died_at is not None)
    @rule()
    def lease_runs_out(self) -> None:
        assert self.died_at is not None
        if not self.books:
            self.new_book()
        for book in self.books:  # the living renew their leases
            self.run(book.flush())
        end = self.died_at + LEASE + 0.5
        while self.clock.now() < end:  # time passes, and the living's lease timers fire as it does
            self.clock.advance(min(REFRESH, end - self.clock.now()))
            self.quiet()
        survivor = self.books[0]
        survivor._renew = True
        self.run(survivor.flush())
        for book in self.books:
            self.run(book.flush())
        _, reserved, holds = self.counters()
        dead = {b.holder for b in self.dead}
        assert not dead & {h for h, n in holds.items() if n}, "a dead process still holds room"
        for book in self.books:
            mine = sum(est for b, _, est in self.inflight if b is book)
            assert holds.get(book.holder, 0) == mine, (book.holder, holds, mine)
        assert reserved == sum(holds.values())
        self.died_at = None

    @invariant()
    def never_past_the_limit(self) -> None:
        if not self.budget_id:
            return
        spent, reserved, holds = self.counters()
        assert spent + reserved <= self.bound, (spent, reserved, self.bound, self.limit)
        assert reserved == sum(holds.values()), (reserved, holds)
        for book in self.books:  # every call under way is backed by its process's hold
            mine = sum(est for b, _, est in self.inflight if b is book)
            assert mine <= holds.get(book.holder, 0), (mine, holds, book.holder)
        self.bound = max(self.limit, min(self.bound, spent + reserved))

    def teardown(self) -> None:
        for book in self.books:
            self.run(book.aclose())
        self.loop.close()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        enforcement._LINGER_S = self._linger


_COUNTERS = union_all(
    select(literal(None), _WINDOWS.c.spent_nanos, _WINDOWS.c.reserved_nanos),
    select(_HOLDS.c.holder, _HOLDS.c.held_nanos, literal(None)),
)


async def _quiet(books: list[BudgetBook]) -> None:
    while True:
        for _ in range(2):  # timers that are due run (and may wake a worker)
            await asyncio.sleep(0)
        busy = [t for b in books for t in (b._worker, b._refreshing) if t is not None and not t.done()]
        if not busy:
            return
        await asyncio.wait(busy)


async def _renew(book: BudgetBook) -> None:
    book._renew = True
    book._wake(urgent=True)
    while book._worker is not None and not book._worker.done():
        await asyncio.shield(book._worker)


BudgetMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_budget_machine = BudgetMachine.TestCase
