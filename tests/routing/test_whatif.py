"""What-if replay: the policy in force gives back the recorded spend; other policies move calls and money."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axtui.cli import main
from axtui.clock import FakeClock
from axtui.config import RoutingConfig, Settings, save_settings
from axtui.cost.sheet import PriceSheet, price_to_json
from axtui.cost.whatif import load_policy, whatif
from axtui.engine.compose import build_catalog, build_gateway, effective_providers
from axtui.routing.catalog import Catalog
from axtui.routing.whatif import RecordedCall, WhatIfPolicy, replay_calls
from axtui.store import Store
from axtui.types import Caller, ChatRequest, Usage

from .helpers import FlatPrices, dep

T0 = 1_760_000_000.0
DEPS = [dep("cheap"), dep("mid"), dep("dear")]
PRICES = FlatPrices({"cheap/m": (1, 2), "mid/m": (3, 6), "dear/m": (10, 20)})


def _call(i: int, where: str, strategy: str, *, tokens: tuple[int, int] = (400, 200), latency: float = 500.0,
          cache: str = "miss", status: str = "ok", similarity: float | None = None, user: str = "u",
          conversation: str | None = None) -> RecordedCall:
    usage = Usage(input_tokens=tokens[0], output_tokens=tokens[1])
    d = next(d for d in DEPS if d.provider == where) if where else None
    hit = cache != "miss"
    cost = None if d is None or hit else PRICES.cost(d, usage)
    return RecordedCall(
        ts=T0 + i, user=user, requested_model="m", status=status, usage=usage, latency_ms=latency,
        cost_nanos=0 if hit else cost, saved_nanos=PRICES.cost(DEPS[2], usage) if hit else None,
        deployment=None if hit or d is None else d.id, provider=d.provider if d else None, model="m",
        cache=cache, similarity=similarity, strategy=None if hit else strategy, conversation=conversation,
    )


def _replay(calls: list[RecordedCall], policy: WhatIfPolicy, strategy: str = "round-robin"):  # type: ignore[no-untyped-def]
    return replay_calls(calls, Catalog(DEPS), RoutingConfig(strategy=strategy), PRICES, policy)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["cheap", "mid", "dear"]), st.integers(1, 5_000), st.integers(0, 3_000),
                          st.sampled_from(["miss", "miss", "miss", "exact", "semantic"]),
                          st.sampled_from(["ok", "ok", "ok", "error", "rate_limited"])),
                max_size=60),
       st.sampled_from(["round-robin", "weighted", "latency", "cost", "balanced"]))
def test_the_policy_in_force_gives_back_the_recorded_spend(rows: list[tuple[str, int, int, str, str]],
                                                         strategy: str) -> None:
    calls = [_call(i, where if status != "rate_limited" else "", strategy, tokens=(tin, tout), cache=cache,
                   status=status if cache == "miss" else "ok", similarity=0.95 if cache == "semantic" else None)
             for i, (where, tin, tout, cache, status) in enumerate(rows)]
    report = _replay(calls, WhatIfPolicy(), strategy)
    recorded = sum(c.cost_nanos or 0 for c in calls)
    assert report.total.recorded_nanos == recorded
    assert abs(report.total.replayed_nanos - recorded) <= 0.01 * recorded
    assert report.total.moved == 0
    assert sum(g.calls for g in report.by_user.values()) == len(calls)


def test_another_strategy_moves_calls_to_the_cheapest_and_says_how_much_it_saves() -> None:
    calls = [_call(i, ["cheap", "mid", "dear"][i % 3], "round-robin", user=f"user-{i % 2}") for i in range(30)]
    report = _replay(calls, WhatIfPolicy(strategy="cost"))
    assert report.total.replayed_nanos < report.total.recorded_nanos
    # Every call is cheapest on "cheap", but for one probe each of "mid" and "dear" once the pool is in
    # use (the cost strategy learns every deployment's speed once); recorded 10 calls on each.
    assert report.moves == {("mid/m", "cheap/m"): 9, ("dear/m", "cheap/m"): 9}
    usage = Usage(input_tokens=400, output_tokens=200)
    cheap, mid, dear = (PRICES.cost(d, usage) or 0 for d in DEPS)
    assert report.total.recorded_nanos == 10 * (cheap + mid + dear)
    assert report.total.replayed_nanos == 28 * cheap + mid + dear
    assert set(report.by_user) == {"user-0", "user-1"} and set(report.by_model) == {"m"}
    assert sum(g.savings_nanos for g in report.by_user.values()) == report.total.savings_nanos


def test_a_deployment_that_was_failing_then_is_not_chosen_in_replay() -> None:
    from axtui.routing.history import Observation

    calls = [_call(i, "mid", "round-robin") for i in range(20)]
    failures = [Observation(ts=T0 + 0.5 + i * 0.01, deployment="cheap/m", provider="cheap", model="m",
                            outcome="fault", latency_ms=50.0, error="ProviderServerError: 503") for i in range(6)]
    report = replay_calls(calls, Catalog(DEPS), RoutingConfig(strategy="round-robin"), PRICES,  # type: ignore[arg-type]
                          WhatIfPolicy(strategy="cost"), failures=failures)
    # Only the first call, before the failures, goes to "cheap": its circuit opened at T0 + 0.5 and stays
    # open (cooldown 30 s). "dear" gets one call to learn its speed; the rest stay on "mid".
    assert report.moves == {("mid/m", "cheap/m"): 1, ("mid/m", "dear/m"): 1}


def test_cache_off_sends_hits_upstream_and_a_threshold_only_the_weak_ones() -> None:
    calls = [_call(0, "dear", "cost"), _call(1, "", "cost", cache="exact"),
             _call(2, "", "cost", cache="semantic", similarity=0.91),
             _call(3, "", "cost", cache="semantic", similarity=0.99)]
    off = _replay(calls, WhatIfPolicy(cache="off"), "cost")
    assert off.lost_hits == 3 and off.total.replayed_nanos > off.total.recorded_nanos
    strict = _replay(calls, WhatIfPolicy(threshold=0.95), "cost")
    assert strict.lost_hits == 1
    # The weak hit goes upstream, routed by the policy (cost): to the cheapest.
    assert strict.total.replayed_nanos - strict.total.recorded_nanos == PRICES.cost(
        DEPS[0], Usage(input_tokens=400, output_tokens=200))


def test_cache_on_serves_a_users_repeat_within_the_ttl_only() -> None:
    calls = [_call(0, "mid", "cost", conversation="c1"), _call(5, "mid", "cost", conversation="c1"),
             _call(6, "mid", "cost", conversation="c1", user="other"),
             _call(4_000, "mid", "cost", conversation="c1")]
    report = _replay(calls, WhatIfPolicy(cache="on", cache_ttl_s=3600), "cost")
    one = PRICES.cost(DEPS[1], Usage(input_tokens=400, output_tokens=200))
    assert report.new_hits == 1 and one is not None
    assert report.total.replayed_nanos == report.total.recorded_nanos - one


def test_an_empty_period_replays_to_nothing() -> None:
    report = _replay([], WhatIfPolicy(strategy="cost"))
    assert report.total.calls == 0 and report.total.recorded_nanos == 0 and report.total.p95("replayed") is None


# -- through a real gateway and the store ---------------------------------------------------------------------


async def _record(strategy: str, n: int = 120, start: float = T0) -> Settings:
    """``n`` calls to the demo aliases on the simulated fleet, recorded in this test's store."""
    settings = effective_providers(Settings(routing=RoutingConfig(strategy=strategy)))
    save_settings(settings)
    async with await build_gateway(settings, clock=FakeClock(start=start)) as gw:
        for i in range(n):
            model = ("smart", "fast", "cheap")[i % 3]
            text = f"Explain topic {i} in a short paragraph, with one example and one caveat."
            await gw.call(ChatRequest(model=model, messages=[{"role": "user", "content": text}]),
                          Caller(user=f"user-{i % 4}"))
    return settings


