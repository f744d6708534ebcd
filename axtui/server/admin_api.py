"""The admin API: alert rules, budgets and rate limits, read and changed over HTTP.

``GET`` takes any gateway key or the admin key; ``POST``, ``PUT`` and
``DELETE`` take the admin key (anything goes with ``--no-auth``). A
gateway key reads what applies to it (`axtui.server.tenancy`): the
budgets and limits of its user, its key and everyone; alert rules with
their webhooks' hosts only; routing without the config file's path. Every
change is kept in the store, so every worker and every other ax process
sees it (this worker at once, the others within their refresh interval).
Money travels as exact decimal strings.
"""

from __future__ import annotations

import asyncio
import pathlib
from dataclasses import asdict
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import ConfigDict, Field, StrictBool, WithJsonSchema

from axtui import locations
from axtui.api_models import (
    ActiveAlertOut,
    AlertEventOut,
    AlertList,
    AlertRuleOut,
    BudgetOut,
    BudgetSet,
    RateLimitList,
    RateLimitOut,
    RoutingOut,
)
from axtui.bus import SettingsChanged
from axtui.config import RoutingConfig
from axtui.errors import ConfigError, InvalidRequest
from axtui.money import usd_text
from axtui.server import constraints as c
from axtui.server.auth import Viewer
from axtui.server.deps import gateway_of, require_admin, require_reader, server_state, viewer_of
from axtui.server.errors import HTTPProblem, problem_for_status
from axtui.server.tenancy import alert_visible, owned_user, rule_visible, scope_visible, webhook_host

__all__ = ["admin_router"]


#: Row ids: positive and within the database's 64-bit integers.
_Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _usd(nanos: int | None) -> str | None:
    return None if nanos is None else usd_text(nanos)


def _not_found(what: str) -> HTTPProblem:
    return HTTPProblem(404, what, error_type="invalid_request_error", code="not_found")


# -- alerts -----------------------------------------------------------------------------------


class AlertRuleIn(c.ApiBody):
    """A new alert rule, in the rule grammar (``p95_latency_ms > 2000 for 5m where provider=openai``)."""

    rule: str = Field(min_length=1, max_length=1000, json_schema_extra={"pattern": c.ALERT_RULE},
                      description="METRIC OP VALUE [per hour|day|month] [for DURATION] [where DIM=VALUE,…]; "
                                  "`ax monitor alerts add --help` lists the metrics and forms")
    name: str | None = Field(default=None, max_length=128, json_schema_extra={"pattern": r"\S"},
                                description="Default: the rule itself")
    severity: Literal["info", "warning", "critical"] = "warning"
    webhook: str | None = Field(default=None, max_length=2000, json_schema_extra={"pattern": c.WEBHOOK_URL},
                                description="An http(s) URL to POST the rule's alerts to")


class AlertRuleChange(c.ApiBody):
    """What to change in a rule; fields left out stay as they are."""

    rule: str | None = Field(default=None, min_length=1, max_length=1000, json_schema_extra={"pattern": c.ALERT_RULE})
    name: str | None = Field(default=None, max_length=128, json_schema_extra={"pattern": r"\S"})
    severity: Literal["info", "warning", "critical"] | None = None


class SilenceIn(c.ApiBody):
    """How long a rule's notifications stop; null lifts a silence."""

    seconds: float | None = Field(default=3600.0, gt=0, le=366 * 86400)


async def _existing_rule(request: Request, rule_id: int) -> Any:
    from axtui.metrics.alerts.storage import get_rule

    store = gateway_of(request).store
    if await asyncio.to_thread(get_rule, store, rule_id) is None:  # type: ignore[arg-type]
        raise _not_found(f"no alert rule has id {rule_id}; GET /api/alerts lists them")
    return store


#: Delivery details of an alert event: they describe the webhook, so only the admin reads them.
_DELIVERY_FIELDS = ("delivery", "attempts", "delivery_error", "delivered_at", "webhook")


