"""The strategies: each orders the deployments that may serve a call.

Every strategy gets the deployments that fit the call and are available
(circuit not open), in configured order, and returns them best first with
a short note per deployment saying how it scored:

| name          | first choice |
| ------------- | ------------ |
| `latency`     | lowest expected p95 latency (errors priced in); a share ``exploration`` of calls tries the deployment heard from least recently, so one that recovered wins its traffic back |
| `cost`        | lowest estimated price for this call's size (unknown prices last) |
| `capability`  | the first that fits, in configured order |
| `weighted`    | drawn at random in proportion to the configured weights |
| `least-busy`  | fewest calls in flight |
| `round-robin` | each in turn (the baseline benchmarks compare against) |
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from axtui.config import ROUTING_STRATEGIES
from axtui.money import format_usd, nanos_to_usd
from axtui.ports import PriceBook
from axtui.routing.fit import Requirements
from axtui.routing.health import HealthBook
from axtui.types import Deployment

__all__ = ["STRATEGIES", "Ranked", "Ranking", "Strategy", "expected_output_tokens"]


@dataclass(slots=True)
class Ranking:
    """What a strategy may look at for one call."""

    health: HealthBook
    req: Requirements
    now: float
    rng: random.Random
    prices: PriceBook | None = None
    typical_output: int = 512
    exploration: float = 0.0
    #: Round-robin position for this pool (the router advances it per call).
    turn: int = 0
    #: Set by the latency strategy when this call explores.
    explored: str | None = field(default=None)


#: Deployments best first, each with a note on its score.
Ranked = list[tuple[Deployment, str]]
Strategy = Callable[[list[Deployment], Ranking], Ranked]


def expected_output_tokens(req: Requirements, typical: int) -> int:
    """Output tokens to price a call at: the typical answer, capped by the caller's limit."""
    return min(req.output_tokens, typical) if req.output_tokens else typical


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def latency(cands: list[Deployment], r: Ranking) -> Ranked:
    """Lowest expected p95 first, with a little exploration."""
    known: list[tuple[float, int, Deployment]] = []
    fresh: list[Deployment] = []
    unknown: list[Deployment] = []
    for i, d in enumerate(cands):
        h = r.health.get(d)
        score = h.expected_ms(r.now)
        if score is not None:
            known.append((score, i, d))
        elif h.in_flight == 0:
            fresh.append(d)  # never heard from and idle: worth one call to learn
        else:
            unknown.append(d)
    known.sort(key=lambda t: (t[0], t[1]))
    out: Ranked = [(d, "no latency data yet: trying it to learn") for d in fresh]
    out += [(d, f"expected p95 {_ms(s)}") for s, _, d in known]
    out += [(d, "no latency data yet (a call is in flight)") for d in unknown]
    if r.exploration > 0 and len(out) > 1 and not fresh and r.rng.random() < r.exploration:
        # Explore the deployment heard from least recently: a recovered one is noticed soonest.
        def staleness(i: int) -> float:
            seen = r.health.get(out[i][0]).last_seen
            return -math.inf if seen is None else seen

        pick = min(range(1, len(out)), key=staleness)
        d, note = out.pop(pick)
        out.insert(0, (d, f"{note}; exploring (a {r.exploration:.0%} share of calls checks on others)"))
        r.explored = d.id
    return out


def cost(cands: list[Deployment], r: Ranking) -> Ranked:
    """Cheapest estimated price for this call first; unknown prices last."""
    out_tokens = expected_output_tokens(r.req, r.typical_output)
    priced: list[tuple[int, float, int, Deployment]] = []
    unpriced: list[Deployment] = []
    for i, d in enumerate(cands):
        nanos = r.prices.estimate(d, r.req.prompt_tokens, out_tokens) if r.prices is not None else None
        if nanos is None:
            unpriced.append(d)
        else:
            lat = r.health.get(d).expected_ms(r.now)
            priced.append((nanos, math.inf if lat is None else lat, i, d))
    priced.sort(key=lambda t: (t[0], t[1], t[2]))
    out: Ranked = [
        (d, f"~{format_usd(nanos_to_usd(n))} for ~{r.req.prompt_tokens:,} in + {out_tokens:,} out")
        for n, _, _, d in priced
    ]
    out += [(d, "price unknown: tried after the priced ones") for d in unpriced]
    return out


def capability(cands: list[Deployment], r: Ranking) -> Ranked:
    """The fitting deployments in configured order."""
    return [(d, f"#{i + 1} in configured order") for i, d in enumerate(cands)]


def weighted(cands: list[Deployment], r: Ranking) -> Ranked:
    """A weighted draw without replacement (exponential keys: Efraimidis–Spirakis)."""
    total = sum(max(d.weight, 0.0) for d in cands)
    keyed: list[tuple[float, int, Deployment]] = []
    for i, d in enumerate(cands):
        w = max(d.weight, 0.0)
        keyed.append((r.rng.expovariate(1.0) / w if w > 0 else math.inf, i, d))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [
        (d, f"weight {d.weight:g} ({d.weight / total:.0%} of first choices)" if total > 0 else "weight 0")
        for _, _, d in keyed
    ]


def least_busy(cands: list[Deployment], r: Ranking) -> Ranked:
    """Fewest calls in flight first; ties take turns."""
    n = len(cands)
    keyed = [(r.health.get(d).in_flight, (i - r.turn) % n, d) for i, d in enumerate(cands)]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [(d, f"{busy} in flight") for busy, _, d in keyed]


def round_robin(cands: list[Deployment], r: Ranking) -> Ranked:
    """Each deployment in turn."""
    n = len(cands)
    if not n:
        return []
    start = r.turn % n
    order = cands[start:] + cands[:start]
    return [(d, f"turn {r.turn + 1} of the rotation" if k == 0 else "next in the rotation") for k, d in enumerate(order)]


STRATEGIES: dict[str, Strategy] = {
    "latency": latency,
    "cost": cost,
    "capability": capability,
    "weighted": weighted,
    "least-busy": least_busy,
    "round-robin": round_robin,
}
assert tuple(STRATEGIES) == ROUTING_STRATEGIES, "config.ROUTING_STRATEGIES and STRATEGIES must list the same names"