@pytest.mark.parametrize("strategy", ["round-robin", "cost"])
async def test_replaying_recorded_traffic_under_its_own_policy_is_within_one_percent(strategy: str) -> None:
    settings = await _record(strategy)
    store = Store.open()
    try:
        same = whatif(store, settings, build_catalog(settings), load_policy(settings, strategy=strategy), T0 - 1,
                      T0 + 10_000)
        other = whatif(store, settings, build_catalog(settings),
                       load_policy(settings, strategy="cost" if strategy == "round-robin" else "round-robin"),
                       T0 - 1, T0 + 10_000)
    finally:
        store.close()
    t = same.report.total
    assert same.calls == t.calls == 120 and t.recorded_nanos > 0
    assert abs(t.replayed_nanos - t.recorded_nanos) <= 0.01 * t.recorded_nanos
    assert other.report.total.moved > 0
    if strategy == "round-robin":
        assert other.report.total.replayed_nanos < 0.85 * t.recorded_nanos


async def test_the_whatif_command_prints_json_and_refuses_bad_input(tmp_path: Path) -> None:
    await _record("round-robin", n=30)
    runner = CliRunner()
    out = runner.invoke(main, ["cost", "whatif", "--since", "2025-01-01", "--strategy", "cost", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["calls"] == 30 and data["policy"] == {"strategy": "cost"}
    assert set(data["by_model"]) == {"smart", "fast", "cheap"}
    assert data["total"]["replayed_nanos"] < data["total"]["recorded_nanos"]
    text = runner.invoke(main, ["cost", "whatif", "--since", "2025-01-01", "--strategy", "cost"])
    assert text.exit_code == 0 and "by model asked for" in text.output and "smart" in text.output

    bad = runner.invoke(main, ["cost", "whatif", "--strategy", "cheapest"])
    assert bad.exit_code != 0 and "unknown routing strategy 'cheapest'" in bad.output
    missing = runner.invoke(main, ["cost", "whatif", "--prices", str(tmp_path / "nope.json")])
    assert missing.exit_code != 0 and "no such price file" in missing.output
    broken = tmp_path / "rules.toml"
    broken.write_text('[routing]\nstrategy = "nope"\n')
    refused = runner.invoke(main, ["cost", "whatif", "--rules", str(broken)])
    assert refused.exit_code != 0 and "rules.toml" in refused.output and "unknown strategy" in refused.output


async def test_a_price_file_reprices_the_calls_that_stay(tmp_path: Path) -> None:
    settings = await _record("cost", n=30)
    doubled = []
    for p in PriceSheet.load(settings.prices).entries():
        entry = price_to_json(p)
        for key in ("input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning"):
            if entry.get(key) is not None:
                entry[key] = str(Decimal(entry[key]) * 2)
        entry.pop("tiers", None)
        doubled.append(entry)
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": doubled}))
    store = Store.open()
    try:
        result = whatif(store, settings, build_catalog(settings), load_policy(settings, prices=path), T0 - 1,
                        T0 + 10_000)
    finally:
        store.close()
    t = result.report.total
    assert t.moved == 0 and t.recorded_nanos > 0
    assert abs(t.replayed_nanos - 2 * t.recorded_nanos) <= 0.01 * t.recorded_nanos


async def test_a_new_gateway_prices_by_the_tokens_recorded_before_it_started() -> None:
    from axtui.routing.explain import explain
    from axtui.routing.router import HealthRouter

    start = time.time() - 2 * 86_400
    settings = await _record("round-robin", n=60, start=start)
    # A day later (beyond the health windows): tokens per call are still remembered.
    async with await build_gateway(settings, clock=FakeClock(start=start + 86_400), record=False) as gw:
        assert isinstance(gw.router, HealthRouter)
        x = explain(gw.router, "smart", strategy="cost")
    by = {c.deployment: c for c in x.candidates}
    assert by["gemini/gemini-2.5-pro"].cost_source == "history"
    assert "reasoning" in by["gemini/gemini-2.5-pro"].cost_basis
    runner = CliRunner()
    # Now, two days on, in another process: the command runs its own event loop, off this test's.
    out = await asyncio.to_thread(runner.invoke, main, ["route", "explain", "smart", "--strategy", "cost", "--json"])
    assert out.exit_code == 0, out.output
    sources = {c["deployment"]: c["cost_source"] for c in json.loads(out.output)["candidates"]}
    assert sources["gemini/gemini-2.5-pro"] == "history"