def _rule_out(data: dict[str, Any], viewer: Viewer) -> AlertRuleOut:
    if not viewer.admin:
        data = {**data, "webhook": webhook_host(data.get("webhook"))}
    return AlertRuleOut(**data)


def _event_out(data: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    if viewer.admin:
        return data
    return {k: v for k, v in data.items() if k not in _DELIVERY_FIELDS}


def _alert_routes(router: APIRouter) -> None:
    @router.get("/api/alerts", response_model=AlertList, tags=["Alerts"], summary="List alert rules",
                dependencies=[Depends(require_reader)])
    async def list_alerts(request: Request) -> AlertList:
        """Every alert rule with its state, and the alerts active now."""
        from axtui.metrics.alerts.storage import list_rules

        gateway = gateway_of(request)
        viewer = await viewer_of(request)
        rules = await asyncio.to_thread(list_rules, gateway.store)  # type: ignore[arg-type]
        monitoring = server_state(request).monitoring
        evaluator = getattr(monitoring, "evaluator", None)
        active = [ActiveAlertOut(**asdict(a)) for a in evaluator.active()
                  if rule_visible(viewer, a.rule)] if evaluator is not None else []
        return AlertList(rules=[_rule_out(r.to_json(), viewer) for r in rules if rule_visible(viewer, r.rule)],
                         active=active)

    @router.get("/api/alerts/events", response_model=list[AlertEventOut], tags=["Alerts"],
                summary="Alert events", dependencies=[Depends(require_reader)])
    async def alert_events(
        request: Request,
        since: Annotated[str | None, Query(description="From: 1h, 7d, or a date")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> list[AlertEventOut]:
        """The newest alert events, oldest first."""
        from axtui.metrics.alerts.storage import list_events
        from axtui.metrics.timespec import parse_time

        gateway = gateway_of(request)
        since_ts = parse_time(since, gateway.clock.now(), option="since") if since else None
        events = await asyncio.to_thread(list_events, gateway.store, since=since_ts, limit=limit)  # type: ignore[arg-type]
        viewer = await viewer_of(request)
        return [AlertEventOut(**_event_out(e.to_json(), viewer)) for e in events if alert_visible(viewer, e.labels)]

    @router.post("/api/alerts", response_model=AlertRuleOut, status_code=201, tags=["Alerts"],
                 summary="Add an alert rule", dependencies=[Depends(require_admin)],
                 responses={409: {"description": "The same rule exists already",
                                  "content": {"application/json": {"schema": {
                                      "$ref": "#/components/schemas/ErrorResponse"}}}}})
    async def add_alert(request: Request, body: AlertRuleIn) -> AlertRuleOut:
        """Parse and store a rule; a rule that does not parse is a 400 naming the column."""
        from axtui.metrics.alerts.storage import add_rule

        gateway = gateway_of(request)
        info = await asyncio.to_thread(add_rule, gateway.store, body.rule, now=gateway.clock.now(),  # type: ignore[arg-type]
                                       name=body.name, severity=body.severity, webhook=body.webhook)
        return AlertRuleOut(**info.to_json())

    @router.delete("/api/alerts/{rule_id}", response_model=AlertRuleOut, tags=["Alerts"],
                   summary="Remove an alert rule", dependencies=[Depends(require_admin)])
    async def remove_alert(request: Request, rule_id: _Id) -> AlertRuleOut:
        """Delete a rule (its events stay); 404 when no rule has that id."""
        from axtui.metrics.alerts.storage import remove_rule

        store = await _existing_rule(request, rule_id)
        info = await asyncio.to_thread(remove_rule, store, rule_id)
        return AlertRuleOut(**info.to_json())

    @router.patch("/api/alerts/{rule_id}", response_model=AlertRuleOut, tags=["Alerts"],
                  summary="Change an alert rule", dependencies=[Depends(require_admin)])
    async def change_alert(request: Request, rule_id: _Id, body: AlertRuleChange) -> AlertRuleOut:
        """Change a rule's condition, name or severity; a changed condition starts again at ok."""
        from axtui.metrics.alerts.storage import update_rule

        store = await _existing_rule(request, rule_id)
        info = await asyncio.to_thread(lambda: update_rule(
            store, rule_id, now=gateway_of(request).clock.now(), text=body.rule, name=body.name,
            severity=body.severity))
        return AlertRuleOut(**info.to_json())

    @router.post("/api/alerts/{rule_id}/acknowledge", response_model=AlertRuleOut, tags=["Alerts"],
                 summary="Acknowledge a rule's alert", dependencies=[Depends(require_admin)])
    async def acknowledge_alert(request: Request, rule_id: _Id) -> AlertRuleOut:
        """Mark the rule's current episode as seen (it shows as acknowledged until it resolves)."""
        from axtui.metrics.alerts.storage import acknowledge_rule

        store = await _existing_rule(request, rule_id)
        info = await asyncio.to_thread(acknowledge_rule, store, rule_id, gateway_of(request).clock.now())
        return AlertRuleOut(**info.to_json())

    @router.post("/api/alerts/{rule_id}/silence", response_model=AlertRuleOut, tags=["Alerts"],
                 summary="Silence a rule", dependencies=[Depends(require_admin)])
    async def silence_alert(request: Request, rule_id: _Id, body: SilenceIn) -> AlertRuleOut:
        """Stop a rule's notifications for ``seconds`` (it is still evaluated); null lifts the silence."""
        from axtui.metrics.alerts.storage import silence_rule

        store = await _existing_rule(request, rule_id)
        until = None if body.seconds is None else gateway_of(request).clock.now() + body.seconds
        info = await asyncio.to_thread(silence_rule, store, rule_id, until)
        return AlertRuleOut(**info.to_json())


# -- budgets ----------------------------------------------------------------------------------


class BudgetIn(c.ApiBody):
    """A budget to create, or whose limit to change (same scope and period)."""

    amount: Annotated[Decimal | str, WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": c.BUDGET_AMOUNT},
        {"type": "number", "minimum": 0.001, "maximum": 1_000_000_000},
    ]})] = Field(description="Dollars, e.g. \"25\" or \"12.50\"; more than zero, at most nine decimals")
    scope: str = Field(default="global", json_schema_extra={"pattern": c.BUDGET_SCOPE},
                       description="global, provider:NAME, model:NAME, user:NAME, key:ID or team:NAME")
    period: Literal["day", "week", "month", "total"] = "month"
    hard: StrictBool = Field(default=False, description="Refuse calls that would exceed it (else only alert)")


