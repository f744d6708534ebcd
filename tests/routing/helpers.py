"""Small builders shared by the routing tests."""

from __future__ import annotations

from collections.abc import Sequence

from axtui.clock import FakeClock
from axtui.config import RoutingConfig
from axtui.errors import ProviderServerError
from axtui.ports import Attempt
from axtui.routing.catalog import Catalog
from axtui.routing.router import HealthRouter
from axtui.types import Deployment, Usage


def dep(provider: str, model: str = "m", *, upstream: str | None = None, region: str = "us", weight: float = 1.0,
        context: int | None = 128_000, max_output: int | None = 16_000, tools: bool = True, vision: bool = True,
        json_mode: bool = True) -> Deployment:
    """A deployment with every capability unless told otherwise."""
    return Deployment(provider=provider, model=model, upstream_model=upstream or model, region=region, weight=weight,
                      context_window=context, max_output=max_output, supports_tools=tools, supports_vision=vision,
                      supports_json=json_mode)


def router(deps: Sequence[Deployment], routing: RoutingConfig | None = None, *, aliases: dict[str, list[str]] | None
           = None, prices: object = None, seed: int = 7, clock: FakeClock | None = None) -> HealthRouter:
    """A router over ``deps`` on a fake clock."""
    return HealthRouter(Catalog(deps, aliases), routing or RoutingConfig(), clock=clock or FakeClock(),
                        prices=prices, seed=seed)  # type: ignore[arg-type]


def succeed(r: HealthRouter, d: Deployment, latency_ms: float, n: int = 1) -> None:
    """``n`` successful calls to ``d`` taking ``latency_ms``."""
    for _ in range(n):
        r.begin(d)
        r.observe(Attempt(d, True, latency_ms, latency_ms, 10))


def fail(r: HealthRouter, d: Deployment, n: int = 1) -> None:
    """``n`` failed calls (503) to ``d``."""
    for _ in range(n):
        r.begin(d)
        r.observe(Attempt(d, False, 50.0, error=ProviderServerError("503", provider=d.provider, http_status=503)))


class FlatPrices:
    """A price book: per-million input and output prices by deployment id; unknown ids unpriced."""

    def __init__(self, per_million: dict[str, tuple[int, int]]) -> None:
        self.per_million = per_million

    def cost(self, deployment: Deployment, usage: Usage) -> int | None:
        return self.estimate(deployment, usage.input_tokens, usage.output_tokens)

    def estimate(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> int | None:
        p = self.per_million.get(deployment.id)
        if p is None:
            return None
        # dollars per million tokens -> nanos per token is dollars * 1000
        return input_tokens * p[0] * 1000 + output_tokens * p[1] * 1000
