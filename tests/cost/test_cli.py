"""`ax cost …` as a user runs it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from click.testing import CliRunner, Result

from axtui.cli import main
from axtui.cost.budgets import list_budgets
from axtui.store import Store
from axtui.types import CallRecord

from .conftest import record_calls


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    """Tables as a wide terminal shows them (the test runner's default is 80 columns)."""
    from axtui.cli._common import console

    before = console.width
    console.width = 200
    yield
    console.width = before


def ax(*args: str) -> Result:
    return CliRunner().invoke(main, ["cost", *args])


def seed(store: Store) -> list[CallRecord]:
    now = time.time()
    calls = [
        CallRecord(ts=now - 60 * i, user=f"u{i % 3}", key="k_1" if i % 2 else None, tags=("team-a",) if i % 4 else (),
                   requested_model="gpt-4o", provider="openai" if i % 5 else "anthropic",
                   model="gpt-4o" if i % 5 else "claude-haiku-4-5", deployment="d",
                   cost_nanos=None if i == 7 else 1000 * i + 1, input_tokens=100, output_tokens=10,
                   cache="exact" if i == 3 else "miss", saved_nanos=555 if i == 3 else None)
        for i in range(40)
    ]
    record_calls(store, calls)
    return calls


def test_summary_json_is_the_exact_sum_of_the_calls(store: Store) -> None:
    calls = seed(store)
    result = ax("summary", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = sum(c.cost_nanos or 0 for c in calls)
    assert Decimal(data["total_usd"]) * 10**9 == expected
    assert data["calls"] == 40
    assert data["input_tokens"] == 4000 and data["output_tokens"] == 400
    assert data["cache_savings_usd"] == "0.000000555"
    assert data["unknown_price_calls"] == 1
    assert set(data["projection"]) >= {"end_of_day_usd", "end_of_month_usd", "rate_usd_per_hour"}
    for by in ("provider", "model", "user", "key", "tag", "day", "week", "month"):
        out = ax("breakdown", "--by", by, "--json")
        assert out.exit_code == 0, out.output
        rows = json.loads(out.output)["rows"]
        assert sum(Decimal(r["cost_usd"]) for r in rows) * 10**9 == expected, by


def test_summary_and_breakdown_read_well(store: Store) -> None:
    seed(store)
    text = ax("summary").output
    assert "over 40 calls" in text and "unknown price" in text and "Top models" in text
    table = ax("breakdown", "--by", "model").output
    assert "gpt-4o" in table and "claude-haiku-4-5" in table and "total" in table


def test_breakdown_rejects_bad_times_and_groupings() -> None:
    assert ax("breakdown", "--since", "last tuesday").exit_code == 2
    bad = ax("breakdown", "--since", "now", "--until", "1d")
    assert bad.exit_code == 2 and "must be after" in bad.output
    assert ax("breakdown", "--by", "colour").exit_code == 2


def test_estimate_agrees_with_hand_computed_prices() -> None:
    result = ax("estimate", "gpt-4o", "--input", "12345", "--cached-input", "2000", "--output", "500", "--json")
    assert result.exit_code == 0, result.output
    # 10,345 × $2.50 + 2,000 × $1.25 + 500 × $10, per million tokens.
    assert json.loads(result.output)["cost_usd"] == "0.0333625"
    haiku = ax("estimate", "claude-haiku-4-5", "--input", "10000", "--cache-write", "4000", "--cache-write-1h", "1000",
               "--output", "100", "--json")
    # 6,000 × 1 + 3,000 × 1.25 + 1,000 × 2 + 100 × 5.
    assert json.loads(haiku.output)["cost_usd"] == "0.01225"
    text = ax("estimate", "gpt-4o-mini", "--input", "1000", "--output", "1000", "--batch").output
    assert "batch discount" in text


def test_estimate_of_a_free_local_model_is_zero() -> None:
    result = ax("estimate", "llama3.1:8b", "--input", "1000", "--output", "1000", "--json")
    assert json.loads(result.output)["cost_usd"] == "0"


@pytest.mark.parametrize("args", [
    ["gpt-4o", "--input", "10", "--cached-input", "20", "--output", "1"],
    ["gpt-4o", "--input", "10", "--output", "1", "--reasoning", "5"],
    ["gpt-4o", "--input", "-1", "--output", "1"],
    ["gpt-4o", "--input", "ten", "--output", "1"],
])
def test_estimate_rejects_impossible_usage(args: list[str]) -> None:
    assert ax("estimate", *args).exit_code == 2


def test_estimate_of_an_unpriced_model_says_how_to_price_it() -> None:
    result = ax("estimate", "mystery-9000", "--input", "1", "--output", "1")
    assert result.exit_code == 2 and "[prices]" in result.output


def test_budget_lifecycle_and_check_exit_codes(store: Store) -> None:
    ok = ax("budget", "set", "100", "--scope", "user:u1", "--period", "day", "--hard")
    assert ok.exit_code == 0 and "created budget #1 user:u1" in ok.output
    assert "running gateways apply it from their next call" in " ".join(ok.output.split())
    assert ax("budget", "check").exit_code == 0
    seed(store)  # u1 spends well under $100
    assert ax("budget", "check").exit_code == 0
    tight = ax("budget", "set", "0.000001", "--scope", "user:u1", "--period", "day", "--hard")
    assert "updated budget #1" in tight.output
    check = ax("budget", "check", "--json")
    assert check.exit_code == 1, check.output
    data = json.loads(check.output)
    assert data["over"] == 1 and data["budgets"][0]["over"] is True
    assert {a["threshold_percent"] for a in data["alerts_sent"]} == {50, 80, 100}
    listed = json.loads(ax("budget", "list", "--json").output)
    assert listed[0]["scope"] == "user:u1" and listed[0]["limit_usd"] == "0.000001"
    assert ax("budget", "delete", "1").exit_code == 0
    assert ax("budget", "delete", "1").exit_code == 2
    assert ax("budget", "check").exit_code == 0


@pytest.mark.parametrize("args", [
    ["0"], ["-5"], ["lots"], ["10", "--scope", "org:x"], ["10", "--period", "fortnight"], ["10", "--scope", "user:"],
])
def test_bad_budget_input_writes_nothing(store: Store, args: list[str]) -> None:
    result = ax("budget", "set", *args)
    assert result.exit_code == 2, result.output
    assert list_budgets(store) == []


def test_budget_check_projects_the_run_out_date(store: Store) -> None:
    ax("budget", "set", "1000", "--period", "total")
    now = time.time()
    record_calls(store, [CallRecord(ts=now - 60 * i, user="u", requested_model="m", cost_nanos=10**9)
                         for i in range(30)])
    text = ax("budget", "check").output
    assert "at this rate the budget runs out on" in text


def test_alerts_configure_defaults_and_per_budget(store: Store) -> None:
    out = ax("alerts", "configure", "--at", "25,75", "--webhook", "https://hooks.example.com/x")
    assert out.exit_code == 0, out.output
    from axtui.config import load_settings

    assert load_settings().budgets.thresholds == [25, 75]
    assert load_settings().budgets.webhook == "https://hooks.example.com/x"
    assert ax("alerts", "configure", "--no-webhook").exit_code == 0
    assert load_settings().budgets.webhook is None
    ax("budget", "set", "5")
    per = ax("alerts", "configure", "--budget", "1", "--at", "90")
    assert per.exit_code == 0 and "alerts at 90%" in per.output
    assert ax("alerts", "configure", "--budget", "9", "--at", "90").exit_code == 2
    assert ax("alerts", "configure", "--at", "0").exit_code == 2
    assert ax("alerts", "configure", "--webhook", "ftp://x").exit_code == 2


def test_prices_list_filters_by_provider() -> None:
    result = ax("prices", "list", "--provider", "anthropic", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["retrieved"] and {m["provider"] for m in data["models"]} == {"anthropic"}
    assert "claude-sonnet-4-5" in {m["model"] for m in data["models"]}
    assert "claude-sonnet-4-5" in ax("prices", "list").output
    assert ax("prices", "list", "--provider", "nobody").exit_code == 2
