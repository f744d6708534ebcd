"""The strategies: each orders the deployments that may serve a call.

Every strategy gets the deployments that fit the call and are available
(circuit not open), in configured order, and returns them best first with
a short note per deployment saying how it scored:

| name          | first choice |
| ------------- | ------------ |
| `latency`     | lowest expected p95 latency (errors priced in); a share ``exploration`` of calls tries the deployment heard from least recently (when that was a while ago), so one that recovered wins its traffic back |
| `cost`        | lowest expected cost of this call: recorded tokens per call there (output, reasoning, cached prompt) times its price, list price until there is history; deployments at a learned upstream limit, queueing or far slower than the pool wait behind the rest (unknown prices last) |
| `balanced`    | the cheapest whose expected p95 is within ``max_p95_ms`` (rule, model or alias) |
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
from typing import Any

from axtui.config import ROUTING_STRATEGIES
from axtui.money import format_usd
from axtui.ports import PriceBook
from axtui.routing.fit import Requirements
from axtui.routing.health import DeploymentHealth, HealthBook
from axtui.routing.usage import MIN_HISTORY, ExpectedCost, expected_cost, two_digits
from axtui.types import Deployment

__all__ = ["STRATEGIES", "Ranked", "Ranking", "Strategy", "call_cost", "expected_output_tokens"]


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
    #: Only deployments not heard from for this long are explored.
    explore_after_s: float = 10.0
    #: How many candidates the engine will try (routing.max_attempts).
    depth: int = 3
    #: Price orders of pools by (deployment identities, rounded prompt tokens, output tokens); the router keeps it.
    price_memo: dict[Any, Any] | None = None
    #: Set by the latency strategy when this call explores.
    explored: str | None = field(default=None)
    #: The p95 bound of the balanced strategy for this call (the rule's, or the model's or alias's).
    max_p95_ms: float | None = None


#: Deployments best first, each with a note on its score.
Ranked = list[tuple[Deployment, str]]
Strategy = Callable[[list[Deployment], Ranking], Ranked]


def expected_output_tokens(req: Requirements, typical: int) -> int:
    """Output tokens to price a call at: the typical answer, capped by the caller's limit."""
    return min(req.output_tokens, typical) if req.output_tokens else typical


def latency(cands: list[Deployment], r: Ranking) -> Ranked:
    """Lowest expected p95 first, with a little exploration."""
    known: list[tuple[float, int, Deployment]] = []
    fresh: list[Deployment] = []
    unknown: list[Deployment] = []
    # Compare deployments at the answer length recent answers had (within what
    # was observed, so no fitted line is stretched far), capped by max_tokens.
    seen = r.health.mean_output
    tokens = expected_output_tokens(r.req, round(seen) if seen else r.typical_output)
    for i, d in enumerate(cands):
        h = r.health.get(d)
        score = h.expected_ms(r.now, tokens)
        if score is not None:
            known.append((score, i, d))
        elif h.in_flight == 0:
            fresh.append(d)  # never heard from and idle: worth one call to learn
        else:
            unknown.append(d)
    known.sort()  # by score, then configured order (i is unique: deployments are never compared)
    out: Ranked = [(d, "no latency data yet: trying it to learn") for d in fresh]
    suffix = f" ms for a {tokens}-token answer"
    out += [(d, f"expected p95 {s:.0f}{suffix}") for s, _, d in known]
    out += [(d, "no latency data yet (a call is in flight)") for d in unknown]
    if r.exploration > 0 and len(out) > 1 and not fresh and r.rng.random() < r.exploration:
        # Explore the deployment heard from least recently, if its news is old:
        # a recovered one is noticed soonest, and fresh news costs no detour.
        def last_seen(i: int) -> float:
            seen = r.health.get(out[i][0]).last_seen
            return -math.inf if seen is None else seen

        pick = min(range(1, len(out)), key=last_seen)
        if r.now - last_seen(pick) >= r.explore_after_s:
            d, note = out.pop(pick)
            out.insert(0, (d, f"{note}; exploring: not heard from for {r.explore_after_s:g}s or more"))
            r.explored = d.id
    return out


#: Expected costs within this share of each other are a tie: the faster goes first.
COST_TIE = 0.03
#: Calls a deployment may have in flight before it has answered a few (its speed and tokens are unknown).
SLOW_START = 4
#: A deployment whose expected p95 is this many times the pool's median is too slow for the cost strategy.
SLOW_FACTOR = 3.0


def call_cost(d: Deployment, r: Ranking) -> ExpectedCost:
    """The expected cost of this call on ``d``."""
    return expected_cost(r.health.usage, r.prices, d, two_digits(r.req.prompt_tokens), r.typical_output,
                         r.req.output_tokens)


