"""A team's budget and limits are scopes like any other: 200 concurrent calls of its members never overshoot."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path

import pytest

from axtui.clock import SYSTEM_CLOCK, FakeClock
from axtui.config import BudgetsConfig
from axtui.cost.budgets import Scope, budget_status, set_budget
from axtui.cost.reports import breakdown
from axtui.cost.sheet import PriceSheet
from axtui.engine.compose import build_gateway
from axtui.errors import BudgetExceeded, RateLimited
from axtui.governance.standing import standings
from axtui.store import Store
from axtui.store.tables_ratelimit import write_limit
from axtui.tokens import estimate_prompt_tokens
from axtui.types import Caller

from .test_enforcement import DEP, ExactProvider, exact_settings, request

RED = [Caller(user=f"u{i}", key=f"k{i}", team="red") for i in range(5)]
OUTSIDER = Caller(user="carol", key="k9")


async def test_200_concurrent_calls_of_a_team_never_overshoot_its_hard_budget(store: Store) -> None:
    sheet = PriceSheet.load(include_user=False)
    estimate = sheet.estimate(DEP, estimate_prompt_tokens(request(0)), 100)
    assert estimate
    limit = 37 * estimate + estimate // 2  # room for 37 calls and a half
    clock = FakeClock()
    set_budget(store, Scope.parse("team:red"), "day", limit, hard=True, now=clock.now())
    gw = await build_gateway(exact_settings(), store=store, clock=clock,
                             providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    async with gw:
        team_calls = [gw.call(request(i), RED[i % len(RED)]) for i in range(200)]
        others = [gw.call(request(1000 + i), OUTSIDER) for i in range(20)]
        results = await asyncio.gather(*team_calls, *others, return_exceptions=True)
    team, outside = results[:200], results[200:]
    ok = [r for r in team if not isinstance(r, BaseException)]
    refused = [r for r in team if isinstance(r, BudgetExceeded)]
    assert len(ok) == 37 and len(refused) == 163
    assert all(not isinstance(r, BaseException) for r in outside)  # the team's budget is the team's alone
    spent = sum(r.record.cost_nanos for r in ok)
    assert spent <= limit
    (status,) = budget_status(store, clock.now())
    assert status.spent_nanos == spent and status.reserved_nanos == 0
    assert {r.record.team for r in ok} == {"red"}
    # The recorder's rollups group spend by team.
    rows = {row.key: row for row in breakdown(store, "team", clock.now() - 3600, clock.now() + 3600).rows}
    assert rows["red"].cost_nanos == spent
    # What `ax teams list` and `ax keys list` show beside each.
    red = standings(store, "team", clock.now())["red"]
    assert red.spent_nanos == spent and red.budget_used is not None and 0.97 < red.budget_used <= 1.0
    by_key = standings(store, "key", clock.now())
    assert sum(by_key[c.key].spent_nanos for c in RED if c.key in by_key) == spent


async def test_a_teams_rate_limit_holds_across_its_members(store: Store) -> None:
    clock = FakeClock()
    write_limit(store, "team", "red", requests="5/minute", tokens=None, algorithm=None, burst=None, now=clock.now())
    gw = await build_gateway(exact_settings(), store=store, clock=clock,
                             providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    async with gw:
        results = await asyncio.gather(*(gw.call(request(i), RED[i % len(RED)]) for i in range(12)),
                                       return_exceptions=True)
        outside = await gw.call(request(99), OUTSIDER)
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, RateLimited) for r in results if isinstance(r, BaseException))
    assert outside.record.status == "ok"


# -- the race of tests/cost/test_budget_races.py, against a team's budget ---------------------

REFRESH_S = 0.3
CALLS = 200


async def _team_race(url: str, signals: Path, calls: int, offset: int) -> tuple[int, int]:
    settings = exact_settings()
    settings.budgets = BudgetsConfig(refresh_s=REFRESH_S)
    store = Store.open(url)
    try:
        gw = await build_gateway(settings, store=store, providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
        async with gw:
            await gw.budgets.applicable(RED[0], DEP)  # type: ignore[attr-defined]  # budgets read: none yet
            (signals / f"ready-{offset}").touch()
            while not (signals / "go").exists():  # the budget is set meanwhile, then a quiet spell
                await asyncio.sleep(0.01)
            results = await asyncio.gather(*(gw.call(request(offset + i), RED[i % len(RED)]) for i in range(calls)),
                                           return_exceptions=True)
        bad = [r for r in results if isinstance(r, BaseException) and not isinstance(r, BudgetExceeded)]
        assert not bad, bad[:3]
        ok = [r for r in results if not isinstance(r, BaseException)]
        return len(ok), sum(r.record.cost_nanos or 0 for r in ok)
    finally:
        store.close()


def _team_race_in_process(url: str, signals: Path, calls: int, offset: int) -> tuple[int, int]:
    return asyncio.run(_team_race(url, signals, calls, offset))


def _set_when_ready(store: Store, signals: Path, processes: int, limit: int) -> None:
    deadline = time.monotonic() + 60
    while len(list(signals.glob("ready-*"))) < processes:
        assert time.monotonic() < deadline, "the racing gateways did not start"
        time.sleep(0.01)
    set_budget(store, Scope.parse("team:red"), "day", limit, hard=True, now=SYSTEM_CLOCK.now())
    time.sleep(REFRESH_S + 0.1)
    (signals / "go").touch()


@pytest.mark.parametrize("processes", [1, 2])
def test_200_calls_of_a_team_over_processes_serve_exactly_its_room(store: Store, processes: int,
                                                                    tmp_path: Path) -> None:
    room = 5
    cost = PriceSheet.load(include_user=False).estimate(DEP, estimate_prompt_tokens(request(0)), 100)
    assert cost
    if processes == 1:
        async def main() -> tuple[int, int]:
            task = asyncio.ensure_future(_team_race(store.url, tmp_path, CALLS, 0))
            await asyncio.to_thread(_set_when_ready, store, tmp_path, 1, room * cost)
            return await task

        served, spent = asyncio.run(main())
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            share = CALLS // processes
            pending = pool.starmap_async(_team_race_in_process,
                                         [(store.url, tmp_path, share, i * share) for i in range(processes)])
            _set_when_ready(store, tmp_path, processes, room * cost)
            results = pending.get(120)
        served, spent = sum(r[0] for r in results), sum(r[1] for r in results)
    assert served == room and spent == room * cost
