"""The alert state machine: ok → pending → firing → (resolved) ok.

One `step` per evaluation, pure (the time and the measured value are
passed in), so it is tested with a fake clock and property tests.

- **ok → pending** when the condition starts to hold; **pending → firing**
  once it has held for the rule's ``for`` duration (straight to firing when
  the rule has none). A pending rule whose condition clears goes back to
  ok (a ``cancelled`` transition) without ever notifying.
- **Hysteresis**: a firing rule resolves only when the value is past the
  threshold by ``hysteresis`` × |threshold| in the clearing direction
  (``p95 > 2000`` with 10 % clears below 1800) and has stayed there for
  ``resolve_after_s``. A value that hovers around the threshold therefore
  fires once, not on every wobble. Equality rules have no margin.
- **Dedup**: a rule fires once per episode; while firing nothing repeats.
- **Cooldown**: after resolving, a rule does not fire again for
  ``cooldown_s``; if its condition holds meanwhile it waits as pending and
  fires when the cooldown ends, if the condition still holds.
- No data (None: no served call in the window for a latency metric) never
  starts an alert and counts as clear for a firing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from axtui.metrics.alerts.grammar import AlertRule, compare

__all__ = ["Policy", "RuleState", "State", "Transition", "TransitionKind", "clear_threshold", "step"]

State = Literal["ok", "pending", "firing"]
TransitionKind = Literal["pending", "firing", "resolved", "cancelled"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How eagerly rules fire and resolve (from ``settings.alerts``)."""

    cooldown_s: float = 300.0
    hysteresis: float = 0.1
    resolve_after_s: float = 30.0


@dataclass(slots=True)
class RuleState:
    """Where one rule stands.

    Attributes:
        state: ok, pending or firing.
        since: when the current state began (None for a rule never triggered).
        clear_since: while firing, when the value began to be clear.
        last_fired: when the rule last fired.
        last_resolved: when the rule last resolved.
        value: the last value measured.
    """

    state: State = "ok"
    since: float | None = None
    clear_since: float | None = None
    last_fired: float | None = None
    last_resolved: float | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state to be stored and announced."""

    kind: TransitionKind
    previous: State
    state: State
    at: float
    value: float | None


def clear_threshold(rule: AlertRule, hysteresis: float) -> Decimal:
    """The threshold a firing rule's value must pass to count as clear."""
    margin = abs(rule.threshold) * Decimal(repr(hysteresis))
    if rule.op in (">", ">="):
        return rule.threshold - margin
    if rule.op in ("<", "<="):
        return rule.threshold + margin
    return rule.threshold


def _cooling(st: RuleState, now: float, policy: Policy) -> bool:
    return st.last_resolved is not None and now - st.last_resolved < policy.cooldown_s


def step(
    rule: AlertRule, st: RuleState, value: Decimal | float | None, now: float, policy: Policy
) -> Transition | None:
    """Advance ``st`` (in place) by one evaluation; the transition made, if any."""
    fv = None if value is None else float(value)
    st.value = fv
    holds = value is not None and rule.holds(value)
    prev = st.state
    if prev == "ok":
        if not holds:
            return None
        if rule.for_s <= 0 and not _cooling(st, now, policy):
            return _fire(st, now, prev, fv)
        st.state, st.since = "pending", now
        return Transition("pending", prev, "pending", now, fv)
    if prev == "pending":
        if not holds:
            st.state, st.since = "ok", now
            return Transition("cancelled", prev, "ok", now, fv)
        since = st.since if st.since is not None else now
        if now - since >= rule.for_s and not _cooling(st, now, policy):
            return _fire(st, now, prev, fv)
        return None
    # firing
    still = value is not None and compare(value, rule.op, clear_threshold(rule, policy.hysteresis))
    if still:
        st.clear_since = None
        return None
    if st.clear_since is None:
        st.clear_since = now
    if now - st.clear_since >= policy.resolve_after_s:
        st.state, st.since, st.clear_since, st.last_resolved = "ok", now, None, now
        return Transition("resolved", prev, "ok", now, fv)
    return None


def _fire(st: RuleState, now: float, prev: State, value: float | None) -> Transition:
    st.state, st.since, st.clear_since, st.last_fired = "firing", now, None, now
    return Transition("firing", prev, "firing", now, value)
