"""The alert state machine, driven by a fake clock: pending, firing, hysteresis, dedup, cooldown."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from axtui.clock import FakeClock
from axtui.metrics.alerts.grammar import parse_rule
from axtui.metrics.alerts.state import Policy, RuleState, step

POLICY = Policy(cooldown_s=300, hysteresis=0.1, resolve_after_s=30)


def run(
    rule_text: str, values: list[float | None], *, every: float = 5, policy: Policy = POLICY
) -> list[tuple[float, str]]:
    """Feed one value per evaluation; the (elapsed seconds, transition) seen."""
    rule = parse_rule(rule_text)
    clock = FakeClock()
    start = clock.now()
    st_ = RuleState()
    out = []
    for v in values:
        t = step(rule, st_, v, clock.now(), policy)
        if t is not None:
            out.append((clock.now() - start, t.kind))
        clock.advance(every)
    return out


def test_a_rule_fires_only_after_its_condition_held_for_the_duration() -> None:
    # p95 above 2000 from t=0; "for 1m": pending at 0, firing at 60.
    got = run("p95_latency_ms > 2000 for 1m", [2500.0] * 20)
    assert got == [(0, "pending"), (60, "firing")]


def test_a_rule_without_for_fires_at_once() -> None:
    assert run("error_rate > 0.05", [0.01, 0.2, 0.2]) == [(5, "firing")]


def test_a_blip_shorter_than_the_duration_never_fires() -> None:
    got = run("p95_latency_ms > 2000 for 1m", [2500.0] * 6 + [100.0] * 5)
    assert got == [(0, "pending"), (30, "cancelled")]


def test_firing_is_not_repeated_while_the_condition_holds() -> None:
    got = run("rps > 10", [50.0] * 100)
    assert [k for _, k in got] == ["firing"]


def test_hysteresis_keeps_a_value_hovering_at_the_threshold_from_flapping() -> None:
    # Fires above 2000; 1950 and 1850 are inside the 10 % band (clears below 1800): still firing.
    values = [2100.0, 1950.0, 2050.0, 1850.0, 2010.0, 1900.0] * 5
    assert [k for _, k in run("p95_latency_ms > 2000", values)] == ["firing"]


def test_a_firing_rule_resolves_once_clear_for_resolve_after() -> None:
    # Clear (below 1800) from t=10; resolve_after 30 s: resolved at t=40.
    got = run("p95_latency_ms > 2000", [2500.0, 2500.0] + [1000.0] * 10)
    assert got == [(0, "firing"), (40, "resolved")]


def test_a_relapse_inside_resolve_after_restarts_the_clear_timer() -> None:
    got = run("p95_latency_ms > 2000", [2500.0, 1000.0, 1000.0, 2500.0] + [1000.0] * 10)
    assert got == [(0, "firing"), (50, "resolved")]


def test_no_data_never_starts_an_alert_and_clears_a_firing_one() -> None:
    assert run("p95_latency_ms > 2000", [None] * 5) == []
    got = run("p95_latency_ms > 2000", [3000.0] + [None] * 10)
    assert got == [(0, "firing"), (35, "resolved")]


def test_cooldown_holds_back_a_second_firing_then_lets_it_through() -> None:
    # Fires at 0, resolves at 35 (clear from 5, resolve_after 30); back above at 40.
    # Cooldown 300 s after resolving: waits pending, fires at 335.
    policy = Policy(cooldown_s=300, hysteresis=0.1, resolve_after_s=30)
    values = [3000.0] + [100.0] * 7 + [3000.0] * 80
    got = run("p95_latency_ms > 2000", values, policy=policy)
    assert got == [(0, "firing"), (35, "resolved"), (40, "pending"), (335, "firing")]


def test_a_condition_gone_during_the_cooldown_never_fires() -> None:
    values = [3000.0] + [100.0] * 7 + [3000.0] * 4 + [100.0] * 80
    got = run("p95_latency_ms > 2000", values)
    assert [k for _, k in got] == ["firing", "resolved", "pending", "cancelled"]


def test_less_than_rules_clear_upwards() -> None:
    # cache_hit_rate < 0.3 fires at 0.2; 0.31 is inside the band (clears above 0.33).
    got = run("cache_hit_rate < 0.3", [0.2, 0.31, 0.32] * 4 + [0.5] * 10)
    assert [k for _, k in got] == ["firing", "resolved"]


@given(st.lists(st.one_of(st.none(), st.floats(0, 5000)), max_size=200), st.sampled_from([0, 10, 60]))
def test_transitions_always_follow_the_state_machine(values: list[float | None], for_s: int) -> None:
    """Whatever the values: firing and resolved alternate, starting with firing; nothing fires twice."""
    text = "p95_latency_ms > 2000" + (f" for {for_s}s" if for_s else "")
    kinds = [k for _, k in run(text, values)]
    notify = [k for k in kinds if k in ("firing", "resolved")]
    assert all(a != b for a, b in itertools.pairwise(notify))
    assert not notify or notify[0] == "firing"
    legal = {
        None: {"pending", "firing"},
        "pending": {"firing", "cancelled"},
        "firing": {"resolved"},
        "resolved": {"pending", "firing"},
        "cancelled": {"pending", "firing"},
    }
    prev = None
    for k in kinds:
        assert k in legal[prev], (prev, k)
        prev = k
