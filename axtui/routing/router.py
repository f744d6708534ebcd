"""The router: which deployments serve a call, in what order, and why.

`HealthRouter.plan` runs, for every call:

1. **A/B test**: a caller of a model under test is moved, sticky per
   user, to its variant's model (recorded as ``<test>:<variant>``);
2. **rule**: the first ``[[routing.rules]]`` entry matching the (variant's)
   model, user, key, tags, prompt size and hour decides the strategy, the
   deployments to choose among, fallbacks and region;
3. **filter**: deployments outside a required region are dropped;
   those lacking a capability the request needs (tools, images, JSON mode,
   context window, output limit) and those whose circuit is open are
   skipped; one resting after an upstream 429 goes last;
4. **rank**: the strategy orders the rest (`axtui.routing.strategies`); a
   half-open deployment goes first so the call probes it; when the prompt
   nearly fills the first choice's window, larger windows come next, so a
   context-too-long error moves to one that fits; a preferred region comes
   before the others; the rule's fallbacks follow.

Every deployment considered gets a reason in ``RoutePlan.reasons``. The
engine tries the candidates in order; `begin` and `observe` feed each
attempt back into the health book.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ROUTING_STRATEGIES, RoutingConfig, RoutingRule
from axtui.errors import ConfigError, InvalidRequest, RouteUnavailable, UnknownModel
from axtui.ports import Attempt, PriceBook, RoutePlan
from axtui.routing.abtest import ABAssignment, ABBook
from axtui.routing.catalog import Catalog
from axtui.routing.fit import Requirements, misfit
from axtui.routing.health import HealthBook, HealthPolicy, HealthSnapshot, Transition, classify
from axtui.routing.rules import CompiledRule, RuleBook, RuleCheck
from axtui.routing.strategies import STRATEGIES, Ranking
from axtui.types import Caller, ChatRequest, Deployment

__all__ = ["Decision", "HealthRouter", "RouteUnavailable", "RoutingEvent"]

log = logging.getLogger(__name__)

# The prompt is an estimate; past this share of the first choice's window,
# larger windows are lined up behind it.
_NEAR_FULL = 0.5
_MAX_PENDING_EVENTS = 10_000
_MAX_MEMO = 50_000
_BEYOND = "ranked past routing.max_attempts: not tried"
_MEMO_TTL_S = 60.0


@dataclass(slots=True)
class RoutingEvent:
    """A failed attempt or a circuit change, waiting to be written to ``route_events``."""

    ts: float
    deployment: str
    kind: str
    error_class: str | None = None
    http_status: int | None = None
    latency_ms: float | None = None
    retry_after: float | None = None
    detail: str | None = None


@dataclass(slots=True)
class Decision:
    """A plan and what led to it (``ax route explain`` shows all of it)."""

    plan: RoutePlan
    model: str
    target: str
    requirements: Requirements
    pool: list[Deployment]
    ab: ABAssignment | None = None
    rule_checks: list[RuleCheck] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    explored: str | None = None


class HealthRouter:
    """The `axtui.ports.Router` of ax: strategies, rules, A/B tests, health.

    Args:
        catalog: the deployments and aliases served.
        routing: the ``[routing]`` settings (validated).
        clock: every health decision reads it.
        prices: the price book the cost strategy asks for estimates.
        typical_output: output tokens to price a call at when it sets no limit.
        seed: seeds the random choices (weighted draws, exploration).
        health: a health book to share or reuse (one is made when None).

    Raises:
        ConfigError: a rule names a deployment, model or alias nobody serves.
    """

    def __init__(
        self,
        catalog: Catalog,
        routing: RoutingConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        prices: PriceBook | None = None,
        typical_output: int = 512,
        seed: int | None = None,
        health: HealthBook | None = None,
    ) -> None:
        routing = routing or RoutingConfig()
        self.catalog = catalog
        self.clock = clock
        self.prices = prices
        self.typical_output = typical_output
        self.rng = random.Random(seed)
        self.health = health or HealthBook(HealthPolicy.from_config(routing), clock, catalog.deployments)
        self.health.listeners.append(self._circuit_changed)
        #: Failed attempts and circuit changes not yet written to the store.
        self.events: deque[RoutingEvent] = deque(maxlen=_MAX_PENDING_EVENTS)
        self._turns: dict[str, int] = {}
        self._price_memo: dict[Any, Any] = {}
        self._memo_at = clock.monotonic()
        self.configure(routing)

    # -- configuration --------------------------------------------------------------------

    def configure(self, routing: RoutingConfig) -> None:
        """Apply new routing settings (rules, A/B tests, strategy) to calls from now on.

        Raises:
            ConfigError: a rule names something nobody serves; the old settings stay.
        """
        problems = check_references(routing, self.catalog)
        if problems:
            raise ConfigError("invalid routing config:\n  " + "\n  ".join(problems))
        rules, ab = RuleBook(routing.rules), ABBook(routing.ab_tests)
        self.routing = routing
        self.rules = rules
        self.ab = ab
        self.default_strategy = routing.strategy
        self.exploration = routing.exploration
        # News older than a slot of the health window is worth a look.
        self.explore_after_s = routing.window_s / 6
        policy = HealthPolicy.from_config(routing)
        if policy != self.health.policy:
            self.health.set_policy(policy)

    # -- the port -------------------------------------------------------------------------

    def plan(self, request: ChatRequest, caller: Caller, *, strategy: str | None = None) -> RoutePlan:
        """Candidates for this call, best first, with a reason for every deployment considered.

        Raises:
            UnknownModel: nothing serves the requested model.
            InvalidRequest: ``strategy`` names no strategy.
            RouteUnavailable: every deployment's circuit is open, or none is in a required region.
        """
        return self.decide(request.model, caller, Requirements.of(request), strategy).plan

    def begin(self, deployment: Deployment) -> None:
        """A call to ``deployment`` starts."""
        self.health.begin(deployment)

    def observe(self, attempt: Attempt) -> None:
        """An attempt ended: learn from it, and keep failures for the store."""
        outcome = classify(attempt.ok, attempt.error)
        if outcome in ("fault", "rate_limited"):
            err = attempt.error
            self.events.append(RoutingEvent(
                ts=self.clock.now(),
                deployment=attempt.deployment.id,
                kind="failure" if outcome == "fault" else "rate_limited",
                error_class=err.kind if err is not None else None,
                http_status=getattr(err, "http_status", None),
                latency_ms=attempt.latency_ms,
                retry_after=attempt.retry_after if attempt.retry_after is not None else getattr(err, "retry_after", None),
                detail=err.message[:512] if err is not None else None,
            ))
        # After the failure is queued, so a circuit it opens is written after it.
        self.health.observe(attempt.deployment, attempt.ok, attempt.latency_ms, attempt.ttft_ms,
                            attempt.output_tokens, attempt.error, attempt.retry_after, usage=attempt.usage)

    def _circuit_changed(self, t: Transition) -> None:
        log.warning("routing: circuit of %s %s -> %s: %s", t.deployment, t.before, t.after, t.reason)
        self.events.append(RoutingEvent(ts=t.ts, deployment=t.deployment, kind="circuit",
                                        detail=f"{t.before}->{t.after}: {t.reason}"[:512]))

    # -- views ----------------------------------------------------------------------------

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategy names a call may ask for."""
        return ROUTING_STRATEGIES

    def health_snapshot(self) -> list[HealthSnapshot]:
        """Every known deployment's health now (for status tables and the dashboard)."""
        return self.health.snapshot()

    # -- deciding -------------------------------------------------------------------------

    def decide(
        self,
        model: str,
        caller: Caller,
        req: Requirements,
        strategy: str | None = None,
        *,
        trace: bool = False,
        dry: bool = False,
    ) -> Decision:
        """The plan for a call of ``model`` by ``caller`` needing ``req``, and how it was reached.

        ``trace`` also records why each rule did or did not match. ``dry``
        leaves no trace in the router: round-robin does not advance, no call
        explores, and weighted draws use their own random numbers.
        """
        now, wall = self.clock.monotonic(), self.clock.now()
        ab = self.ab.assign(model, caller) if self.ab.tests else None
        target = ab.model if ab is not None else model
        rule: CompiledRule | None = None
        checks: list[RuleCheck] = []
        if self.rules.rules:
            rule = self.rules.match(target, caller, req.prompt_tokens, wall)
            if trace:
                checks = self.rules.check(target, caller, req.prompt_tokens, wall)
        name = strategy or (rule.config.strategy if rule is not None else None) or self.default_strategy
        rank = STRATEGIES.get(name)
        if rank is None:
            raise InvalidRequest(
                f"unknown routing strategy {name!r}; use one of: {', '.join(ROUTING_STRATEGIES)}", param="strategy"
            )
        rc = rule.config if rule is not None else None
        pool = self._resolve(rc.deployments) if rc is not None and rc.deployments else self.catalog.resolve(target)
        region = rc.region if rc is not None else None
        required = region if rc is not None and rc.require_region else None

        reasons: dict[str, str] = {}
        usable: list[Deployment] = []
        cooling: list[tuple[float, Deployment]] = []
        misfits: list[Deployment] = []
        blocked: list[tuple[float, str]] = []
        seen: set[int] = set()
        probing = False
        health = self.health.get
        for d in pool:
            if id(d) in seen:
                continue
            seen.add(id(d))
            h = health(d)
            # The common case first, cheaply: it fits, and is healthy and rested.
            if ((required is None or d.region == required) and h.circuit.state == "closed"
                    and h.cooldown_until <= now and misfit(d, req) is None):
                usable.append(d)
                continue
            verdict = self._screen(d, req, required, rc, now)
            if verdict is None:
                usable.append(d)
                probing = probing or h.circuit.state == "half_open"
                continue
            kind, why, wait = verdict
            reasons[d.id] = why
            if kind == "cooling":
                cooling.append((wait, d))
            elif kind == "misfit":
                misfits.append(d)
            elif kind == "open":
                blocked.append((wait, d.id))

        turn = 0
        if name in ("round-robin", "least-busy"):
            key = f"{target}\x1f{rc.name if rc is not None else ''}"
            turn = self._turns.get(key, 0)
            if not dry:
                self._turns[key] = turn + 1
        if name in ("cost", "balanced") and (len(self._price_memo) > _MAX_MEMO or now - self._memo_at > _MEMO_TTL_S):
            # Prices may be re-imported while the gateway runs: estimates are kept a minute.
            self._price_memo.clear()
            self._memo_at = now
        ranking = Ranking(self.health, req, now, random.Random(0) if dry else self.rng, self.prices,
                          self.typical_output, self.exploration if name == "latency" and not dry else 0.0, turn,
                          self.explore_after_s, self.routing.max_attempts, self._price_memo,
                          max_p95_ms=self.max_p95_for(target, model, rc) if name == "balanced" else None)
        ranked = rank(usable, ranking) if usable else []
        ranked = self._arrange(ranked, req, region, probing)
        notes = {d.id: n for d, n in ranked} if trace else {}

        ordered = ranked
        if rc is not None and rc.fallbacks:
            ordered += self._fallbacks(rc.fallbacks, req, required, rc, now, seen, reasons)
        cooling.sort(key=lambda t: t[0])
        ordered += [(d, reasons.pop(d.id)) for _, d in cooling]
        if not ordered and misfits:
            # Nothing fits by the catalog's account: the catalog may be wrong (an
            # unknown model's capabilities) or the estimate high; let the provider decide.
            misfits.sort(key=lambda d: -(d.context_window or 0))
            ordered = [(d, f"{reasons.pop(d.id)}, but nothing else fits: tried anyway") for d in misfits]
        if not ordered:
            raise self._unavailable(model, target, pool, required, rc, blocked, reasons)

        candidates = []
        first = f"chosen ({name}): "
        depth = self.routing.max_attempts
        for i, (d, note) in enumerate(ordered):
            candidates.append(d)
            if i == 0:
                reasons[d.id] = first + note
            elif i < depth or trace:
                reasons[d.id] = f"fallback {i}: {note}"
            else:
                # Not tried (the engine stops at max_attempts); `explain` has the details.
                reasons[d.id] = _BEYOND
        plan = RoutePlan(
            candidates,
            strategy=name,
            rule=rc.name if rc is not None else None,
            variant=ab.label if ab is not None else None,
            ab_test=ab.test if ab is not None else None,
            required_region=required,
            reasons=reasons,
        )
        return Decision(plan, model, target, req, pool, ab, checks, notes, ranking.explored)

    def max_p95_for(self, target: str, model: str, rc: RoutingRule | None) -> float | None:
        """The balanced strategy's p95 bound: the rule's, else the model's or alias's, else ``"*"``'s."""
        if rc is not None and rc.max_p95_ms is not None:
            return rc.max_p95_ms
        bounds = self.routing.max_p95_ms
        if not bounds:
            return None
        for name in (target, model, "*"):
            if name in bounds:
                return bounds[name]
        return None

    def _screen(
        self, d: Deployment, req: Requirements, required: str | None, rc: Any, now: float
    ) -> tuple[str, str, float] | None:
        """None when ``d`` may be ranked; else (kind, reason, wait seconds)."""
        if required is not None and d.region != required:
            return ("region", f"skipped: in {d.region or 'no region'}, outside {required}, which rule "
                              f"{rc.name!r} requires", 0.0)
        why = misfit(d, req)
        if why is not None:
            return "misfit", f"skipped: {why}", 0.0
        h = self.health.get(d)
        if not h.available(now):
            wait = h.circuit.retry_in(now)
            state = "open" if h.circuit.state == "open" else "half-open, a probe call is in flight"
            return "open", f"skipped: circuit {state} ({h.circuit.reason}); next probe in {wait:.0f}s", wait
        cool = h.cooling(now)
        if cool > 0:
            return "cooling", f"resting after an upstream 429 ({cool:.1f}s left): tried last", cool
        return None

    def _arrange(self, ranked: list[tuple[Deployment, str]], req: Requirements, region: str | None,
                 probing: bool) -> list[tuple[Deployment, str]]:
        """Probes first, then room for a long prompt, then the preferred region."""
        if not ranked:
            return ranked
        for i, (d, note) in enumerate(ranked if probing else ()):
            if self.health.get(d).circuit.state == "half_open":
                del ranked[i]
                ranked.insert(0, (d, f"half-open: this call probes it ({note})"))
                break
        first = ranked[0][0]
        if first.context_window and req.context_tokens > _NEAR_FULL * first.context_window:
            bigger = [(d, f"{n}; larger context window ({d.context_window:,}) in case the prompt does not fit")
                      for d, n in ranked[1:] if (d.context_window or 0) > first.context_window]
            if bigger:
                rest = [(d, n) for d, n in ranked[1:] if (d.context_window or 0) <= first.context_window]
                ranked = [ranked[0], *bigger, *rest]
        if region:
            inside = [(d, f"{n}; in preferred region {region}") for d, n in ranked if d.region == region]
            if inside and len(inside) < len(ranked):
                ranked = inside + [(d, n) for d, n in ranked if d.region != region]
        return ranked

    def _fallbacks(self, names: Sequence[str], req: Requirements, required: str | None, rc: Any, now: float,
                   seen: set[int], reasons: dict[str, str]) -> list[tuple[Deployment, str]]:
        out: list[tuple[Deployment, str]] = []
        for d in self._resolve(names):
            if id(d) in seen:
                continue
            seen.add(id(d))
            verdict = self._screen(d, req, required, rc, now)
            if verdict is None:
                out.append((d, f"fallback named by rule {rc.name!r}"))
            else:
                reasons[d.id] = verdict[1]
        return out

    def _resolve(self, names: Sequence[str]) -> list[Deployment]:
        out: list[Deployment] = []
        for n in names:
            out.extend(self.catalog.resolve(n))
        return out

    def _unavailable(self, model: str, target: str, pool: list[Deployment], required: str | None, rc: Any,
                     blocked: list[tuple[float, str]], reasons: dict[str, str]) -> RouteUnavailable:
        served = f"{model!r}" + (f" (variant model {target!r})" if target != model else "")
        if required is not None and all(d.region != required for d in pool):
            where = ", ".join(f"{d.id} in {d.region or 'no region'}" for d in pool)
            return RouteUnavailable(
                f"rule {rc.name!r} requires region {required!r}, but no deployment of {served} is there ({where}); "
                f"the call was not sent outside {required}. Add a deployment in {required} or change the rule.",
                reasons=reasons,
            )
        detail = "; ".join(f"{dep}: {why.removeprefix('skipped: ')}" for dep, why in reasons.items())
        wait = min((w for w, _ in blocked), default=None)
        stay = f" (staying in {required}, as rule {rc.name!r} requires)" if required is not None else ""
        return RouteUnavailable(
            f"no deployment of {served} can take the call right now{stay}: {detail}. "
            + (f"Retry in {wait:.0f}s, when a circuit lets a probe through." if wait is not None else ""),
            retry_after=wait,
            reasons=reasons,
        )


def check_references(routing: RoutingConfig, catalog: Catalog) -> list[str]:
    """Problems with names the routing config uses that the catalog does not serve.

    Each problem names the rule or test and the field, and lists what is served.
    """
    problems: list[str] = []
    served = ", ".join(catalog.names())

    def known(name: str) -> bool:
        try:
            catalog.resolve(name)
        except (UnknownModel, InvalidRequest):  # InvalidRequest: an embedding model, which chat cannot route to
            return False
        return True

    for rule in routing.rules:
        for field_name in ("deployments", "fallbacks"):
            for i, name in enumerate(getattr(rule, field_name)):
                if not known(name):
                    problems.append(
                        f"rule {rule.name!r}, {field_name}[{i}]: {name!r} is not a deployment, model or alias "
                        f"served here; served: {served} (or a deployment id like openai/gpt-4o)"
                    )
    for test in routing.ab_tests:
        for v in test.variants:
            if not known(v.model):
                problems.append(
                    f"A/B test {test.name!r}, variant {v.name!r}: model {v.model!r} is not served here; served: {served}"
                )
    return problems
