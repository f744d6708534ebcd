"""What-if replay: the recorded calls again, under another policy.

`replay_calls` takes the calls a gateway recorded (who asked for which
model, the tokens, the timings, where each went) and plays them in time
order through a `HealthRouter` configured with another routing policy
(a strategy, rules), another price sheet or another cache policy. The
router sees each deployment's health as it was recorded: every recorded
answer and failed attempt is fed to its health book at its own time, and
the replayed calls themselves are in flight for their projected latency.

What a call becomes:

- **kept as recorded** when its policy did not change: the strategy and
  rule that would decide it are the ones recorded (round-robin turns,
  weighted draws and exploration are chance, not policy, so they are not
  redrawn), or it never reached routing (refused, rate limited, failed);
  a new price sheet still reprices its recorded tokens;
- **a cache hit** when the cache policy makes it one: ``--cache off`` and
  semantic hits below ``threshold`` go upstream instead; ``--cache on``
  serves a call whose conversation the same user asked of the same model
  within the cache's TTL (exact hits only: no embeddings are recorded, so
  new semantic hits cannot be told);
- **routed** otherwise: the first candidate of the router's plan. On the
  recorded deployment it keeps its recorded tokens and latency; elsewhere
  it takes that deployment's recorded tokens per call for its prompt size
  (`axtui.routing.usage`, learned from the whole period; its own answer
  length when the deployment has no history) and the latency of the
  recorded call there nearest in time.

Pure logic: no store, no clock of its own. `axtui.routing.whatif_store`
reads the calls.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from axtui.config import RoutingConfig
from axtui.errors import AxError
from axtui.histogram import LogHistogram
from axtui.ports import PriceBook
from axtui.routing.catalog import Catalog
from axtui.routing.fit import Requirements
from axtui.routing.health import HealthBook, HealthPolicy
from axtui.routing.history import Observation
from axtui.routing.router import HealthRouter
from axtui.routing.usage import UsageBook
from axtui.types import Caller, Deployment, Usage

__all__ = ["Group", "RecordedCall", "WhatIfPolicy", "WhatIfReport", "replay_calls", "savings_line"]

CacheMode = Literal["on", "off"]
# A replayed cache hit takes this long when no recorded hit says otherwise.
_HIT_MS = 1.0


@dataclass(slots=True)
class RecordedCall:
    """One recorded call, as the replay needs it.

    ``deployment`` is None for a cache hit or a call that reached none;
    ``strategy`` and ``rule`` are what routed it; ``conversation`` is the
    recorded hash of its messages (for exact cache hits).
    """

    ts: float
    user: str
    requested_model: str
    status: str
    usage: Usage
    latency_ms: float = 0.0
    cost_nanos: int | None = None
    saved_nanos: int | None = None
    deployment: str | None = None
    provider: str | None = None
    model: str | None = None
    cache: str = "miss"
    similarity: float | None = None
    strategy: str | None = None
    rule: str | None = None
    key: str | None = None
    tags: tuple[str, ...] = ()
    conversation: str | None = None


@dataclass(slots=True)
class WhatIfPolicy:
    """The policy to replay under; None fields keep what was recorded.

    ``strategy`` is forced on every call (as a call's own strategy
    option would be); ``routing`` replaces the routing section (rules,
    default strategy, thresholds); ``prices`` the price book; ``cache``
    switches the response cache on or off; ``threshold`` is the least
    similarity a semantic hit must have to stay a hit.
    """

    strategy: str | None = None
    routing: RoutingConfig | None = None
    prices: PriceBook | None = None
    cache: CacheMode | None = None
    threshold: float | None = None
    cache_ttl_s: float = 3600.0


@dataclass(slots=True)
class Group:
    """Recorded and replayed figures of some calls (all, one model's, one user's)."""

    calls: int = 0
    recorded_nanos: int = 0
    replayed_nanos: int = 0
    moved: int = 0
    recorded_ms: list[float] = field(default_factory=list)
    replayed_ms: list[float] = field(default_factory=list)

    @property
    def savings_nanos(self) -> int:
        """What the replayed policy would have saved (negative: cost more)."""
        return self.recorded_nanos - self.replayed_nanos

    @property
    def ratio(self) -> float | None:
        """Replayed spend over recorded spend; None when nothing was spent."""
        return self.replayed_nanos / self.recorded_nanos if self.recorded_nanos else None

    def p95(self, which: Literal["recorded", "replayed"]) -> float | None:
        """The 95th percentile latency of the calls, recorded or projected."""
        values = self.recorded_ms if which == "recorded" else self.replayed_ms
        return LogHistogram.of(values).quantile(0.95) if values else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (money in nano-dollars and dollars)."""
        return {
            "calls": self.calls,
            "moved": self.moved,
            "recorded_nanos": self.recorded_nanos,
            "replayed_nanos": self.replayed_nanos,
            "savings_nanos": self.savings_nanos,
            "recorded_usd": self.recorded_nanos / 1e9,
            "replayed_usd": self.replayed_nanos / 1e9,
            "savings_usd": self.savings_nanos / 1e9,
            "ratio": self.ratio,
            "recorded_p95_ms": self.p95("recorded"),
            "projected_p95_ms": self.p95("replayed"),
        }