def _budget_out(info: Any, status: Any = None) -> BudgetOut:
    out = BudgetOut(id=info.id, scope=str(info.scope), period=info.period, limit_usd=_usd(info.limit_nanos) or "0",
                    hard=info.hard)
    if status is not None:
        out.spent_usd = _usd(status.spent_nanos)
        out.reserved_usd = _usd(status.reserved_nanos)
        out.remaining_usd = _usd(status.remaining_nanos)
        out.used = format(status.used, "f")
        out.over = status.over
        out.period_start = float(status.period_start)
        out.period_end = None if status.period_end is None else float(status.period_end)
        out.projected_usd = _usd(status.forecast.projected_nanos)
        out.runs_out_at = status.forecast.runs_out_at
    return out


async def _refresh_budgets(request: Request) -> None:
    """This worker applies a change at once; the others on their next refresh."""
    refresh = getattr(gateway_of(request).budgets, "refresh", None)
    if callable(refresh):
        await asyncio.to_thread(refresh)


def _budget_routes(router: APIRouter) -> None:
    @router.get("/api/budgets", response_model=list[BudgetOut], tags=["Budgets"], summary="List budgets",
                dependencies=[Depends(require_reader)])
    async def list_budgets(request: Request) -> list[BudgetOut]:
        """Every budget with this period's spend, reservations and forecast (a gateway key: those that apply to it)."""
        from axtui.cost.budgets import budget_status

        gateway = gateway_of(request)
        viewer = await viewer_of(request)
        statuses = await asyncio.to_thread(budget_status, gateway.store, gateway.clock.now(),  # type: ignore[arg-type]
                                           tz=gateway.settings.budgets.timezone)
        return [_budget_out(s.budget, s) for s in statuses if scope_visible(viewer, str(s.budget.scope))]

    @router.put("/api/budgets", response_model=BudgetSet, tags=["Budgets"], summary="Create or change a budget",
                dependencies=[Depends(require_admin)])
    async def put_budget(request: Request, body: BudgetIn) -> BudgetSet:
        """Create the budget of a scope and period, or change its limit and hardness."""
        from axtui.cost.budgets import Scope, parse_amount, set_budget

        gateway = gateway_of(request)
        try:
            scope = Scope.parse(body.scope)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="scope") from None
        try:
            nanos = parse_amount(str(body.amount))
        except ValueError as exc:
            raise InvalidRequest(f"amount: {exc}", param="amount") from None
        info, created = await asyncio.to_thread(
            set_budget, gateway.store, scope, body.period, nanos, hard=body.hard, now=gateway.clock.now(),  # type: ignore[arg-type]
            tz=gateway.settings.budgets.timezone,
        )
        await _refresh_budgets(request)
        return BudgetSet(budget=_budget_out(info), created=created)

    @router.delete("/api/budgets/{budget_id}", response_model=BudgetOut, tags=["Budgets"],
                   summary="Delete a budget", dependencies=[Depends(require_admin)])
    async def delete_budget(request: Request, budget_id: _Id) -> BudgetOut:
        """Delete a budget and its counters; 404 when no budget has that id."""
        from axtui.cost.budgets import BudgetNotFound
        from axtui.cost.budgets import delete_budget as delete

        gateway = gateway_of(request)
        try:
            info = await asyncio.to_thread(delete, gateway.store, budget_id)  # type: ignore[arg-type]
        except BudgetNotFound:
            raise _not_found(f"no budget has id {budget_id}; GET /api/budgets lists them") from None
        await _refresh_budgets(request)
        return _budget_out(info)


