"""Cost tracking on PostgreSQL (CI starts one; skipped without AX_TEST_POSTGRES_URL)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from axtui.clock import FakeClock
from axtui.cost.alerts import alert_events
from axtui.cost.budgets import Scope, budget_status, set_budget
from axtui.cost.enforcement import BudgetBook
from axtui.cost.reports import BREAKDOWNS, breakdown, summary
from axtui.errors import BudgetExceeded
from axtui.store import Store
from axtui.types import Caller, CallRecord, Deployment

from .conftest import record_calls

pytestmark = pytest.mark.postgres
USD = 10**9
T0 = 1_789_948_800.0
DEP = Deployment("openai", "gpt-4o", "gpt-4o")


@pytest.fixture
def pg() -> Iterator[Store]:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        for table in ("calls", "cost_budgets", "cost_budget_windows", "cost_budget_holds", "cost_budget_alerts", "cost_rollup_minute",
                      "cost_rollup_hour", "cost_rollup_day"):
            conn.execute(text(f"DELETE FROM {table}"))
    yield store
    store.close()


def test_rollups_and_reports_on_postgresql(pg: Store) -> None:
    calls = [CallRecord(ts=T0 + i * 61.0, user=f"u{i % 4}", requested_model="m", provider="openai" if i % 3 else "groq",
                        model="gpt-4o" if i % 3 else "llama", deployment="d", key="k" if i % 2 else None,
                        tags=("a",) if i % 5 else (), cost_nanos=None if i == 9 else 1000 + i, latency_ms=100.0 + i)
             for i in range(300)]
    record_calls(pg, calls[:150])
    record_calls(pg, calls[150:])  # the second batch adds into existing rows
    s = summary(pg, T0, T0 + 86400)
    assert s.total_nanos == sum(c.cost_nanos or 0 for c in calls)
    assert s.totals.calls == 300 and s.totals.unknown_price_calls == 1
    for by in BREAKDOWNS:
        assert sum(r.cost_nanos for r in breakdown(pg, by, T0, T0 + 86400).rows) == s.total_nanos, by


async def test_budgets_hold_on_postgresql(pg: Store) -> None:
    clock = FakeClock(T0 + 3600)
    set_budget(pg, Scope("global"), "day", 10 * USD, hard=True, now=clock.now())
    books = [BudgetBook(pg, clock=clock) for _ in range(3)]  # three "processes"
    alice = Caller("alice")

    async def one(book: BudgetBook) -> bool:
        try:
            res = await book.reserve(alice, DEP, USD)
        except BudgetExceeded:
            return False
        await book.settle(res, USD)
        return True

    admitted = await asyncio.gather(*(one(books[i % 3]) for i in range(30)))
    for book in books:
        await book.aclose()
    assert sum(admitted) == 10
    (status,) = budget_status(pg, clock.now())
    assert status.spent_nanos == 10 * USD and status.reserved_nanos == 0
    assert sorted(a.threshold for a in alert_events(pg)) == [50, 80, 100]
