"""The admin API's answers, shared by the server that sends them and the dashboard that reads them.

``ax serve`` names these as the response models of ``/api/alerts``,
``/api/budgets``, ``/api/ratelimits`` and ``/api/routing``; the
dashboard's remote backend (``ax monitor realtime --url``) validates what
it receives with the same classes and turns each into the domain object
the local backend reads from the store (`RuleInfo`, `BudgetStatus`,
`LimitStatus`, …), so every screen draws one type whichever way it runs.
Money travels as exact decimal strings of dollars.

Importable without FastAPI or Textual.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from axtui.cost.alerts import BudgetAlert
from axtui.cost.budgets import BudgetInfo, BudgetStatus, Scope
from axtui.cost.projection import BudgetForecast
from axtui.metrics.alerts.model import AlertEvent, RuleInfo
from axtui.metrics.snapshot import AlertSummary
from axtui.money import usd_to_nanos
from axtui.ratelimit.limiter import LimitStatus

__all__ = [
    "ActiveAlertOut",
    "AlertEventOut",
    "AlertList",
    "AlertRuleOut",
    "BudgetAlertOut",
    "BudgetOut",
    "BudgetSet",
    "RateLimitList",
    "RateLimitOut",
    "RoutingOut",
]


def _nanos(usd: str | None) -> int | None:
    return None if usd is None else usd_to_nanos(Decimal(usd))


# -- alerts -----------------------------------------------------------------------------------


class AlertRuleOut(BaseModel):
    """A stored rule and its state."""

    id: int
    name: str
    rule: str
    severity: str
    webhook: str | None
    enabled: bool
    created_at: float
    updated_at: float
    state: str
    state_since: float | None = None
    last_value: float | None = None
    last_fired_at: float | None = None
    last_resolved_at: float | None = None
    silenced_until: float | None = None
    acknowledged_at: float | None = None

    def to_rule(self) -> RuleInfo:
        """The rule as the store's `RuleInfo`."""
        return RuleInfo(**self.model_dump())


class ActiveAlertOut(BaseModel):
    """A rule pending or firing now in the server's evaluator."""

    model_config = {"extra": "allow"}

    rule_id: int
    name: str
    severity: str
    state: str
    since: float
    value: float | None = None
    rule: str = ""

    def to_summary(self) -> AlertSummary:
        """The alert as the metrics' `AlertSummary`."""
        return AlertSummary(rule_id=self.rule_id, name=self.name, severity=self.severity, state=self.state,
                            since=self.since, value=self.value, rule=self.rule)


class AlertList(BaseModel):
    """Every rule, and the alerts pending or firing now in this server."""

    rules: list[AlertRuleOut]
    active: list[ActiveAlertOut]


class AlertEventOut(BaseModel):
    """One transition of a rule (pending, firing, resolved, cancelled)."""

    model_config = {"extra": "allow"}

    id: int
    ts: float
    rule_id: int | None
    rule_name: str
    kind: str
    severity: str
    message: str
    rule: str = ""
    value: float | None = None
    threshold: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    delivery: str = "none"
    attempts: int = 0
    delivery_error: str | None = None
    delivered_at: float | None = None

    def to_event(self) -> AlertEvent:
        """The transition as the store's `AlertEvent`."""
        return AlertEvent(id=self.id, ts=self.ts, rule_id=self.rule_id, rule_name=self.rule_name, rule=self.rule,
                          severity=self.severity, kind=self.kind, value=self.value, threshold=self.threshold,
                          labels=dict(self.labels), message=self.message, delivery=self.delivery,
                          attempts=self.attempts, delivery_error=self.delivery_error,
                          delivered_at=self.delivered_at)


class BudgetAlertOut(BaseModel):
    """A budget crossing a threshold, as the event stream sends it (``event: budget``)."""

    event_id: int
    budget_id: int
    scope: str
    period: str
    period_start: int
    threshold: int
    spent_nanos: int
    limit_nanos: int
    ts: float
    message: str
    delivery: str = "none"

    def to_alert(self) -> BudgetAlert:
        """The event as the cost subsystem's `BudgetAlert`."""
        return BudgetAlert(**self.model_dump())


# -- budgets ----------------------------------------------------------------------------------


class BudgetOut(BaseModel):
    """A budget and where it stands this period."""

    id: int
    scope: str
    period: str
    limit_usd: str
    hard: bool
    spent_usd: str | None = None
    reserved_usd: str | None = None
    remaining_usd: str | None = None
    used: str | None = Field(default=None, description="Spent as a fraction of the limit, exact")
    over: bool | None = None
    period_start: float | None = None
    period_end: float | None = None
    projected_usd: str | None = None
    runs_out_at: float | None = None

    def to_info(self) -> BudgetInfo:
        """The budget as the cost subsystem's `BudgetInfo` (thresholds and webhook: the defaults)."""
        return BudgetInfo(id=self.id, scope=Scope.parse(self.scope), period=self.period,
                          limit_nanos=_nanos(self.limit_usd) or 0, hard=self.hard, thresholds=None, webhook=None,
                          created_at=0.0, updated_at=0.0)

    def to_status(self) -> BudgetStatus:
        """Where the budget stands, as the cost subsystem's `BudgetStatus`."""
        info = self.to_info()
        spent = _nanos(self.spent_usd) or 0
        forecast = BudgetForecast(rate_nanos_per_hour=0, projected_nanos=_nanos(self.projected_usd),
                                  runs_out_at=self.runs_out_at, exhausted=spent >= info.limit_nanos)
        return BudgetStatus(info, int(self.period_start or 0),
                            None if self.period_end is None else int(self.period_end), spent,
                            _nanos(self.reserved_usd) or 0, forecast)


class BudgetSet(BaseModel):
    """The budget after a PUT, and whether it was new."""

    budget: BudgetOut
    created: bool


# -- rate limits ------------------------------------------------------------------------------


class RateLimitOut(BaseModel):
    """One limit in force and how much of it is used."""

    model_config = {"extra": "allow"}

    scope: str
    subject: str
    unit: str
    limit: str
    used: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    label: str | None = None
    amount: int | None = None
    period_s: float | None = None
    algorithm: str = "token-bucket"
    burst: int | None = None
    source: str = "server"

    def to_status(self) -> LimitStatus:
        """The limit as the rate limiter's `LimitStatus`."""
        scope, subject = self.scope, self.subject
        label = self.label or ("global" if scope == "global" else f"{scope}:{subject}")
        head = self.limit.split("/", 1)[0]
        amount = self.amount if self.amount is not None else int(head) if head.isdigit() else 0
        return LimitStatus(scope=scope, subject=subject, label=label, unit=self.unit, limit=self.limit,
                           amount=amount, period_s=self.period_s or 0.0, algorithm=self.algorithm, burst=self.burst,
                           source=self.source, used=self.used, remaining=self.remaining,
                           reset_after=self.reset_after)


class RateLimitList(BaseModel):
    """The limits in force, and the per-subject ones stored."""

    limits: list[RateLimitOut]
    stored: list[dict[str, Any]]


# -- routing ----------------------------------------------------------------------------------


class RoutingOut(BaseModel):
    """The router's settings, each deployment's live health and weight, and the A/B tests' results."""

    routing: dict[str, Any] = Field(description="The [routing] section in force")
    health: list[dict[str, Any]] = Field(description="Each deployment's health in this worker")
    weights: dict[str, float]
    reports: dict[str, dict[str, Any]] = Field(description="Each A/B test's results over the last day")
    config_path: str | None = Field(default=None, description="The config file routing edits are saved to "
                                                                "(shown to the admin only)")
    models: list[str]
