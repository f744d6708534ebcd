"""The strategies: each orders the deployments that may serve a call.

Every strategy gets the deployments that fit the call and are available
(circuit not open), in configured order, and returns them best first with
a short note per deployment saying how it scored:

| name          | first choice |
| ------------- | ------------ |
| `latency`     | lowest expected p95 latency (errors priced in); a share ``exploration`` of calls tries the deployment heard from least recently (when that was a while ago), so one that recovered wins its traffic back |
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
from typing import Any

from axtui.config import ROUTING_STRATEGIES
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
    #: Only deployments not heard from for this long are explored.
    explore_after_s: float = 10.0
    #: How many candidates the engine will try (routing.max_attempts).
    depth: int = 3
    #: Price orders of pools by (deployment identities, rounded prompt tokens, output tokens); the router keeps it.
    price_memo: dict[Any, Any] | None = None
    #: Set by the latency strategy when this call explores.
    explored: str | None = field(default=None)


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


def _usd(nanos: int) -> str:
    """Nano-dollars as dollars to the micro-dollar, in integer arithmetic (fast, exact)."""
    return f"${nanos // 1_000_000_000}.{nanos % 1_000_000_000 // 1_000:06d}"


def _two_digits(n: int) -> int:
    """``n`` rounded to two significant digits (12,345 -> 12,000)."""
    if n < 100:
        return n
    scale = int(10 ** (len(str(n)) - 2))
    return (n + scale // 2) // scale * scale


def cost(cands: list[Deployment], r: Ranking) -> Ranked:
    """Cheapest estimated price for this call first (equal prices: the faster); unknown prices last."""
    out_tokens = expected_output_tokens(r.req, r.typical_output)
    # Two significant digits of prompt size rank prices just as well, so the
    # price order of a pool (exact arithmetic, slow-ish) is reused across calls.
    in_tokens = _two_digits(r.req.prompt_tokens)
    memo = r.price_memo if r.price_memo is not None else {}
    key = (tuple(map(id, cands)), in_tokens, out_tokens)
    entry = memo.get(key)
    if entry is None:
        entry = memo[key] = _price_order(cands, r.prices, in_tokens, out_tokens)
    order, ties = entry
    out = list(order)

    def speed(t: tuple[Deployment, str]) -> float:
        lat = r.health.get(t[0]).expected_ms(r.now, out_tokens)
        return 0.0 if lat is None else lat

    for k, j in ties:
        # Equal prices: the faster first; one never heard from gets its chance.
        # Past the attempts the engine makes, the order changes nothing.
        if k < r.depth:
            out[k:j] = sorted(out[k:j], key=speed)
    return out


def _price_order(cands: list[Deployment], prices: PriceBook | None, in_tokens: int,
                 out_tokens: int) -> tuple[Ranked, list[tuple[int, int]]]:
    """The pool by estimated price (unknown last), and the index ranges of equal prices."""
    priced: list[tuple[int, int, Deployment]] = []
    unpriced: list[Deployment] = []
    for i, d in enumerate(cands):
        nanos = prices.estimate(d, in_tokens, out_tokens) if prices is not None else None
        if nanos is None:
            unpriced.append(d)
        else:
            priced.append((nanos, i, d))
    priced.sort(key=lambda t: (t[0], t[1]))
    size = f" for ~{in_tokens:,} in + {out_tokens:,} out"
    order: Ranked = [(d, f"~{_usd(n)}{size}") for n, _, d in priced]
    order += [(d, "price unknown: tried after the priced ones") for d in unpriced]
    ties: list[tuple[int, int]] = []
    k = 0
    while k < len(priced):
        j = k + 1
        while j < len(priced) and priced[j][0] == priced[k][0]:
            j += 1
        if j - k > 1:
            ties.append((k, j))
        k = j
    return order, ties


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