@dataclass(slots=True)
class WhatIfReport:
    """The outcome of a replay: totals, by requested model and by user, and where calls moved."""

    total: Group = field(default_factory=Group)
    by_model: dict[str, Group] = field(default_factory=dict)
    by_user: dict[str, Group] = field(default_factory=dict)
    #: (recorded deployment or "cache", replayed deployment or "cache") -> calls, for calls that moved.
    moves: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Calls moved to a deployment with no recorded tokens: priced with their own answer length.
    no_history: int = 0
    #: Calls moved to a deployment with no recorded answers: their own recorded latency is kept.
    no_latency: int = 0
    #: Calls whose recorded or replayed price is unknown (counted as nothing spent).
    unpriced: int = 0
    new_hits: int = 0
    lost_hits: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "total": self.total.as_dict(),
            "by_model": {k: g.as_dict() for k, g in sorted(self.by_model.items())},
            "by_user": {k: g.as_dict() for k, g in sorted(self.by_user.items())},
            "moves": [{"from": a, "to": b, "calls": n}
                      for (a, b), n in sorted(self.moves.items(), key=lambda t: -t[1])],
            "no_history": self.no_history,
            "no_latency": self.no_latency,
            "unpriced": self.unpriced,
            "new_cache_hits": self.new_hits,
            "lost_cache_hits": self.lost_hits,
            "notes": list(self.notes),
        }


class _Latencies:
    """Recorded successful latencies per deployment, by time, for 'the nearest call there'."""

    def __init__(self, calls: Iterable[RecordedCall]) -> None:
        by: dict[str, list[tuple[float, float]]] = {}
        for c in calls:
            if c.deployment and c.status == "ok" and c.cache == "miss":
                by.setdefault(c.deployment, []).append((c.ts, c.latency_ms))
        self._ts = {k: [t for t, _ in sorted(v)] for k, v in by.items()}
        self._ms = {k: [ms for _, ms in sorted(v)] for k, v in by.items()}

    def near(self, deployment: str, ts: float) -> float | None:
        times = self._ts.get(deployment)
        if not times:
            return None
        i = bisect.bisect_left(times, ts)
        if i == len(times) or (i > 0 and ts - times[i - 1] <= times[i] - ts):
            i -= 1
        return self._ms[deployment][i]


def _observations(calls: Sequence[RecordedCall], failures: Iterable[Observation]) -> list[Observation]:
    """What the recorded run told the router, in time order: answers and failed attempts."""
    out = list(failures)
    for c in calls:
        if c.deployment and c.status == "ok" and c.cache == "miss":
            provider, _, upstream = c.deployment.partition("/")
            out.append(Observation(
                ts=c.ts + c.latency_ms / 1000.0, deployment=c.deployment, provider=c.provider or provider,
                model=c.model or upstream, outcome="ok", latency_ms=c.latency_ms,
                output_tokens=c.usage.output_tokens, usage=None if c.usage.estimated else c.usage,
            ))
    out.sort(key=lambda o: o.ts)
    return out


