"""The router's plan: filters, regions, fallbacks, circuits, A/B labels and reasons."""

from __future__ import annotations

import pytest

from axtui.clock import FakeClock
from axtui.config import RoutingConfig
from axtui.errors import ConfigError, InvalidRequest, ProviderRateLimited, UnknownModel
from axtui.ports import Attempt
from axtui.routing.router import RouteUnavailable
from axtui.types import Caller

from ..support import chat_request as request
from .helpers import dep, fail, router, succeed

LONG = "word " * 4000  # about 5,000 tokens


def test_unknown_model_lists_what_is_served() -> None:
    r = router([dep("a")])
    with pytest.raises(UnknownModel, match="models served here: m"):
        r.plan(request("nope"), Caller())


def test_unknown_strategy_from_a_call_is_a_request_error() -> None:
    r = router([dep("a")])
    with pytest.raises(InvalidRequest, match="unknown routing strategy 'fastest'; use one of: latency, cost"):
        r.plan(request(), Caller(), strategy="fastest")
    assert r.plan(request(), Caller(), strategy="round-robin").strategy == "round-robin"


def test_a_required_region_is_never_left_even_when_it_fails() -> None:
    eu, us = dep("eu", region="eu-west"), dep("us", region="us-east")
    routing = RoutingConfig(rules=[{"name": "residency", "user": "eu-*", "region": "eu-west",  # type: ignore[list-item]
                                    "require_region": True}], circuit_failures=2)
    r = router([us, eu], routing)
    plan = r.plan(request(), Caller(user="eu-ann"))
    assert plan.candidates == [eu] and plan.required_region == "eu-west" and plan.rule == "residency"
    assert "outside eu-west, which rule 'residency' requires" in plan.reasons[us.id]
    fail(r, eu, 2)
    with pytest.raises(RouteUnavailable) as info:
        r.plan(request(), Caller(user="eu-ann"))
    assert "staying in eu-west" in info.value.message and info.value.retry_after == pytest.approx(30)
    # others are not bound by the rule
    assert r.plan(request(), Caller(user="bob")).candidates == [us]


def test_a_required_region_nobody_serves_fails_clearly() -> None:
    r = router([dep("us", region="us-east")], RoutingConfig(rules=[  # type: ignore[list-item]
        {"name": "residency", "region": "eu-west", "require_region": True}]))
    with pytest.raises(RouteUnavailable, match="requires region 'eu-west', but no deployment of 'm' is there"):
        r.plan(request(), Caller())


def test_a_preferred_region_comes_first_but_others_follow() -> None:
    eu, us = dep("eu", region="eu-west"), dep("us", region="us-east")
    r = router([us, eu], RoutingConfig(exploration=0, rules=[{"name": "eu-first", "region": "eu-west"}]))  # type: ignore[list-item]
    succeed(r, us, 50, 10)
    succeed(r, eu, 400, 10)
    plan = r.plan(request(), Caller())
    assert plan.candidates == [eu, us] and plan.required_region is None
    assert "in preferred region eu-west" in plan.reasons[eu.id]


def test_larger_context_windows_line_up_behind_a_nearly_full_first_choice() -> None:
    small1, small2 = dep("s1", context=8_000), dep("s2", context=8_000)
    big = dep("big", context=200_000)
    r = router([small1, small2, big], RoutingConfig(strategy="capability"))
    assert [d.provider for d in r.plan(request(), Caller()).candidates] == ["s1", "s2", "big"]
    plan = r.plan(request(text=LONG), Caller())  # ~5k of 8k: may not fit
    assert [d.provider for d in plan.candidates] == ["s1", "big", "s2"]
    assert "larger context window" in plan.reasons[big.id]
    plan = r.plan(request(text=LONG * 2), Caller())  # ~10k: the small ones cannot hold it
    assert plan.candidates == [big]
    assert plan.reasons[small1.id].startswith("skipped: context window 8,000 < ~")


def test_max_tokens_beyond_a_deployments_output_limit_skips_it() -> None:
    short, long = dep("short", max_output=2_000), dep("long", max_output=64_000)
    r = router([short, long], RoutingConfig(strategy="capability"))
    plan = r.plan(request(max_tokens=4_000), Caller())
    assert plan.candidates == [long]
    assert plan.reasons[short.id] == "skipped: max output 2,000 < 4,000 tokens asked"