def _priced(d: Deployment, r: Ranking, prompt: int, memo: dict[Any, Any]) -> tuple[float, str]:
    """(expected nano-dollars, inf when unknown; a note): memoised while the deployment's history grows little."""
    key = (id(d), prompt, r.req.output_tokens)
    hit = memo.get(key)
    book = r.health.usage
    if hit is not None and hit[3] is d and book.calls(hit[4]) < hit[2] + max(1, hit[2] // 16):
        return hit[0], hit[1]
    est = call_cost(d, r)
    price = "price unknown" if est.nanos is None else f"~{format_usd(est.nanos, nanos=True)}"
    value = (math.inf if est.nanos is None else float(est.nanos), f"{price} expected ({est.describe()})")
    dep_id = d.id
    memo[key] = (*value, book.calls(dep_id), d, dep_id)
    return value


def _held_back(h: DeploymentHealth, r: Ranking, expected: float | None, slow_above: float | None) -> str | None:
    """Why the deployment of ``h`` should wait behind those with room, or None when it can take the call now."""
    if h.in_flight >= SLOW_START and h.forecast.n < MIN_HISTORY and r.health.usage.calls(h.deployment.id) < MIN_HISTORY:
        # Slow start: until it has answered a few calls, its speed and tokens per call are guesses.
        return f"{h.in_flight} calls in flight before it has answered {MIN_HISTORY}: its figures are guesses"
    if h.at_limit():
        return f"at its learned upstream limit ({h.in_flight} in flight; 429 seen above {h.limit:.0f})"
    q = h.queueing()
    if q is not None:
        return f"queueing: answers take {q:.1f}x its usual {h.usual_ms or 0:,.0f} ms with {h.in_flight} in flight"
    if slow_above is not None and expected is not None and expected > slow_above and h.in_flight > 0:
        # One call at a time keeps its figures fresh; the rest go where they are answered in time.
        return (f"slow: expected p95 {expected:,.0f} ms, over {SLOW_FACTOR:g}x the pool's median; "
                "one call at a time")
    return None


def _by_cost(cands: list[Deployment], r: Ranking, bound: float | None = None, bound_note: str = "",
             relative: float | None = None) -> Ranked:
    """Expected cost first, near ties by speed; held-back and over-``bound`` deployments after the rest.

    ``relative``: with no ``bound``, the bound is this many times the fastest expected p95.
    """
    out_tokens = expected_output_tokens(r.req, r.typical_output)
    get = r.health.get
    now = r.now
    prompt = two_digits(r.req.prompt_tokens)
    memo = r.price_memo if r.price_memo is not None else {}
    rows: list[tuple[float, int, DeploymentHealth, str, float | None]] = []
    for i, d in enumerate(cands):
        nanos, note = _priced(d, r, prompt, memo)
        h = get(d)
        rows.append((nanos, i, h, note, h.expected_ms(now, out_tokens)))
    rows.sort()  # by expected cost, then configured order (i is unique: nothing else is compared)
    known = sorted(t[4] for t in rows if t[4] is not None)
    slow_above = known[(len(known) - 1) // 2] * SLOW_FACTOR if len(known) >= 2 else None
    if bound is None and relative is not None and known:
        bound = relative * known[0]
        bound_note = f"{relative:g}x the fastest ({bound:,.0f} ms; set routing.max_p95_ms to choose)"
    ready: list[tuple[Deployment, str]] = []
    if known and len(rows) > 1:
        # Once the pool is in use, each deployment never heard from gets one call (when idle), so the
        # pool's latencies are known and a slow cheap one can be told apart from its peers.
        fresh = [t for t in rows if t[4] is None and t[2].in_flight == 0]
        for row in fresh:
            rows.remove(row)
            ready.append((row[2].deployment, "no latency data yet: one call to learn it"))
    later: list[tuple[Deployment, str]] = []
    k = 0
    while k < len(rows):
        # A run of near-equal expected costs: the faster first.
        j = k + 1
        while j < len(rows) and rows[k][0] != math.inf and rows[j][0] <= rows[k][0] * (1 + COST_TIE):
            j += 1
        group = rows[k:j] if j - k == 1 else sorted(rows[k:j], key=lambda t: (0.0 if t[4] is None else t[4], t[1]))
        for _, _, h, note, lat in group:
            why = _held_back(h, r, lat, slow_above)
            if why is None and bound is not None and lat is not None and lat > bound:
                why = f"expected p95 {lat:,.0f} ms over {bound_note}"
            if why is None:
                ready.append((h.deployment, note))
            else:
                later.append((h.deployment, f"{note}; {why}: after those with room"))
        k = j
    return ready + later


def cost(cands: list[Deployment], r: Ranking) -> Ranked:
    """Lowest expected cost of this call first, among deployments that can take it now.

    The expected cost is the deployment's recorded tokens per call for this
    prompt size (output, reasoning, cached prompt; smoothed) times its
    price, or its list price with a typical answer until it has history.
    Deployments at their learned upstream limit, queueing (latency risen
    with calls in flight) or far slower than the pool come after the rest.
    """
    return _by_cost(cands, r)


def balanced(cands: list[Deployment], r: Ranking) -> Ranked:
    """The cheapest deployment whose expected p95 is within ``max_p95_ms`` (rule, then model or alias).

    Without a configured bound, within twice the fastest deployment's
    expected p95. Deployments over the bound come after the rest, by cost.
    """
    if r.max_p95_ms is not None:
        return _by_cost(cands, r, r.max_p95_ms, f"the bound {r.max_p95_ms:,.0f} ms")
    return _by_cost(cands, r, relative=2.0)


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
    "balanced": balanced,
    "capability": capability,
    "weighted": weighted,
    "least-busy": least_busy,
    "round-robin": round_robin,
}
assert tuple(STRATEGIES) == ROUTING_STRATEGIES, "config.ROUTING_STRATEGIES and STRATEGIES must list the same names"
