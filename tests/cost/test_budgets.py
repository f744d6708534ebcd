"""Budgets as data: scopes, amounts, periods, CRUD, status and projections."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axtui.cost.budgets import (
    BudgetNotFound,
    Scope,
    budget_status,
    delete_budget,
    get_budget,
    list_budgets,
    parse_amount,
    parse_thresholds,
    set_budget,
    update_budget,
)
from axtui.cost.periods import period_bounds, period_label
from axtui.cost.projection import forecast_budget, run_rate
from axtui.store import Store
from axtui.types import Caller, CallRecord, Deployment

from .conftest import record_calls

NOW = 1_795_822_200.0  # 2026-11-27 23:30 UTC, a Friday
USD = 10**9


def test_scopes_parse_and_match() -> None:
    dep = Deployment("openai", "gpt-4o", "gpt-4o-2024-08-06")
    alice = Caller("alice", "k_1")
    assert Scope.parse("global").matches(alice, dep)
    assert Scope.parse("provider:openai").matches(alice, dep)
    assert not Scope.parse("provider:azure").matches(alice, dep)
    assert Scope.parse("model:gpt-4o").matches(alice, dep)
    assert Scope.parse("model:gpt-4o-2024-08-06").matches(alice, dep)
    assert Scope.parse("user:alice").matches(alice, dep)
    assert not Scope.parse("user:bob").matches(alice, dep)
    assert Scope.parse("key:k_1").matches(alice, dep)
    assert not Scope.parse("key:k_1").matches(Caller("alice"), dep)
    assert str(Scope.parse("user:alice")) == "user:alice"
    # A team's budget binds the callers of that team only.
    assert Scope.parse("team:red").matches(Caller("alice", team="red"), dep)
    assert not Scope.parse("team:red").matches(Caller("alice", team="blue"), dep)
    assert not Scope.parse("team:red").matches(alice, dep)


@pytest.mark.parametrize("bad", ["org:x", "team:", "user:", "user", "provider :", "nonsense"])
def test_unknown_scopes_are_refused_with_the_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="global, provider:NAME"):
        Scope.parse(bad)


@pytest.mark.parametrize("bad", ["0", "-5", "abc", "", "NaN", "$0.0000000001"])
def test_bad_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_amounts_are_exact_nanos() -> None:
    assert parse_amount("$12.50") == 12_500_000_000
    assert parse_amount("0.000000001") == 1


def test_thresholds_parse_sorted_and_checked() -> None:
    assert parse_thresholds("100, 50,80%") == (50, 80, 100)
    for bad in ("0", "x", "", "2000"):
        with pytest.raises(ValueError):
            parse_thresholds(bad)


def test_periods_in_a_time_zone() -> None:
    start, end = period_bounds("day", NOW, "UTC")
    assert (start, end) == (int(NOW) - 23 * 3600 - 1800, int(NOW) + 1800)
    tokyo = ZoneInfo("Asia/Tokyo")
    start, _ = period_bounds("day", NOW, "Asia/Tokyo")
    assert datetime.fromtimestamp(start, tokyo).isoformat() == "2026-11-28T00:00:00+09:00"
    wstart, wend = period_bounds("week", NOW, "UTC")
    assert datetime.fromtimestamp(wstart, ZoneInfo("UTC")).strftime("%A %d") == "Monday 23"
    assert wend is not None and wend - wstart == 7 * 86400
    assert period_bounds("total", NOW) == (0, None)
    assert period_label("week", NOW) == "2026-W48"


def test_month_across_daylight_saving_has_the_right_length() -> None:
    october = datetime(2026, 10, 15, 12, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    start, end = period_bounds("month", october, "Europe/Paris")
    assert end is not None and end - start == (31 * 24 + 1) * 3600  # clocks go back on 25 October


@given(ts=st.floats(min_value=0, max_value=4_000_000_000), period=st.sampled_from(["day", "week", "month"]),
       tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]))
def test_every_instant_lies_in_its_period(ts: float, period: str, tz: str) -> None:
    start, end = period_bounds(period, ts, tz)
    assert end is not None and start <= ts < end
    assert period_bounds(period, start, tz) == (start, end)


def test_set_creates_then_updates_and_delete_removes(store: Store) -> None:
    info, created = set_budget(store, Scope.parse("user:alice"), "day", 5 * USD, hard=True, now=NOW)
    assert created and info.hard and info.limit_usd == Decimal(5)
    again, created = set_budget(store, Scope.parse("user:alice"), "day", 7 * USD, hard=False, now=NOW)
    assert not created and again.id == info.id and again.limit_nanos == 7 * USD and not again.hard
    other, created = set_budget(store, Scope.parse("user:alice"), "month", 50 * USD, now=NOW)
    assert created and other.id != info.id
    assert [b.id for b in list_budgets(store)] == [info.id, other.id]
    changed = update_budget(store, info.id, thresholds=[90], webhook="https://example.com/h", now=NOW)
    assert changed.thresholds == (90,) and changed.webhook == "https://example.com/h"
    assert update_budget(store, info.id, thresholds=None, webhook=None, now=NOW).thresholds is None
    delete_budget(store, info.id)
    with pytest.raises(BudgetNotFound, match="budget list"):
        get_budget(store, info.id)
    with pytest.raises(BudgetNotFound):
        delete_budget(store, info.id)


def test_a_new_budget_counts_what_the_period_already_spent(store: Store) -> None:
    day_start, _ = period_bounds("day", NOW, "UTC")
    record_calls(store, [
        CallRecord(ts=day_start - 100, user="alice", requested_model="m", cost_nanos=9 * USD),  # yesterday
        CallRecord(ts=day_start + 100, user="alice", requested_model="m", cost_nanos=2 * USD),
        CallRecord(ts=day_start + 200, user="bob", requested_model="m", cost_nanos=1 * USD),
    ])
    set_budget(store, Scope.parse("user:alice"), "day", 5 * USD, now=NOW)
    set_budget(store, Scope("global"), "total", 100 * USD, now=NOW)
    status = {str(s.budget.scope): s for s in budget_status(store, NOW)}
    assert status["user:alice"].spent_nanos == 2 * USD
    assert status["global"].spent_nanos == 12 * USD
    assert not status["user:alice"].over and status["user:alice"].remaining_nanos == 3 * USD


def test_status_projects_when_a_budget_runs_out(store: Store) -> None:
    # $1 a minute for the last 30 minutes against a $100 daily budget with $30 spent.
    record_calls(store, [CallRecord(ts=NOW - 1800 + i * 60, user="u", requested_model="m", cost_nanos=USD)
                         for i in range(30)])
    set_budget(store, Scope("global"), "day", 100 * USD, now=NOW)
    (st_,) = budget_status(store, NOW)
    assert st_.spent_nanos == 30 * USD
    f = st_.forecast
    assert f.rate_nanos_per_hour == 60 * USD
    # 70 dollars left at a dollar a minute would take 70 minutes, but the day ends in 30: no run-out today.
    assert f.runs_out_at is None and f.projected_nanos == 60 * USD
    monthly = forecast_budget(spent_nanos=30 * USD, limit_nanos=100 * USD, rate_per_s=run_rate(30 * USD, 1800),
                              now=NOW, period_end=NOW + 10 * 86400)
    assert monthly.runs_out_at == pytest.approx(NOW + 70 * 60)


def test_forecast_of_a_spent_budget_says_so() -> None:
    f = forecast_budget(spent_nanos=5, limit_nanos=5, rate_per_s=Decimal(1), now=0, period_end=None)
    assert f.exhausted and f.runs_out_at is None and f.projected_nanos is None


def test_run_rate_never_extrapolates_a_burst_of_seconds() -> None:
    assert run_rate(60, 1.0) == run_rate(60, 60.0) == Decimal(1)
    assert run_rate(0, 3600) == 0
