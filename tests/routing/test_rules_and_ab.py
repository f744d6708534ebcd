"""Rules (first match wins, validated at load) and A/B tests (sticky splits)."""

from __future__ import annotations

import fnmatch
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.config import ABTestConfig, RoutingConfig, RoutingRule, parse_settings
from axtui.errors import ConfigError
from axtui.routing.abtest import ABBook, bucket
from axtui.routing.rules import RuleBook
from axtui.types import Caller

names = st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama", "fast"])
users = st.sampled_from(["alice", "bob", "eu-carl", "eu-dana", "svc-batch"])
globs = st.sampled_from(["*", "gpt-*", "*-mini", "claude*", "eu-*", "svc-*", "alice", "?ob"])


@given(st.lists(st.tuples(globs, globs, st.sampled_from([[], ["beta"]])), max_size=6), names, users,
       st.sampled_from([(), ("beta",)]))
def test_the_first_matching_rule_decides(specs: list[tuple[str, str, list[str]]], model: str, user: str,
                                         tags: tuple[str, ...]) -> None:
    rules = [RoutingRule(name=f"r{i}", model=m, user=u, tags=t) for i, (m, u, t) in enumerate(specs)]
    book = RuleBook(rules)
    caller = Caller(user=user, tags=tags)
    got = book.match(model, caller, 100, 0.0)
    want = next((r.name for r in rules if fnmatch.fnmatchcase(model, r.model) and fnmatch.fnmatchcase(user, r.user)
                 and set(r.tags) <= set(tags)), None)
    assert (got.name if got else None) == want
    checks = book.check(model, caller, 100, 0.0)
    # Every rule is checked in order up to the first match, and no further.
    assert len(checks) == (len(rules) if want is None else int(want[1:]) + 1)
    assert all(not c.matched for c in checks[:-1])
    assert not checks or checks[-1].matched == (want is not None)


