"""A team's budget and limits are scopes like any other: 200 concurrent calls of its members never overshoot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from axtui.clock import FakeClock
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

from .test_budget_races import CALLERS, call_cost, run_race
from .test_enforcement import DEP, ExactProvider, exact_settings, request

RED = CALLERS["team:red"]
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


@pytest.mark.parametrize("processes", [1, 2])
def test_200_calls_of_a_team_over_processes_serve_exactly_its_room(store: Store, processes: int,
                                                                    tmp_path: Path) -> None:
    room = 5
    served, spent = run_race(store.url, processes, room, tmp_path, scope="team:red")
    assert served == room and spent == room * call_cost()