def test_when_nothing_fits_by_the_catalog_every_deployment_is_still_tried() -> None:
    # Capabilities of a configured model may be unknown (vision defaults to off): the provider decides.
    a, b = dep("a", vision=False, context=4_000), dep("b", vision=False, context=8_000)
    r = router([a, b])
    image = request(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    plan = r.plan(image, Caller())
    assert plan.candidates == [b, a]
    assert plan.reasons[b.id].endswith("but nothing else fits: tried anyway")


def test_open_circuits_are_skipped_and_the_last_one_open_fails_clearly() -> None:
    a, b = dep("a"), dep("b")
    clock = FakeClock()
    r = router([a, b], RoutingConfig(circuit_failures=3, circuit_cooldown_s=30), clock=clock)
    fail(r, a, 3)
    plan = r.plan(request(), Caller())
    assert plan.candidates == [b]
    assert plan.reasons[a.id].startswith("skipped: circuit open (3 failures in a row); next probe in 30s")
    fail(r, b, 3)
    with pytest.raises(RouteUnavailable) as info:
        r.plan(request(), Caller())
    assert "no deployment of 'm' can take the call right now" in info.value.message
    assert info.value.status_code == 503


def test_a_half_open_deployment_is_probed_first_then_wins_back_its_place() -> None:
    good, recovering = dep("good"), dep("recovering")
    clock = FakeClock()
    r = router([good, recovering], RoutingConfig(circuit_failures=2, circuit_cooldown_s=10, exploration=0),
               clock=clock)
    succeed(r, recovering, 50, 10)
    succeed(r, good, 200, 10)
    fail(r, recovering, 2)
    assert r.plan(request(), Caller()).candidates == [good]
    clock.advance(10)
    plan = r.plan(request(), Caller())
    assert plan.candidates[0] is recovering and "half-open: this call probes it" in plan.reasons[recovering.id]
    r.begin(recovering)  # the probe is in flight: other calls do not pile on
    assert r.plan(request(), Caller()).candidates == [good]
    r.observe(Attempt(recovering, True, 50.0, 50.0))
    clock.advance(61)  # the failures have left the window
    succeed(r, good, 200, 3)
    assert r.plan(request(), Caller()).candidates[0] is recovering


def test_a_rate_limited_deployment_rests_at_the_back_for_its_retry_after() -> None:
    a, b = dep("a"), dep("b")
    clock = FakeClock()
    r = router([a, b], RoutingConfig(strategy="capability"), clock=clock)
    r.begin(a)
    r.observe(Attempt(a, False, 5.0, error=ProviderRateLimited("429", retry_after=8.0), retry_after=8.0))
    plan = r.plan(request(), Caller())
    assert plan.candidates == [b, a]
    assert "resting after an upstream 429 (8.0s left)" in plan.reasons[a.id]
    clock.advance(8)
    assert r.plan(request(), Caller()).candidates == [a, b]


def test_rule_deployments_and_fallbacks() -> None:
    a, b = dep("a", "alpha"), dep("b", "beta")
    c = dep("c", "gamma", vision=False)
    routing = RoutingConfig(strategy="capability", rules=[{  # type: ignore[list-item]
        "name": "pinned", "model": "alpha", "deployments": ["b/beta"], "fallbacks": ["gamma", "alpha"]}])
    r = router([a, b, c], routing)
    plan = r.plan(request("alpha"), Caller())
    assert [d.provider for d in plan.candidates] == ["b", "c", "a"]
    assert plan.reasons[c.id] == "fallback 1: fallback named by rule 'pinned'"
    image = request("alpha", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    plan = r.plan(image, Caller())
    assert [d.provider for d in plan.candidates] == ["b", "a"]
    assert plan.reasons[c.id] == "skipped: no vision (the request has images)"


def test_rule_names_must_exist() -> None:
    with pytest.raises(ConfigError, match=r"rule 'pinned', fallbacks\[0\]: 'gpt-9' is not a deployment"):
        router([dep("a")], RoutingConfig(rules=[{"name": "pinned", "fallbacks": ["gpt-9"]}]))  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="A/B test 't', variant 'b': model 'zzz' is not served"):
        router([dep("a")], RoutingConfig(ab_tests=[{"name": "t", "model": "m", "variants": [  # type: ignore[list-item]
            {"name": "a", "model": "m", "percent": 50}, {"name": "b", "model": "zzz", "percent": 50}]}]))


def test_an_ab_variant_routes_to_its_model_and_is_labelled() -> None:
    a, b = dep("a", "model-a"), dep("b", "model-b")
    r = router([a, b], RoutingConfig(ab_tests=[{"name": "exp", "model": "model-a", "variants": [  # type: ignore[list-item]
        {"name": "control", "model": "model-a", "percent": 50}, {"name": "treat", "model": "model-b", "percent": 50}]}]))
    seen: dict[str, set[str]] = {"exp:control": set(), "exp:treat": set()}
    for i in range(200):
        plan = r.plan(request("model-a"), Caller(user=f"u{i}"))
        assert plan.ab_test == "exp" and plan.variant in seen
        seen[plan.variant].add(plan.candidates[0].model)  # type: ignore[index]
        again = r.plan(request("model-a"), Caller(user=f"u{i}"))
        assert again.variant == plan.variant
    assert seen == {"exp:control": {"model-a"}, "exp:treat": {"model-b"}}
    assert r.plan(request("model-b"), Caller(user="u1")).variant is None


def test_failures_and_circuit_changes_wait_for_the_store() -> None:
    a = dep("a")
    r = router([a], RoutingConfig(circuit_failures=2))
    fail(r, a, 2)
    kinds = [e.kind for e in r.events]
    assert kinds == ["failure", "failure", "circuit"]
    assert r.events[-1].detail == "closed->open: 2 failures in a row"
    succeed(r, a, 10)
    assert len(r.events) == 3


def test_reconfigure_applies_new_rules_and_refuses_bad_ones() -> None:
    a, b = dep("a"), dep("b")
    r = router([a, b], RoutingConfig(strategy="capability"))
    assert r.plan(request(), Caller()).candidates[0] is a
    r.configure(RoutingConfig(rules=[{"name": "only-b", "deployments": ["b/m"]}]))  # type: ignore[list-item]
    assert r.plan(request(), Caller()).candidates == [b]
    with pytest.raises(ConfigError):
        r.configure(RoutingConfig(rules=[{"name": "bad", "deployments": ["x/y"]}]))  # type: ignore[list-item]
    assert r.plan(request(), Caller()).rule == "only-b"