# -- rate limits ------------------------------------------------------------------------------


class RateLimitIn(c.ApiBody):
    """A per-subject limit; a field left out keeps what is stored. Say a limit or an algorithm; a burst
    only with ``algorithm: token-bucket``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=c.RATE_LIMIT_RULES)

    subject: str = Field(min_length=1, max_length=300, json_schema_extra={"pattern": c.LIMIT_SUBJECT},
                         description="alice, user:alice, key:ID, provider:NAME, global")
    scope: Literal["global", "provider", "user", "key", "team"] | None = None
    requests: str | None = Field(default=None, json_schema_extra={"pattern": c.LIMIT_VALUE},
                                 description="60/minute, unlimited, or default")
    tokens: str | None = Field(default=None, json_schema_extra={"pattern": c.LIMIT_VALUE},
                               description="100000/minute, unlimited, or default")
    algorithm: Literal["token-bucket", "sliding-window"] | None = None
    burst: int | None = Field(default=None, ge=1, le=1_000_000)


def _limiter(request: Request) -> Any:
    limiter = gateway_of(request).limiter
    if not hasattr(limiter, "set_limit"):
        raise problem_for_status(503, "this gateway runs without a rate limiter")
    return limiter


def _ratelimit_routes(router: APIRouter) -> None:
    @router.get("/api/ratelimits", response_model=RateLimitList, tags=["Rate limits"],
                summary="List rate limits", dependencies=[Depends(require_reader)])
    async def list_limits(request: Request, user: str | None = None) -> RateLimitList:
        """Each limit in force (or those that apply to ``user``): used, remaining, reset.

        A gateway key reads the limits that apply to it: everyone's (global,
        per provider), its user's and its key's.
        """
        limiter = _limiter(request)
        viewer = await viewer_of(request)
        if viewer.admin:
            statuses = await limiter.status(user=user)
        else:
            user = owned_user(viewer, user)
            assert user is not None and viewer.key is not None
            shared = [s for s in limiter.book.subjects() if s[0] in ("global", "provider")]
            statuses = await limiter.status(subjects=[*shared, ("user", user), ("key", viewer.key)])
        stored = [s.to_dict() for s in limiter.stored_limits()
                  if scope_visible(viewer, f"{s.scope}:{s.subject}")]
        return RateLimitList(limits=[RateLimitOut(**s.to_dict()) for s in statuses], stored=stored)

    @router.put("/api/ratelimits", response_model=dict[str, Any], tags=["Rate limits"],
                summary="Set a subject's limit", dependencies=[Depends(require_admin)])
    async def put_limit(request: Request, body: RateLimitIn) -> dict[str, Any]:
        """Store a limit for one subject: it applies at once here, in other processes within seconds."""
        stored = await _limiter(request).set_limit(body.subject, body.requests, body.tokens, scope=body.scope,
                                                   algorithm=body.algorithm, burst=body.burst)
        result: dict[str, Any] = stored.to_dict()
        return result

    @router.post("/api/ratelimits/{subject}/reset", response_model=dict[str, str], tags=["Rate limits"],
                 summary="Reset what a subject used", dependencies=[Depends(require_admin)])
    async def reset_limit(request: Request, subject: str) -> dict[str, str]:
        """Forget what a subject (``user:alice``, ``key:k_1``, ``provider:openai``) used: its quota is full again."""
        scope, name = await _limiter(request).reset(subject)
        return {"reset": f"{scope}:{name}"}

    @router.delete("/api/ratelimits/{subject}", response_model=dict[str, bool], tags=["Rate limits"],
                   summary="Remove a subject's limit", dependencies=[Depends(require_admin)])
    async def delete_limit(request: Request, subject: str) -> dict[str, bool]:
        """Drop a subject's stored limit (the defaults apply again)."""
        return {"deleted": await _limiter(request).delete_limit(subject)}