def replay_calls(
    calls: Sequence[RecordedCall],
    catalog: Catalog,
    routing: RoutingConfig,
    prices: PriceBook,
    policy: WhatIfPolicy,
    *,
    failures: Iterable[Observation] = (),
    typical_output: int = 512,
    seed: int = 0,
) -> WhatIfReport:
    """Replay ``calls`` (any order) under ``policy``; see the module's notes.

    Args:
        calls: the recorded calls.
        catalog: the deployments and aliases served (recorded deployments
            it lacks are added under their recorded names).
        routing: the routing section in force when the calls were made.
        prices: the price book the recorded costs came from.
        policy: what to change.
        failures: failed attempts recorded on the way (``route_events``),
            so circuits and cooldowns open as they did.
        typical_output: the answer length to assume where nothing is known.
        seed: seeds the router's random choices (weighted draws, exploration).
    """
    ordered = sorted(calls, key=lambda c: c.ts)
    report = WhatIfReport()
    if not ordered:
        return report
    new_prices = policy.prices
    sheet = new_prices or prices
    replay_routing = policy.routing or routing
    missing: dict[str, Deployment] = {}
    for c in ordered:
        if c.deployment and c.deployment not in missing and catalog.get(c.deployment) is None:
            provider, _, upstream = c.deployment.partition("/")
            missing[c.deployment] = Deployment(provider=provider, model=c.model or upstream, upstream_model=upstream)
    if missing:
        # Deployments served then but not now: their recorded calls still count, and keep their route.
        catalog = Catalog([*catalog.deployments, *missing.values()], catalog.aliases)
    truth = UsageBook()
    for c in ordered:
        if c.deployment and c.status == "ok" and c.cache == "miss":
            truth.add(c.deployment, c.usage)
    latencies = _Latencies(ordered)
    hit_ms = sorted(c.latency_ms for c in ordered if c.cache != "miss" and c.status == "ok")
    typical_hit_ms = hit_ms[len(hit_ms) // 2] if hit_ms else _HIT_MS

    clock = _Frozen(ordered[0].ts)
    book = HealthBook(HealthPolicy.from_config(replay_routing), clock, catalog.deployments)
    router = HealthRouter(catalog, replay_routing, clock=clock, prices=sheet, typical_output=typical_output,
                          seed=seed, health=book)
    book.listeners.clear()  # circuits opening in the past are no news to log or store
    observations = _observations(ordered, failures)
    k = 0
    ending: list[tuple[float, int, Deployment, tuple[float, Usage] | None]] = []
    seen: dict[tuple[str, str, str], float] = {}
    seq = 0

    for c in ordered:
        clock.t = c.ts
        while k < len(observations) and observations[k].ts <= c.ts:
            o = observations[k]
            clock.t = o.ts
            dep = catalog.get(o.deployment) or Deployment(provider=o.provider, model=o.model,
                                                          upstream_model=o.model)
            book.get(dep).end(o.outcome, o.latency_ms, None, o.output_tokens, o.retry_after, o.error, started=False)
            if o.outcome == "ok":
                book.note_output(o.output_tokens)
                if o.usage is not None:
                    book.usage.add(dep.id, o.usage)
            k += 1
        clock.t = c.ts
        while ending and ending[0][0] <= c.ts:
            at, _, dep, learned = heapq.heappop(ending)
            h = book.get(dep)
            if learned is None:
                h.in_flight = max(0, h.in_flight - 1)  # its recorded answer is among the observations
            else:
                # A call moved here: the router learns from its projected answer as it would have live.
                clock.t = at
                h.end("ok", learned[0], None, learned[1].output_tokens)
                book.note_output(learned[1].output_tokens)
                book.usage.add(dep.id, learned[1])
        clock.t = c.ts

        recorded = c.cost_nanos or 0
        old_place = c.deployment or ("cache" if c.cache != "miss" else "-")
        new_nanos, new_ms, new_place = _outcome(c, policy, seen, typical_hit_ms, report)
        if new_place is None:
            new_nanos, new_ms, new_place, usage = _routed(router, c, policy, report, truth, latencies, sheet,
                                                          catalog, typical_output)
            target = catalog.get(new_place)
            if target is not None:
                seq += 1
                book.get(target).in_flight += 1
                learned = None if new_place == c.deployment else (new_ms, usage)
                heapq.heappush(ending, (c.ts + new_ms / 1000.0, seq, target, learned))
        if c.status == "ok" and c.conversation:
            seen[(c.user, c.requested_model, c.conversation)] = c.ts
        moved = new_place != old_place
        if moved:
            report.moves[(old_place, new_place)] = report.moves.get((old_place, new_place), 0) + 1
        for g in (report.total, report.by_model.setdefault(c.requested_model, Group()),
                  report.by_user.setdefault(c.user, Group())):
            g.calls += 1
            g.recorded_nanos += recorded
            g.replayed_nanos += new_nanos
            g.moved += moved
            if c.status == "ok":
                g.recorded_ms.append(c.latency_ms)
                g.replayed_ms.append(new_ms)
    if policy.cache == "on":
        report.notes.append("--cache on finds exact repeats only: no embeddings are recorded, so semantic hits "
                            "that never happened cannot be told")
    if report.no_history:
        report.notes.append(f"{report.no_history:,} calls moved to a deployment with no recorded calls: priced "
                            "with their own answer length, at its list price")
    if report.no_latency:
        report.notes.append(f"{report.no_latency:,} calls moved to a deployment with no recorded answers: their "
                            "own recorded latency is kept in the projected p95")
    return report


class _Frozen:
    """A clock standing still at ``t`` (the replay clock's frame)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def _outcome(c: RecordedCall, policy: WhatIfPolicy, seen: dict[tuple[str, str, str], float], hit_ms: float,
             report: WhatIfReport) -> tuple[int, float, str | None]:
    """(cost, latency, place) when the cache policy or the call's status decides; place None when routing does."""
    if c.cache != "miss":
        lost = policy.cache == "off" or (c.cache == "semantic" and policy.threshold is not None
                                         and (c.similarity or 0.0) < policy.threshold)
        if not lost:
            return 0, c.latency_ms, "cache"
        report.lost_hits += 1
        return 0, 0.0, None
    if c.status != "ok" or c.deployment is None:
        # Refused, limited or failed before an answer: not a routing question.
        return c.cost_nanos or 0, c.latency_ms, c.deployment or "-"
    if policy.cache == "on" and c.conversation:
        at = seen.get((c.user, c.requested_model, c.conversation))
        if at is not None and (policy.cache_ttl_s <= 0 or c.ts - at <= policy.cache_ttl_s):
            report.new_hits += 1
            return 0, hit_ms, "cache"
    return 0, 0.0, None


def _routed(router: HealthRouter, c: RecordedCall, policy: WhatIfPolicy, report: WhatIfReport, truth: UsageBook,
            latencies: _Latencies, sheet: PriceBook, catalog: Catalog,
            typical_output: int) -> tuple[int, float, str, Usage]:
    """(cost, latency, deployment id, usage) of a call that routing decides under the replayed policy."""
    dep = _route(router, c, policy)
    if dep is None or dep.id == c.deployment:
        # Its recorded route (or no route at all: a lost cache hit costs what the hit saved).
        if c.deployment is None:
            return c.saved_nanos or 0, c.latency_ms, "-", c.usage
        here = catalog.get(c.deployment)
        if policy.prices is None or here is None:
            return c.cost_nanos or 0, c.latency_ms, c.deployment, c.usage
        priced = sheet.cost(here, c.usage)
        report.unpriced += priced is None
        return priced or 0, c.latency_ms, c.deployment, c.usage
    usage, own = _usage_there(truth, dep, c, typical_output)
    report.no_history += not own
    near = latencies.near(dep.id, c.ts)
    report.no_latency += near is None
    priced = sheet.cost(dep, usage)
    report.unpriced += priced is None
    return priced or 0, c.latency_ms if near is None else near, dep.id, usage


def _route(router: HealthRouter, c: RecordedCall, policy: WhatIfPolicy) -> Deployment | None:
    """Where ``c`` goes under the replayed policy; None when it keeps its recorded route or cannot be routed."""
    caller = Caller(user=c.user, key=c.key, tags=c.tags)
    req = Requirements(prompt_tokens=c.usage.input_tokens)
    rule = router.rules.match(c.requested_model, caller, req.prompt_tokens, c.ts) if router.rules.rules else None
    strategy = policy.strategy or (rule.config.strategy if rule is not None else None) or router.default_strategy
    rule_name = rule.name if rule is not None else None
    if c.deployment is not None and c.strategy == strategy and c.rule == rule_name:
        return None
    try:
        decision = router.decide(c.requested_model, caller, req, policy.strategy)
    except AxError:  # a model no longer served, or nothing available then: keep what happened
        return None
    return decision.plan.candidates[0] if decision.plan.candidates else None


def _usage_there(truth: UsageBook, dep: Deployment, c: RecordedCall, typical_output: int) -> tuple[Usage, bool]:
    """The usage ``c`` would have had on ``dep`` and whether recorded calls there gave it."""
    usage, profile = truth.expected_usage(dep.id, c.usage.input_tokens, typical_output)
    if profile is not None:
        return usage, True
    # Nothing recorded there: this call's own answer, without the cache reads of another provider.
    own = c.usage.output_tokens or typical_output
    return Usage(input_tokens=c.usage.input_tokens, output_tokens=own,
                 reasoning_tokens=min(c.usage.reasoning_tokens, own)), False


def savings_line(report: WhatIfReport, fmt: Callable[[int], str]) -> str:
    """One sentence on the totals, e.g. ``$1.20 recorded, $0.80 replayed: $0.40 saved (33%)``."""
    t = report.total
    share = f" ({t.savings_nanos / t.recorded_nanos:.0%})" if t.recorded_nanos else ""
    verb = "saved" if t.savings_nanos >= 0 else "more"
    return (f"{fmt(t.recorded_nanos)} recorded, {fmt(t.replayed_nanos)} replayed: "
            f"{fmt(abs(t.savings_nanos))} {verb}{share}")

