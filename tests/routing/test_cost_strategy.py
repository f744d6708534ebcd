"""The cost strategy prices what calls really take there, and respects capacity; the balanced strategy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from axtui.clock import FakeClock
from axtui.config import RoutingConfig
from axtui.errors import ProviderRateLimited
from axtui.ports import Attempt
from axtui.routing.explain import explain
from axtui.routing.fit import Requirements
from axtui.routing.usage import MIN_HISTORY, UsageBook, size_bucket
from axtui.types import Caller, Usage
from tests.support import chat_request as request

from .helpers import FlatPrices, dep, router

# "thinker" is cheaper per token, but thinks: 1,500 output tokens a call against 100.
PRICES = FlatPrices({"thinker/m": (1, 4), "plain/m": (2, 8), "free/m": (0, 0)})


def _answer(r: object, d: object, usage: Usage, latency_ms: float = 500.0) -> None:
    r.begin(d)  # type: ignore[attr-defined]
    r.observe(Attempt(d, True, latency_ms, latency_ms, usage.output_tokens, usage=usage))  # type: ignore[attr-defined,arg-type]


def _first(r: object, text: str = "hello " * 200, strategy: str = "cost") -> str:
    plan = r.plan(request("m", text), Caller(), strategy=strategy)  # type: ignore[attr-defined]
    return str(plan.candidates[0].id)


def test_list_price_decides_until_history_shows_what_calls_take() -> None:
    thinker, plain = dep("thinker"), dep("plain")
    r = router([thinker, plain], prices=PRICES)
    assert _first(r) == "thinker/m"  # cheaper by list price with a typical answer
    x = explain(r, "m", strategy="cost")
    assert {c.deployment: c.cost_source for c in x.candidates} == {"thinker/m": "list price", "plain/m": "list price"}
    for _ in range(MIN_HISTORY):
        _answer(r, thinker, Usage(input_tokens=300, output_tokens=1_600, reasoning_tokens=1_500))
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100))
    assert _first(r) == "plain/m"
    x = explain(r, "m", tokens=300, strategy="cost")
    by = {c.deployment: c for c in x.candidates}
    assert by["thinker/m"].cost_source == by["plain/m"].cost_source == "history"
    assert "1,500 reasoning" in by["thinker/m"].cost_basis
    # 300 in + 1,600 out at $1/$4 per million, against 300 in + 100 out at $2/$8.
    assert by["thinker/m"].estimate_nanos == 300 * 1_000 + 1_600 * 4_000
    assert by["plain/m"].estimate_nanos == 300 * 2_000 + 100 * 8_000
    assert x.chosen is not None and x.chosen.deployment == "plain/m"


def test_a_callers_max_tokens_caps_what_history_expects() -> None:
    book = UsageBook()
    for _ in range(MIN_HISTORY):
        book.add("d", Usage(input_tokens=1_000, output_tokens=2_000, reasoning_tokens=1_500))
    usage, profile = book.expected_usage("d", 1_000, 512, output_cap=800)
    assert profile is not None and usage.output_tokens == 800 and usage.reasoning_tokens == 800


def test_tokens_ax_counted_itself_teach_nothing() -> None:
    book = UsageBook()
    for _ in range(5):
        book.add("d", Usage(input_tokens=10, output_tokens=9_999, estimated=True))
    assert book.calls("d") == 0 and book.profile("d", 10) is None


def test_prompt_sizes_are_learned_apart() -> None:
    book = UsageBook()
    for _ in range(MIN_HISTORY):
        book.add("d", Usage(input_tokens=100, output_tokens=50))
        book.add("d", Usage(input_tokens=50_000, output_tokens=900, cached_input_tokens=40_000))
    small, _ = book.expected_usage("d", 120, 512)
    big, _ = book.expected_usage("d", 50_000, 512)
    assert small.output_tokens == 50 and small.cached_input_tokens == 0
    assert big.output_tokens == 900 and big.cached_input_tokens == 40_000
    assert size_bucket(120) != size_bucket(50_000)


@given(st.lists(st.tuples(st.integers(1, 200_000), st.integers(0, 50_000), st.integers(0, 50_000),
                          st.integers(0, 200_000)), min_size=MIN_HISTORY, max_size=60))
def test_expected_tokens_stay_within_what_was_seen(calls: list[tuple[int, int, int, int]]) -> None:
    book = UsageBook()
    for prompt, out, reasoning, cached in calls:
        book.add("d", Usage(input_tokens=prompt, output_tokens=out, reasoning_tokens=reasoning,
                            cached_input_tokens=cached))
    for prompt, *_ in calls:
        usage, profile = book.expected_usage("d", prompt, 512)
        assert profile is not None
        outs = [o for _, o, _, _ in calls]
        # Two significant digits of rounding aside, the average is between the extremes.
        assert min(outs) * 0.95 - 1 <= usage.output_tokens <= max(outs) * 1.05 + 1
        assert 0 <= usage.reasoning_tokens <= usage.output_tokens
        assert 0 <= usage.cached_input_tokens <= prompt


def test_a_deployment_not_yet_answering_takes_only_a_few_calls() -> None:
    free, plain = dep("free"), dep("plain")
    r = router([free, plain], prices=PRICES)
    for _ in range(4):
        assert _first(r) == "free/m"
        r.begin(free)  # in flight, no answer yet
    plan = r.plan(request("m", "hello " * 200), Caller(), strategy="cost")
    assert plan.candidates[0].id == "plain/m"
    assert "before it has answered" in plan.reasons["free/m"]


def test_a_429_teaches_an_upstream_limit_that_holds_calls_back() -> None:
    free, plain = dep("free"), dep("plain")
    r = router([free, plain], prices=PRICES)
    for _ in range(MIN_HISTORY):
        _answer(r, free, Usage(input_tokens=300, output_tokens=100))
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100))
    for _ in range(8):
        r.begin(free)
    r.observe(Attempt(free, False, 20.0, error=ProviderRateLimited("429", provider="free"), retry_after=0.0))
    # Seven still in flight; the upstream said no at eight: 6 is the limit learned.
    assert _first(r) == "plain/m"
    assert "learned upstream limit" in r.plan(request("m", "hello " * 200), Caller(), strategy="cost").reasons[
        "free/m"]
    for _ in range(2):  # answers bring it under the limit again
        r.observe(Attempt(free, True, 500.0, 500.0, 100, usage=Usage(input_tokens=300, output_tokens=100)))
    assert _first(r) == "free/m"


def test_a_queueing_deployment_waits_behind_one_with_room() -> None:
    clock = FakeClock()
    free, plain = dep("free"), dep("plain")
    r = router([free, plain], prices=PRICES, clock=clock)
    for _ in range(10):
        _answer(r, free, Usage(input_tokens=300, output_tokens=100), 400.0)
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100), 400.0)
    assert _first(r) == "free/m"
    r.begin(free)
    r.begin(free)
    for _ in range(15):
        r.begin(free)
        r.observe(Attempt(free, True, 4_000.0, 4_000.0, 100, usage=Usage(input_tokens=300, output_tokens=100)))
    plan = r.plan(request("m", "hello " * 200), Caller(), strategy="cost")
    assert plan.candidates[0].id == "plain/m"
    assert "queueing" in plan.reasons["free/m"]


def test_a_free_deployment_far_slower_than_its_peers_takes_one_call_at_a_time() -> None:
    free, plain, other = dep("free"), dep("plain"), dep("thinker")
    r = router([free, plain, other], prices=PRICES)
    for _ in range(MIN_HISTORY):
        _answer(r, free, Usage(input_tokens=300, output_tokens=100), 20_000.0)
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100), 800.0)
        _answer(r, other, Usage(input_tokens=300, output_tokens=100), 900.0)
    assert _first(r) == "free/m"  # idle: one call keeps its figures fresh
    r.begin(free)
    plan = r.plan(request("m", "hello " * 200), Caller(), strategy="cost")
    assert plan.candidates[0].id != "free/m"
    assert "slow" in plan.reasons["free/m"]


def test_balanced_takes_the_cheapest_within_the_bound_of_the_rule_then_the_alias() -> None:
    free, plain = dep("free"), dep("plain")
    routing = RoutingConfig.model_validate({
        "aliases": {"team": ["m"]},
        "max_p95_ms": {"team": 50_000, "*": 1_000},
        "rules": [{"name": "strict", "user": "vip", "max_p95_ms": 2_000}],
    })
    r = router([free, plain], routing, aliases={"team": ["m"]}, prices=PRICES)
    for _ in range(MIN_HISTORY):
        _answer(r, free, Usage(input_tokens=300, output_tokens=100), 5_000.0)
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100), 300.0)

    def first(model: str, user: str = "u") -> tuple[str, str]:
        plan = r.plan(request(model, "hi"), Caller(user=user), strategy="balanced")
        return plan.candidates[0].id, plan.reasons[free.id]

    chosen, why = first("m")  # "*": 1 s, and free's p95 is ~5 s
    assert chosen == "plain/m" and "over the bound 1,000 ms" in why
    assert first("team")[0] == "free/m"  # the alias's 50 s bound lets the free one in
    chosen, _ = first("team", user="vip")  # the rule's bound comes first
    assert chosen == "plain/m"


def test_balanced_without_a_bound_stays_within_twice_the_fastest() -> None:
    free, plain = dep("free"), dep("plain")
    r = router([free, plain], prices=PRICES)
    for _ in range(MIN_HISTORY):
        _answer(r, free, Usage(input_tokens=300, output_tokens=100), 900.0)
        _answer(r, plain, Usage(input_tokens=300, output_tokens=100), 300.0)
    plan = r.plan(request("m", "hi"), Caller(), strategy="balanced")
    assert plan.candidates[0].id == "plain/m" and "2x the fastest" in plan.reasons["free/m"]


@pytest.mark.parametrize("bad", [0, -5])
def test_a_bound_that_is_no_latency_is_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="max_p95_ms"):
        RoutingConfig.model_validate({"max_p95_ms": {"fast": bad}})
    with pytest.raises(ValidationError):
        RoutingConfig.model_validate({"rules": [{"name": "r", "max_p95_ms": bad}]})


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 60), st.integers(1, 3_000), st.integers(0, 2_000)),
                min_size=2, max_size=6),
       st.integers(1, 20_000))
def test_with_history_and_room_everywhere_the_cheapest_expected_call_goes_first(
        pools: list[tuple[int, int, int, int]], chars: int) -> None:
    deps = [dep(f"p{i}") for i in range(len(pools))]
    prices = FlatPrices({d.id: (p_in, p_out) for d, (p_in, p_out, _, _) in zip(deps, pools, strict=True)})
    r = router(deps, prices=prices)
    ask = request("m", "x" * chars)
    prompt = Requirements.of(ask).prompt_tokens
    for d, (_, _, out, reasoning) in zip(deps, pools, strict=True):
        for _ in range(MIN_HISTORY):
            _answer(r, d, Usage(input_tokens=prompt, output_tokens=out + reasoning, reasoning_tokens=reasoning))
    plan = r.plan(ask, Caller(), strategy="cost")
    x = explain(r, "m", tokens=prompt, strategy="cost")
    assert all(c.cost_source == "history" for c in x.candidates)
    costs = {c.deployment: c.estimate_nanos or 0 for c in x.candidates}
    cheapest = min(costs.values())
    # Two significant digits of rounding, and near ties (COST_TIE) going to the faster, aside.
    assert costs[plan.candidates[0].id] <= cheapest * 1.06 + 1_000