# -- routing ----------------------------------------------------------------------------------


class RoutingIn(c.ApiBody):
    """A new [routing] section and deployment weights, saved to the server's config file."""

    routing: RoutingConfig
    #: As a deployment's ``weight`` in the config file takes it.
    weights: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(default_factory=dict)


def _router(request: Request) -> Any:
    router = gateway_of(request).router
    if not hasattr(router, "health_snapshot"):
        raise problem_for_status(503, "this gateway's router keeps no health; routing is served by the health router")
    return router


def _config_path(request: Request) -> pathlib.Path:
    return server_state(request).config_path or locations.config_path()


async def _routing_out(request: Request, viewer: Viewer) -> RoutingOut:
    from axtui.routing.abreport import ab_report

    gateway, router = gateway_of(request), _router(request)
    routing = gateway.settings.routing
    since = gateway.clock.now() - 86_400
    reports = await asyncio.to_thread(
        lambda: {t.name: asdict(ab_report(gateway.store, t.name, routing, since=since))  # type: ignore[arg-type]
                 for t in routing.ab_tests})
    return RoutingOut(
        routing=routing.model_dump(mode="json"),
        health=[asdict(h) for h in router.health_snapshot()],
        weights={d.id: d.weight for d in gateway.catalog.deployments},
        reports=reports,
        config_path=str(_config_path(request)) if viewer.admin else None,
        models=gateway.catalog.names(),
    )


