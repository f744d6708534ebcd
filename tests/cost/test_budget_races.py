"""Hard budgets under 200 concurrent calls: one process, two processes, SQLite and PostgreSQL.

Every call here costs exactly its estimate, so any call served beyond the
budget's room is an admission error, never an estimation one. The budget is
created while the gateways run, after they last read the budgets: the race
the issue reported (a burst after a quiet spell ran with no budget at all).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from axtui.clock import SYSTEM_CLOCK
from axtui.config import BudgetsConfig
from axtui.cost.budgets import Scope, delete_budget, get_budget, set_budget, update_budget
from axtui.cost.sheet import PriceSheet
from axtui.engine.compose import build_gateway
from axtui.errors import BudgetExceeded
from axtui.store import Store
from axtui.store.tables_cost import BudgetHold, BudgetWindow
from axtui.tokens import estimate_prompt_tokens
from axtui.types import Caller

from .test_enforcement import ALICE, DEP, ExactProvider, exact_settings, request

REFRESH_S = 0.3
#: Gateways that would read the budgets again only this long after: a change must reach them at once.
NEVER_S = 3600.0
CALLS = 200


def call_cost() -> int:
    """What each test call costs (and is estimated to cost)."""
    cost = PriceSheet.load(include_user=False).estimate(DEP, estimate_prompt_tokens(request(0)), 100)
    assert cost
    return cost


def counters(store: Store) -> tuple[int, int, int]:
    """(spent, reserved, sum of holds) of the one budget window."""
    w, h = BudgetWindow.__table__, BudgetHold.__table__  # type: ignore[attr-defined]

    def read(conn):  # type: ignore[no-untyped-def]
        spent, reserved = conn.execute(select(w.c.spent_nanos, w.c.reserved_nanos)).one()
        held = conn.execute(select(h.c.held_nanos)).scalars().all()
        return int(spent), int(reserved), int(sum(held))

    return store.run(read)  # type: ignore[no-any-return]


#: Who makes the calls against each budget scope the races set.
CALLERS = {"global": [ALICE], "team:red": [Caller(user=f"u{i}", key=f"k{i}", team="red") for i in range(5)]}


async def _race(url: str, signals: Path, calls: int, offset: int, scope: str, refresh_s: float) -> tuple[int, int]:
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=refresh_s)
    store = Store.open(url)
    try:
        gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
        async with gw:
            callers = CALLERS[scope]
            await gw.budgets.applicable(callers[0], DEP)  # type: ignore[attr-defined]  # budgets read: none yet
            (signals / f"ready-{offset}").touch()
            while not (signals / "go").exists():  # the budget is set meanwhile, then a quiet spell
                await asyncio.sleep(0.01)
            results = await asyncio.gather(*(gw.call(request(offset + i), callers[i % len(callers)])
                                             for i in range(calls)), return_exceptions=True)
        bad = [r for r in results if isinstance(r, BaseException) and not isinstance(r, BudgetExceeded)]
        assert not bad, bad[:3]
        ok = [r for r in results if not isinstance(r, BaseException)]
        return len(ok), sum(r.record.cost_nanos or 0 for r in ok)
    finally:
        store.close()


def _race_in_process(url: str, signals: Path, calls: int, offset: int, scope: str, refresh_s: float) -> tuple[int, int]:
    return asyncio.run(_race(url, signals, calls, offset, scope, refresh_s))


def _set_when_ready(store: Store, signals: Path, processes: int, limit: int, scope: str, wait_s: float) -> None:
    deadline = time.monotonic() + 60
    while len(list(signals.glob("ready-*"))) < processes:
        assert time.monotonic() < deadline, "the racing gateways did not start"
        time.sleep(0.01)
    set_budget(store, Scope.parse(scope), "day", limit, hard=True, now=SYSTEM_CLOCK.now())
    time.sleep(wait_s)
    (signals / "go").touch()


def run_race(
    url: str, processes: int, room: int, signals: Path, scope: str = "global", *, at_once: bool = False
) -> tuple[int, int]:
    """200 calls split over ``processes``, against a budget of ``scope`` set after they last read the budgets.

    The calls start ``refresh_s`` after the budget is set, or, ``at_once``, right after it, in
    gateways that would not read the budgets again for an hour (the change's marker must tell them).
    """
    cost = call_cost()
    refresh_s, wait_s = (NEVER_S, 0.0) if at_once else (REFRESH_S, REFRESH_S + 0.1)
    store = Store.open(url)
    try:
        if processes == 1:
            async def main() -> tuple[int, int]:
                task = asyncio.ensure_future(_race(url, signals, CALLS, 0, scope, refresh_s))
                await asyncio.to_thread(_set_when_ready, store, signals, 1, room * cost, scope, wait_s)
                return await task

            served, spent = asyncio.run(main())
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(processes) as pool:
                share = CALLS // processes
                pending = pool.starmap_async(_race_in_process, [(url, signals, share, i * share, scope, refresh_s)
                                                                for i in range(processes)])
                _set_when_ready(store, signals, processes, room * cost, scope, wait_s)
                results = pending.get(120)
            served, spent = sum(r[0] for r in results), sum(r[1] for r in results)
        assert counters(store) == (spent, 0, 0)  # everything settled, nothing left held
    finally:
        store.close()
    assert spent == served * cost
    return served, spent


@pytest.mark.parametrize("room", [1, 5, 20])
def test_one_process_serves_exactly_the_budgets_room(store: Store, room: int, tmp_path: Path) -> None:
    served, _ = run_race(store.url, 1, room, tmp_path)
    assert served == room


@pytest.mark.processes
@pytest.mark.parametrize("room", [1, 5, 20])
def test_two_processes_on_one_sqlite_file_serve_exactly_the_room(store: Store, room: int, tmp_path: Path) -> None:
    served, _ = run_race(store.url, 2, room, tmp_path)
    assert served == room


@pytest.fixture
def pg() -> Iterator[Store]:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        for table in ("calls", "cost_budgets", "cost_budget_windows", "cost_budget_holds", "cost_budget_alerts",
                      "cost_rollup_minute", "cost_rollup_hour", "cost_rollup_day"):
            conn.execute(text(f"DELETE FROM {table}"))
    yield store
    store.close()


@pytest.mark.postgres
@pytest.mark.processes
@pytest.mark.parametrize("room", [1, 5, 20])
def test_two_processes_on_postgresql_serve_exactly_the_room(pg: Store, room: int, tmp_path: Path) -> None:
    served, _ = run_race(pg.url, 2, room, tmp_path)
    assert served == room


@pytest.mark.postgres
def test_one_process_on_postgresql_serves_exactly_the_room(pg: Store, tmp_path: Path) -> None:
    served, _ = run_race(pg.url, 1, 5, tmp_path)
    assert served == 5


# -- the budget changed mid-race ----------------------------------------------------------------------


async def test_a_budget_lowered_mid_race_refuses_every_call_after_the_delay(store: Store) -> None:
    cost = call_cost()
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=REFRESH_S)
    budget, _ = set_budget(store, Scope("global"), "day", 150 * cost, hard=True, now=SYSTEM_CLOCK.now())
    gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"],
                                                                                       delay=0.05)})
    async with gw:
        first = [asyncio.ensure_future(gw.call(request(i), ALICE)) for i in range(100)]
        await asyncio.sleep(0.02)  # the first calls are under way
        update_budget(store, budget.id, limit_nanos=10 * cost, now=SYSTEM_CLOCK.now())  # below what is reserved
        await asyncio.sleep(REFRESH_S)
        later = await asyncio.gather(*(gw.call(request(1000 + i), ALICE) for i in range(100)),
                                     return_exceptions=True)
        await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(r, BudgetExceeded) for r in later)
    spent, reserved, held = counters(store)
    assert spent <= 100 * cost and (reserved, held) == (0, 0)


async def test_a_budget_raised_mid_race_serves_exactly_the_new_room(store: Store) -> None:
    cost = call_cost()
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=REFRESH_S)
    budget, _ = set_budget(store, Scope("global"), "day", 10 * cost, hard=True, now=SYSTEM_CLOCK.now())
    gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    async with gw:
        first = await asyncio.gather(*(gw.call(request(i), ALICE) for i in range(100)), return_exceptions=True)
        update_budget(store, budget.id, limit_nanos=35 * cost, now=SYSTEM_CLOCK.now())
        await asyncio.sleep(REFRESH_S)
        later = await asyncio.gather(*(gw.call(request(1000 + i), ALICE) for i in range(100)),
                                     return_exceptions=True)
    served = [r for r in (*first, *later) if not isinstance(r, BaseException)]
    assert len([r for r in first if not isinstance(r, BaseException)]) == 10
    assert len(served) == 35
    assert counters(store) == (35 * cost, 0, 0)
    assert get_budget(store, budget.id).limit_nanos == 35 * cost


async def test_a_budget_deleted_mid_race_stops_refusing_after_the_delay(store: Store) -> None:
    cost = call_cost()
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=REFRESH_S)
    budget, _ = set_budget(store, Scope("global"), "day", 3 * cost, hard=True, now=SYSTEM_CLOCK.now())
    gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    async with gw:
        first = await asyncio.gather(*(gw.call(request(i), ALICE) for i in range(50)), return_exceptions=True)
        delete_budget(store, budget.id)
        await asyncio.sleep(REFRESH_S)
        later = await asyncio.gather(*(gw.call(request(1000 + i), ALICE) for i in range(50)),
                                     return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in first) == 3
    assert not [r for r in later if isinstance(r, BaseException)]


# -- on the machine where it is made, a change applies to the next call ---------------------------------------


@pytest.mark.parametrize("room", [1, 5])
def test_a_budget_set_applies_to_the_very_next_calls_of_a_running_gateway(store: Store, room: int,
                                                                           tmp_path: Path) -> None:
    served, _ = run_race(store.url, 1, room, tmp_path, at_once=True)
    assert served == room


@pytest.mark.processes
def test_a_budget_set_applies_at_once_in_every_process_on_the_sqlite_file(store: Store, tmp_path: Path) -> None:
    served, _ = run_race(store.url, 2, 5, tmp_path, at_once=True)
    assert served == 5


@pytest.mark.postgres
@pytest.mark.processes
def test_a_budget_set_applies_at_once_in_every_process_of_this_machine_on_postgresql(pg: Store,
                                                                                     tmp_path: Path) -> None:
    served, _ = run_race(pg.url, 2, 5, tmp_path, at_once=True)
    assert served == 5


async def test_raising_lowering_and_deleting_a_budget_apply_to_the_next_call(store: Store) -> None:
    cost = call_cost()
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=NEVER_S)
    gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    served: list[int] = []

    async def burst(n: int) -> None:
        start = len(served) * 100  # prompts as long as call_cost's: each costs exactly that
        results = await asyncio.gather(*(gw.call(request(start + i), ALICE) for i in range(n)),
                                       return_exceptions=True)
        assert all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
        served.append(sum(not isinstance(r, BaseException) for r in results))

    async with gw:
        await gw.budgets.applicable(ALICE, DEP)  # type: ignore[attr-defined]  # read: no budget yet
        budget, _ = set_budget(store, Scope("global"), "day", 4 * cost, hard=True, now=SYSTEM_CLOCK.now())
        await burst(10)
        update_budget(store, budget.id, limit_nanos=6 * cost, now=SYSTEM_CLOCK.now())
        await burst(10)
        update_budget(store, budget.id, limit_nanos=2 * cost, now=SYSTEM_CLOCK.now())
        await burst(5)
        delete_budget(store, budget.id)
        await burst(5)
    assert served == [4, 2, 0, 5]


def test_a_change_that_cannot_mark_this_machine_still_lands_and_says_when_it_applies(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import axtui.cost.budgets as budgets

    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("")
    marker = budgets.budget_marker(store)
    marker.path = blocked / "budgets.changed"
    monkeypatch.setattr(budgets, "budget_marker", lambda _store: marker)
    info, created = set_budget(store, Scope("global"), "day", 5 * call_cost(), hard=True, now=SYSTEM_CLOCK.now())
    assert created and get_budget(store, info.id).limit_nanos == 5 * call_cost()
    assert "could not mark the change" in caplog.text and "budgets.refresh_s" in caplog.text
