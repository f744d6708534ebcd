"""What the screens other than Realtime draw, as fetched in one go.

Plain dataclasses around the subsystems' own types (`CostSummary`,
`BudgetStatus`, `LimitStatus`, `RuleInfo`, `HealthSnapshot`, …), so a
screen draws what the CLI prints, from the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axtui.config import ABTestConfig, RoutingRule
    from axtui.cost.alerts import BudgetAlert
    from axtui.cost.budgets import BudgetStatus
    from axtui.cost.reports import Breakdown, CostSummary
    from axtui.governance.standing import Standing
    from axtui.governance.teams import TeamInfo
    from axtui.metrics.alerts.model import AlertEvent, RuleInfo
    from axtui.ratelimit.limiter import LimitStatus
    from axtui.routing.abreport import ABReport
    from axtui.routing.health import HealthSnapshot
    from axtui.server.keys import KeyInfo

__all__ = [
    "GROUPS",
    "RANGES",
    "AlertsView",
    "BudgetsView",
    "CostView",
    "ExportResult",
    "RoutingView",
    "SpendPoint",
    "range_spec",
]

#: Cost ranges: name -> (seconds, rollup grain, grain seconds).
RANGES: dict[str, tuple[int, str, int]] = {
    "1h": (3600, "minute", 60),
    "24h": (86_400, "hour", 3600),
    "7d": (7 * 86_400, "hour", 3600),
    "30d": (30 * 86_400, "day", 86_400),
}
#: What the cost breakdown can group by on the dashboard.
GROUPS: tuple[str, ...] = ("provider", "model", "user")


def range_spec(name: str) -> tuple[int, str, int]:
    """(seconds, grain, grain seconds) of a cost range.

    Raises:
        ValueError: an unknown range name.
    """
    try:
        return RANGES[name]
    except KeyError:
        raise ValueError(f"unknown range {name!r}; use one of {', '.join(RANGES)}") from None


@dataclass(slots=True)
class SpendPoint:
    """Spend in one bucket of the chart."""

    ts: float
    cost_nanos: int
    calls: int


@dataclass(slots=True)
class CostView:
    """Spend over a range: summary with projection, breakdown, chart points, unpriced models."""

    range: str
    by: str
    since: float
    until: float
    summary: CostSummary
    breakdown: Breakdown
    points: list[SpendPoint]
    grain_s: int
    unknown: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class BudgetsView:
    """Budgets with their standing, and rate limits with what is used of them."""

    budgets: list[BudgetStatus]
    limits: list[LimitStatus]
    limits_error: str | None = None


@dataclass(slots=True)
class KeysView:
    """Gateway keys and teams, with this month's spend and budget use of each (by key id, by team name)."""

    keys: list[KeyInfo]
    teams: list[TeamInfo]
    key_standing: dict[str, Standing] = field(default_factory=dict)
    team_standing: dict[str, Standing] = field(default_factory=dict)
    now: float = 0.0


@dataclass(slots=True)
class AlertsView:
    """Alert rules with their state, recent events, and budget threshold alerts."""

    rules: list[RuleInfo]
    events: list[AlertEvent]
    budget_alerts: list[BudgetAlert] = field(default_factory=list)
    now: float = 0.0
    #: What each rule measures now, by rule id (rules missing here show their stored value).
    values: dict[int, float | None] = field(default_factory=dict)


@dataclass(slots=True)
class RoutingView:
    """Deployments with health and weight, rules in order, A/B tests with results."""

    strategy: str
    health: list[HealthSnapshot]
    weights: dict[str, float]
    rules: list[RoutingRule]
    ab_tests: list[ABTestConfig]
    reports: dict[str, ABReport]
    config_path: Path
    models: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ExportResult:
    """Where an export went and how many rows it has."""

    path: Path
    rows: int
    what: str
    fmt: str
