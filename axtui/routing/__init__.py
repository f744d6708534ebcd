"""Routing: which deployment serves each call, and why.

`HealthRouter` is the engine's router (strategies, rules, A/B tests,
regions, fallbacks, health and circuit breakers); `Catalog` maps model
names and aliases to deployments; `OrderedRouter` is the plain fallback.
"""

from axtui.routing.catalog import Catalog, OrderedRouter
from axtui.routing.health import HealthBook, HealthPolicy, HealthSnapshot
from axtui.routing.router import Decision, HealthRouter, RouteUnavailable

__all__ = [
    "Catalog",
    "Decision",
    "HealthBook",
    "HealthPolicy",
    "HealthRouter",
    "HealthSnapshot",
    "OrderedRouter",
    "RouteUnavailable",
]
