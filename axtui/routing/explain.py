"""Why a call would go where it goes: the data behind ``ax route explain``.

`explain` asks the router for a dry-run plan (nothing in the router moves:
no round-robin turn, no exploration) and gathers everything a user needs
to trust it: the A/B variant, the rules checked and the one that decided,
the strategy, what the request needs, and for every deployment considered
its place (chosen, fallback or skipped), the reason, its health and its
estimated price. `describe_rule` gives one line per rule for tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from axtui.config import RoutingRule
from axtui.routing.abtest import ABAssignment
from axtui.routing.fit import Requirements
from axtui.routing.health import HealthSnapshot
from axtui.routing.router import Decision, HealthRouter, RouteUnavailable
from axtui.routing.rules import RuleCheck
from axtui.routing.usage import expected_cost
from axtui.types import Caller, Deployment

__all__ = ["DEFAULT_PROMPT_TOKENS", "CandidateView", "Explanation", "describe_rule", "explain"]

#: The prompt size assumed when none is given.
DEFAULT_PROMPT_TOKENS = 500


@dataclass(slots=True)
class CandidateView:
    """One deployment considered for the call.

    ``position`` is 0 for the first choice, k for the k-th fallback, None
    when skipped. ``estimate_nanos`` is the expected cost of this call
    there (None when its price is unknown); ``cost_source`` says where the
    tokens behind it come from (``history``: recorded calls there;
    ``list price``: the prompt and a typical answer), ``cost_basis`` which
    tokens they are.
    """

    deployment: str
    provider: str
    model: str
    region: str
    status: str
    position: int | None
    reason: str
    context_window: int | None
    estimate_nanos: int | None
    health: HealthSnapshot
    cost_source: str = "list price"
    cost_basis: str = ""


@dataclass(slots=True)
class Explanation:
    """Everything behind one routing decision."""

    model: str
    target: str
    caller: Caller
    requirements: Requirements
    assumed_tokens: bool
    strategy: str | None
    rule: str | None
    rule_checks: list[RuleCheck]
    ab: ABAssignment | None
    required_region: str | None
    preferred_region: str | None
    candidates: list[CandidateView] = field(default_factory=list)
    max_attempts: int = 3
    error: str | None = None

    @property
    def chosen(self) -> CandidateView | None:
        """The deployment the call would try first, if any."""
        return next((c for c in self.candidates if c.position == 0), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "model": self.model,
            "target": self.target,
            "user": self.caller.user,
            "key": self.caller.key,
            "tags": list(self.caller.tags),
            "requirements": {**asdict(self.requirements), "assumed": self.assumed_tokens,
                             "summary": self.requirements.describe()},
            "strategy": self.strategy,
            "rule": self.rule,
            "rules_checked": [asdict(c) for c in self.rule_checks],
            "ab_test": None if self.ab is None else {**asdict(self.ab), "label": self.ab.label},
            "required_region": self.required_region,
            "preferred_region": self.preferred_region,
            "max_attempts": self.max_attempts,
            "error": self.error,
            "candidates": [
                {**{k: v for k, v in asdict(c).items() if k != "health"}, "health": asdict(c.health)}
                for c in self.candidates
            ],
        }


def explain(
    router: HealthRouter,
    model: str,
    *,
    user: str = "anonymous",
    key: str | None = None,
    tags: Sequence[str] = (),
    tokens: int | None = None,
    output_tokens: int | None = None,
    tools: bool = False,
    images: bool = False,
    json_mode: bool = False,
    strategy: str | None = None,
) -> Explanation:
    """How ``router`` would route a call of ``model`` with this shape, and why.

    Args:
        router: the router to ask (its health is what it has learned or replayed).
        model: a model, alias or deployment id.
        user, key, tags: who calls (rules and A/B tests look at them).
        tokens: the prompt's size in tokens (`DEFAULT_PROMPT_TOKENS` when None).
        output_tokens: the caller's max_tokens, if any.
        tools, images, json_mode: what the request uses.
        strategy: a strategy to force, as ``CallOptions.strategy`` would.

    Raises:
        UnknownModel: nothing serves ``model``.
        InvalidRequest: ``strategy`` is not a strategy.
    """
    caller = Caller(user=user, key=key, tags=tuple(tags))
    req = Requirements(
        prompt_tokens=DEFAULT_PROMPT_TOKENS if tokens is None else tokens,
        output_tokens=output_tokens,
        tools=tools,
        vision=images,
        json_mode=json_mode,
    )
    max_attempts = router.routing.max_attempts
    d: Decision | None = None
    error: str | None = None
    order: list[Deployment] = []
    try:
        d = router.decide(model, caller, req, strategy, trace=True, dry=True)
    except RouteUnavailable as exc:
        # Still show every rule and deployment, with why none can serve.
        error, reasons = exc.message, exc.reasons
    else:
        reasons, order = d.plan.reasons, d.plan.candidates
    ab = router.ab.assign(model, caller) if router.ab.tests else None
    target = ab.model if ab is not None else model
    rule_checks = d.rule_checks if d is not None else router.rules.check(target, caller, req.prompt_tokens,
                                                                          router.clock.now())
    rule_name = next((c.rule for c in rule_checks if c.matched), None)
    rule_cfg = next((r.config for r in router.rules.rules if r.name == rule_name), None)

    def view(dep: Deployment, position: int | None) -> CandidateView:
        est = expected_cost(router.health.usage, router.prices, dep, req.prompt_tokens, router.typical_output,
                            req.output_tokens)
        if position is None:
            status = "skipped"
        else:
            status = "chosen" if position == 0 else ("fallback" if position < max_attempts else "not tried")
        return CandidateView(
            deployment=dep.id, provider=dep.provider, model=dep.model, region=dep.region, status=status,
            position=position, reason=reasons.get(dep.id, ""), context_window=dep.context_window,
            estimate_nanos=est.nanos, health=router.health.get(dep).snapshot(), cost_source=est.source,
            cost_basis=est.describe(),
        )

    candidates = [view(dep, i) for i, dep in enumerate(order)]
    listed = {dep.id for dep in order}
    for dep_id in reasons:
        if dep_id not in listed:
            dep = router.catalog.get(dep_id)
            if dep is not None:
                candidates.append(view(dep, None))
    return Explanation(
        model=model,
        target=target,
        caller=caller,
        requirements=req,
        assumed_tokens=tokens is None,
        strategy=d.plan.strategy if d is not None else None,
        rule=rule_name,
        rule_checks=rule_checks,
        ab=ab,
        required_region=rule_cfg.region if rule_cfg is not None and rule_cfg.require_region else None,
        preferred_region=rule_cfg.region if rule_cfg is not None and not rule_cfg.require_region else None,
        candidates=candidates,
        max_attempts=max_attempts,
        error=error,
    )


def describe_rule(rule: RoutingRule) -> tuple[str, str]:
    """(conditions, action) of a rule in words, for tables."""
    when: list[str] = []
    if rule.model != "*":
        when.append(f"model {rule.model}")
    if rule.user != "*":
        when.append(f"user {rule.user}")
    if rule.key != "*":
        when.append(f"key {rule.key}")
    if rule.tags:
        when.append("tags " + "+".join(rule.tags))
    if rule.min_prompt_tokens is not None:
        when.append(f"prompt ≥ {rule.min_prompt_tokens:,}")
    if rule.max_prompt_tokens is not None:
        when.append(f"prompt ≤ {rule.max_prompt_tokens:,}")
    if rule.hours:
        when.append(f"hours {rule.hours} {rule.timezone}")
    then: list[str] = []
    if rule.strategy:
        then.append(f"strategy {rule.strategy}")
    if rule.deployments:
        then.append("among " + ", ".join(rule.deployments))
    if rule.fallbacks:
        then.append("then " + ", ".join(rule.fallbacks))
    if rule.region:
        then.append(("only in " if rule.require_region else "prefer ") + rule.region)
    return (", ".join(when) or "every call"), (", ".join(then) or "default routing")