def test_rule_conditions() -> None:
    noon = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp()
    night = datetime(2026, 1, 5, 23, 0, tzinfo=UTC).timestamp()
    book = RuleBook([
        RoutingRule(name="keyed", key="team-*"),
        RoutingRule(name="big", min_prompt_tokens=10_000),
        RoutingRule(name="small", max_prompt_tokens=100, hours="22-6"),
        RoutingRule(name="office", hours="9-17", timezone="Europe/Paris"),
    ])
    bob = Caller(user="bob")

    def first(tokens: int, when: float, caller: Caller = bob) -> str | None:
        rule = book.match("m", caller, tokens, when)
        return rule.name if rule else None

    assert first(50, noon, Caller(user="bob", key="team-a")) == "keyed"
    assert first(20_000, noon) == "big"
    assert first(50, night) == "small"
    assert first(50, noon) == "office"  # 13:00 in Paris
    assert first(500, night) is None
    why = {c.rule: c.why for c in book.check("m", bob, 500, night)}
    assert why["keyed"] == "key '(none)' does not match 'team-*'"
    assert why["big"] == "~500 prompt tokens < min_prompt_tokens 10,000"
    assert why["small"] == "~500 prompt tokens > max_prompt_tokens 100"
    assert why["office"] == "hour 00 (Europe/Paris) outside 9-17"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[routing.rules]]\nname = "eu"\nstrategy = "fastest"\n', "rule 'eu', field strategy: unknown strategy"),
        ('[[routing.rules]]\nname = "eu"\nhours = "9-9"\n', "rule 'eu', field hours"),
        ('[[routing.rules]]\nname = "eu"\nhours = "nine"\n', "rule 'eu', field hours"),
        ('[[routing.rules]]\nname = "eu"\ntimezone = "Mars/Olympus"\n', "rule 'eu', field timezone"),
        ('[[routing.rules]]\nname = "eu"\nrequire_region = true\n', "rule 'eu': require_region is set but region"),
        ('[[routing.rules]]\nname = "eu"\nmin_prompt_tokens = 9\nmax_prompt_tokens = 1\n', "rule 'eu': min_prompt"),
        ('[[routing.rules]]\nname = "a"\n[[routing.rules]]\nname = "a"\n', "two routing rules are named 'a'"),
        ('[routing]\nstrategy = "random"\n', "routing.strategy: unknown strategy 'random'"),
        ('[[routing.ab_tests]]\nname = "t"\nmodel = "m"\nvariants = [{name = "a", model = "x", percent = 60}, '
         '{name = "b", model = "y", percent = 30}]\n', "A/B test 't': the variants' percent must add up to 100"),
    ],
)
def test_bad_routing_config_is_refused_naming_the_rule_and_field(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(toml)
    assert message in info.value.message


def test_good_routing_config_round_trips() -> None:
    settings = parse_settings(
        '[routing]\nstrategy = "cost"\n[[routing.rules]]\nname = "eu"\nuser = "eu-*"\nregion = "eu-west"\n'
        'require_region = true\nhours = "22-6"\n'
    )
    rule = settings.routing.rules[0]
    assert rule.require_region and rule.region == "eu-west" and rule.hours == "22-6"
    assert settings.routing.strategy == "cost"


def _ab(percents: list[float]) -> ABBook:
    variants = [{"name": f"v{i}", "model": f"m{i}", "percent": p} for i, p in enumerate(percents)]
    return ABBook([ABTestConfig(name="t", model="gpt-*", variants=variants)])  # type: ignore[arg-type]


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30))
def test_ab_assignment_is_sticky_per_user(people: list[str]) -> None:
    first, second = _ab([30, 70]), _ab([30, 70])
    for who in people:
        a = first.assign("gpt-4o", Caller(user=who))
        assert a is not None
        assert a == first.assign("gpt-4o", Caller(user=who)) == second.assign("gpt-4o-mini", Caller(user=who))
        assert 0 <= bucket("t", who) < 100


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10), min_size=2, max_size=4).filter(lambda w: sum(w) > 0))
def test_ab_splits_hold_over_many_users(weights: list[int]) -> None:
    total = sum(weights)
    percents = [100 * w / total for w in weights]
    percents[-1] = max(0.0, 100 - sum(percents[:-1]))  # rounding may leave -1e-14 for a last weight of 0
    book = _ab(percents)
    n = 4000
    counts = Counter(book.assign("gpt-4o", Caller(user=f"user-{i}")).variant for i in range(n))  # type: ignore[union-attr]
    for i, p in enumerate(percents):
        assert abs(counts[f"v{i}"] / n - p / 100) < 0.03


def test_ab_changing_a_split_moves_only_users_across_the_boundary() -> None:
    before, after = _ab([50, 50]), _ab([60, 40])
    moved = 0
    for i in range(2000):
        a = before.assign("gpt-4o", Caller(user=f"u{i}"))
        b = after.assign("gpt-4o", Caller(user=f"u{i}"))
        assert a is not None and b is not None
        if a.variant != b.variant:
            assert (a.variant, b.variant) == ("v1", "v0")
            moved += 1
    assert 0.05 < moved / 2000 < 0.15


def test_ab_applies_only_to_its_model_and_not_when_disabled() -> None:
    assert _ab([50, 50]).assign("claude", Caller(user="a")) is None
    off = ABBook([ABTestConfig(name="t", model="m", enabled=False, variants=[
        {"name": "a", "model": "x", "percent": 50}, {"name": "b", "model": "y", "percent": 50}])])  # type: ignore[list-item]
    assert off.assign("m", Caller(user="a")) is None


def test_two_enabled_tests_on_one_model_are_refused() -> None:
    variants = [{"name": "a", "model": "x", "percent": 50}, {"name": "b", "model": "y", "percent": 50}]
    with pytest.raises(ValueError, match="both split model 'm'"):
        RoutingConfig(ab_tests=[{"name": "t1", "model": "m", "variants": variants},  # type: ignore[list-item]
                                {"name": "t2", "model": "m", "variants": variants}])
