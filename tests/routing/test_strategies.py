"""Each strategy's ordering, through the router (no I/O, fake clock)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.clock import FakeClock
from axtui.config import RoutingConfig
from axtui.types import Caller

from ..support import chat_request as request
from .helpers import FlatPrices, dep, router, succeed


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10), min_size=2, max_size=5).filter(lambda w: sum(w) > 0),
       st.integers(min_value=0, max_value=2**32))
def test_weighted_shares_follow_the_weights(weights: list[int], seed: int) -> None:
    deps = [dep(f"p{i}", weight=w) for i, w in enumerate(weights)]
    r = router(deps, RoutingConfig(strategy="weighted"), seed=seed)
    n = 3000
    firsts = Counter(r.plan(request(), Caller()).candidates[0].id for _ in range(n))
    total = sum(weights)
    for d, w in zip(deps, weights, strict=True):
        share = firsts[d.id] / n
        assert abs(share - w / total) < 0.04, (d.id, share, w / total)  # over 4 standard errors
        if w == 0:
            assert share == 0
    # every deployment is still a fallback, zero weight or not
    assert len(r.plan(request(), Caller()).candidates) == len(deps)


def test_round_robin_takes_turns() -> None:
    deps = [dep(f"p{i}") for i in range(3)]
    r = router(deps, RoutingConfig(strategy="round-robin"))
    firsts = [r.plan(request(), Caller()).candidates[0].provider for _ in range(9)]
    assert firsts == ["p0", "p1", "p2"] * 3


def test_least_busy_picks_the_fewest_in_flight() -> None:
    a, b, c = dep("a"), dep("b"), dep("c")
    r = router([a, b, c], RoutingConfig(strategy="least-busy"))
    r.begin(a)
    r.begin(a)
    r.begin(c)
    plan = r.plan(request(), Caller())
    assert [d.provider for d in plan.candidates] == ["b", "c", "a"]
    assert "0 in flight" in plan.reasons[b.id]


def test_latency_prefers_the_lowest_p95_and_prices_in_errors() -> None:
    fast, slow = dep("fast"), dep("slow")
    r = router([slow, fast], RoutingConfig(exploration=0))
    succeed(r, fast, 100, 20)
    succeed(r, slow, 300, 20)
    plan = r.plan(request(), Caller())
    assert [d.provider for d in plan.candidates] == ["fast", "slow"]
    assert "expected p95" in plan.reasons[fast.id]


def test_latency_tries_a_deployment_it_never_heard_from() -> None:
    known, new = dep("known"), dep("new")
    r = router([known, new], RoutingConfig(exploration=0))
    succeed(r, known, 50, 10)
    plan = r.plan(request(), Caller())
    assert plan.candidates[0] is new
    assert "to learn" in plan.reasons[new.id]


def test_latency_explores_a_share_of_calls_to_deployments_not_heard_from_lately() -> None:
    fast, slow = dep("fast"), dep("slow")
    clock = FakeClock()
    r = router([fast, slow], RoutingConfig(exploration=0.1, window_s=60), seed=3, clock=clock)
    succeed(r, fast, 100, 20)
    succeed(r, slow, 300, 20)
    n = 5000
    # Fresh news of the slow one: no detour.
    assert not any(r.plan(request(), Caller()).candidates[0] is slow for _ in range(500))
    clock.advance(10)  # a slot of the window: the slow one's news is old now
    succeed(r, fast, 100)
    plans = [r.plan(request(), Caller()) for _ in range(n)]
    explored = [p for p in plans if p.candidates[0] is slow]
    assert 0.07 < len(explored) / n < 0.13
    assert "exploring: not heard from for 10s or more" in explored[0].reasons[slow.id]


def test_cost_takes_the_cheapest_that_fits_and_unpriced_last() -> None:
    cheap = dep("cheap", vision=False)
    mid = dep("mid")
    dear = dep("dear")
    unknown = dep("unknown")
    prices = FlatPrices({cheap.id: (1, 2), mid.id: (3, 6), dear.id: (10, 30)})
    r = router([dear, unknown, mid, cheap], RoutingConfig(strategy="cost"), prices=prices)
    plan = r.plan(request(), Caller())
    assert [d.provider for d in plan.candidates] == ["cheap", "mid", "dear", "unknown"]
    image = request(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    plan = r.plan(image, Caller())
    assert [d.provider for d in plan.candidates] == ["mid", "dear", "unknown"]
    assert plan.reasons[cheap.id] == "skipped: no vision (the request has images)"


def test_capability_keeps_the_configured_order_of_those_that_fit() -> None:
    a, b, c = dep("a", tools=False), dep("b"), dep("c")
    r = router([a, b, c], RoutingConfig(strategy="capability"))
    tools = request(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    assert [d.provider for d in r.plan(tools, Caller()).candidates] == ["b", "c"]
    assert [d.provider for d in r.plan(request(), Caller()).candidates] == ["a", "b", "c"]