def _routing_routes(router: APIRouter) -> None:
    @router.get("/api/routing", response_model=RoutingOut, tags=["Routing"], summary="Routing and health",
                dependencies=[Depends(require_reader)])
    async def get_routing(request: Request) -> RoutingOut:
        """The routing settings in force, every deployment's health and weight, and A/B results."""
        return await _routing_out(request, await viewer_of(request))

    @router.put("/api/routing", response_model=RoutingOut, tags=["Routing"], summary="Change routing",
                dependencies=[Depends(require_admin)])
    async def put_routing(request: Request, body: RoutingIn) -> RoutingOut:
        """Save a new [routing] section and weights to the config file; every worker applies it within a second."""
        from axtui.routing.build import save_routing

        gateway = gateway_of(request)
        path = _config_path(request)
        try:
            new = await asyncio.to_thread(save_routing, path, body.routing, body.weights, gateway.catalog,
                                          gateway.store)
        except ConfigError as exc:
            # The config file may be anywhere (--config): the client reads its name, never its folder.
            raise InvalidRequest(exc.message.replace(str(path), path.name), param="routing") from None
        # This worker applies it now; the others (and this one again, harmlessly) when they see the file.
        applied = gateway.settings.model_copy(update={"routing": new.routing, "deployments": new.deployments})
        gateway.settings = applied
        gateway.bus.publish(SettingsChanged(applied))
        return await _routing_out(request, await viewer_of(request))

    @router.get("/api/routing/explain", response_model=dict[str, Any], tags=["Routing"],
                summary="Explain a routing decision", dependencies=[Depends(require_reader)],
                responses={404: {"description": "No deployment serves that model",
                                 "content": {"application/json": {"schema": {
                                     "$ref": "#/components/schemas/ErrorResponse"}}}}})
    async def explain_route(
        request: Request,
        model: Annotated[str, Query(min_length=1, max_length=256)],
        user: Annotated[str, Query(max_length=256)] = "anonymous",
        tokens: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    ) -> dict[str, Any]:
        """Which deployment a call of ``model`` by ``user`` would get now, and why (nothing is called)."""
        from axtui.routing.explain import explain

        viewer = await viewer_of(request)
        if user not in ("", "anonymous"):
            owned_user(viewer, user)  # a gateway key explains its own calls only
        result: dict[str, Any] = jsonable_encoder(asdict(explain(_router(request), model, user=user or "anonymous",
                                                                 tokens=tokens)))
        return result

    @router.get("/api/cost/whatif", response_model=dict[str, Any], tags=["Costs"],
                summary="Replay recorded calls under another strategy", dependencies=[Depends(require_admin)])
    async def cost_whatif(
        request: Request,
        seconds: Annotated[float, Query(gt=0, le=366 * 86_400)] = 86_400.0,
        strategy: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """The calls of the last ``seconds`` replayed under ``strategy``: spend, savings and p95 beside the real ones.

        What ``ax cost whatif --strategy S`` prints as JSON (price files are read only by the CLI, where
        the calls are). The admin key: it reads every user's calls.
        """
        from axtui.cost.whatif import load_policy, whatif

        gateway = gateway_of(request)
        if gateway.store is None:
            raise problem_for_status(503, "this gateway records no calls, so there is nothing to replay")
        try:
            policy = load_policy(gateway.settings, strategy=strategy)
        except ConfigError as exc:
            raise InvalidRequest(exc.message, param="strategy") from None
        now = gateway.clock.now()
        result = await asyncio.to_thread(whatif, gateway.store, gateway.settings, gateway.catalog, policy,
                                         now - seconds, now, described={"strategy": strategy} if strategy else {})
        data: dict[str, Any] = jsonable_encoder(result.as_dict())
        return data


def admin_router() -> APIRouter:
    """The /api routes for alerts, budgets, rate limits and routing."""
    router = APIRouter()
    _alert_routes(router)
    _budget_routes(router)
    _ratelimit_routes(router)
    _routing_routes(router)
    return router
