"""The routing API: ``GET|PUT /api/routing`` and ``GET /api/routing/explain``.

Any gateway key reads the routing in force, each deployment's live health
and weight and the A/B tests' results (the config file's path only with
the admin key), and explains a decision for its own user; a ``PUT`` takes
the admin key and saves ``[routing]`` and the weights to the server's
config file, which every worker applies within a second.
"""

from __future__ import annotations

import asyncio
import pathlib
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from axtui import locations
from axtui.config import RoutingConfig
from axtui.errors import ConfigError, InvalidRequest
from axtui.server.auth import Viewer
from axtui.server.deps import gateway_of, require_admin, require_reader, server_state, viewer_of
from axtui.server.errors import problem_for_status
from axtui.server.tenancy import owned_user

__all__ = ["routing_router"]


class RoutingOut(BaseModel):
    """The router's settings, each deployment's live health and weight, and the A/B tests' results."""

    routing: dict[str, Any] = Field(description="The [routing] section in force")
    health: list[dict[str, Any]] = Field(description="Each deployment's health in this worker")
    weights: dict[str, float]
    reports: dict[str, dict[str, Any]] = Field(description="Each A/B test's results over the last day")
    config_path: str | None = Field(default=None, description="The config file routing edits are saved to "
                                                                "(shown to the admin only)")
    models: list[str]


class RoutingIn(BaseModel):
    """A new [routing] section and deployment weights, saved to the server's config file."""

    routing: RoutingConfig
    weights: dict[str, float] = Field(default_factory=dict)


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
        try:
            new = await asyncio.to_thread(save_routing, _config_path(request), body.routing, body.weights,
                                          gateway.catalog, gateway.store)
        except ConfigError as exc:
            raise InvalidRequest(exc.message, param="routing") from None
        # This worker applies it now; the others (and this one again, harmlessly) when they see the file.
        applied = gateway.settings.model_copy(update={"routing": new.routing, "deployments": new.deployments})
        gateway.settings = applied
        gateway.bus.publish("config", applied)
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


def routing_router() -> APIRouter:
    """The /api/routing routes."""
    router = APIRouter()
    _routing_routes(router)
    return router
