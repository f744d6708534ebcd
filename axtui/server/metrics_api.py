"""The metrics API: ``/api/metrics/*``, ``/metrics``, ``/healthz``, ``/readyz``.

- ``GET /api/metrics/realtime``: the live snapshot a dashboard screen draws
  (`axtui.metrics.snapshot.Snapshot`, JSON schema 1).
- ``GET /api/metrics/history?range=1h&by=provider``: traffic, spend and
  latency from the rollups, per minute, hour or day.
- ``GET /api/metrics/stream``: server-sent events: ``snapshot`` every
  ``interval`` seconds, ``alert`` and ``budget`` events as they happen
  (``ax monitor realtime --url`` reads it).
- ``GET /metrics``: Prometheus exposition; ``/healthz`` and ``/readyz``.

With one worker the live numbers are this process's own; with several,
every worker reads the per-second rollups all of them write to the store,
so any worker answers for all (about a second behind).

Reads under ``/api`` take any gateway key or the admin key; ``/metrics``,
``/healthz`` and ``/readyz`` are open, as scrapers and orchestrators expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import text

from axtui import locations
from axtui.bus import AlertChanged, BudgetCrossed
from axtui.engine.gateway import Gateway
from axtui.server.app import gateway_of, require_reader, server_state
from axtui.server.errors import problem_for_status
from axtui.server.state import ServerState

__all__ = ["ENV_WORKERS", "install_metrics_api", "start_monitoring"]

log = logging.getLogger(__name__)

#: Set by ``ax serve --workers N`` for its worker processes.
ENV_WORKERS = "AX_SERVE_WORKERS"
_ALERTS_LOCK = "serve-alerts.lock"
_lock_fd: int | None = None


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the gateway is built, the store answers, the recorder keeps up."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str]


def _alerts_leader() -> bool:
    """Whether this worker evaluates alert rules: the one holding the lock file does.

    Several workers evaluating the same rules would fire every alert once
    per worker; a lock on a file beside the database picks one.
    """
    global _lock_fd
    if _lock_fd is not None:
        return True
    path = locations.data_dir() / _ALERTS_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _lock_fd = fd
    return True


def start_monitoring(gateway: Gateway) -> Any:
    """Attach live metrics, alerts and Prometheus to ``gateway`` (once the loop runs)."""
    from axtui.metrics import attach_monitoring

    workers = int(os.environ.get(ENV_WORKERS, "1") or 1)
    if workers > 1:
        return attach_monitoring(gateway, source="store", alerts=_alerts_leader())
    return attach_monitoring(gateway)


def _monitoring(request: Request) -> Any:
    state = server_state(request)
    gateway_of(request)  # 503 while starting or stopping
    if state.monitoring is None:
        raise problem_for_status(503, "live metrics are not running in this server")
    return state.monitoring


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

    @router.get("/metrics", tags=["Health"], summary="Prometheus metrics", response_class=Response,
                responses={200: {"description": "Prometheus text exposition (calls, latency, tokens, cost, "
                                                "alerts; names documented in the README)",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics(request: Request) -> Response:
        """Counters and histograms of this process's calls, in Prometheus' text format."""
        monitoring = _monitoring(request)
        if monitoring.prometheus is None:
            raise problem_for_status(503, "Prometheus metrics are off in this server")
        body, content_type = monitoring.prometheus.render()
        return Response(body, media_type=content_type)


_SNAPSHOT_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The live snapshot (schema 1): totals, per-second series, providers, deployments, "
                         "models, users, recent calls, active alerts; money as exact decimal strings",
          "content": {"application/json": {"schema": {"type": "object"}}}}
}


def _stream_events(state: ServerState, monitoring: Any, gateway: Gateway, interval: float) -> AsyncIterator[bytes]:
    queue, subscription = gateway.bus.queue((AlertChanged, BudgetCrossed), maxsize=1000)

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            yield b"retry: 2000\n\n"
            while not state.stopping:
                snapshot = monitoring.snapshot()
                yield b"event: snapshot\ndata: " + to_json(snapshot.to_json()) + b"\n\n"
                deadline = loop.time() + interval
                while not state.stopping and (left := deadline - loop.time()) > 0:
                    # Short waits, so a stopping server ends the stream within half a second.
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=min(left, 0.5))
                    except TimeoutError:
                        continue
                    payload: object = event
                    if isinstance(event, AlertChanged):
                        payload = event.event
                    elif isinstance(event, BudgetCrossed):
                        payload = event.alert
                    yield (b"event: " + event.topic.encode() + b"\ndata: " + to_json(_event_json(payload))
                           + b"\n\n")
        finally:
            subscription.close()

    return events()


def _event_json(event: Any) -> Any:
    for name in ("to_json", "to_dict"):
        fn = getattr(event, name, None)
        if callable(fn):
            return fn()
    with contextlib.suppress(TypeError):
        from dataclasses import asdict

        return asdict(event)
    return event


def _metrics_routes(router: APIRouter) -> None:
    @router.get("/api/metrics/realtime", tags=["Metrics"], summary="Live snapshot", responses=_SNAPSHOT_DOC,
                response_class=Response)
    async def realtime(
        request: Request,
        series_s: Annotated[int | None, Query(ge=10, le=86_400, description="Seconds of per-second series")] = None,
        top_users: Annotated[int, Query(ge=0, le=1000, description="Most users listed")] = 20,
        recent: Annotated[int | None, Query(ge=0, le=10_000, description="Most recent calls listed")] = None,
    ) -> Response:
        """What the dashboard draws now: rates, latency quantiles, errors, spend, cache hits, per key."""
        monitoring = _monitoring(request)
        snapshot = monitoring.snapshot(series_s=series_s, top_users=top_users, recent=recent)
        return Response(to_json(snapshot.to_json()), media_type="application/json")

    @router.get("/api/metrics/history", tags=["Metrics"], summary="History from the rollups",
                response_class=Response,
                responses={200: {"description": "Points per step (money as exact decimal strings)",
                                 "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def history(
        request: Request,
        range_: Annotated[str, Query(alias="range", description="How far back: 15m, 1h, 7d, or a date")] = "1h",
        until: Annotated[str, Query(description="End: now, a relative time or a date")] = "now",
        by: Annotated[Literal["provider", "model", "user", "key", "tag"] | None,
                      Query(description="Break down by this dimension")] = None,
        step: Annotated[Literal["minute", "hour", "day"] | None, Query(description="Bucket size (auto)")] = None,
        provider: str | None = None,
        model: str | None = None,
        user: str | None = None,
        key: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    ) -> Response:
        """Traffic, spend and latency over a time range, from the per-minute/hour rollups."""
        from axtui.metrics.history import history as query
        from axtui.metrics.timespec import parse_time

        gateway = gateway_of(request)
        now = gateway.clock.now()
        since_ts = parse_time(range_, now, option="range")
        until_ts = parse_time(until, now, option="until")
        assert gateway.store is not None
        result = await asyncio.to_thread(query, gateway.store, since_ts, until_ts, by=by, step=step,
                                         provider=provider, model=model, user=user, key=key, limit=limit)
        return Response(to_json(result.to_json()), media_type="application/json")

    @router.get("/api/metrics/stream", tags=["Metrics"], summary="Live stream (server-sent events)",
                response_class=StreamingResponse,
                responses={200: {"description": "`event: snapshot` every `interval` seconds (the realtime "
                                                "snapshot), `event: alert` and `event: budget` as they happen",
                                 "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def stream(
        request: Request,
        interval: Annotated[float, Query(ge=0.2, le=60, description="Seconds between snapshots")] = 1.0,
    ) -> StreamingResponse:
        """Server-sent events of live snapshots and alert events, until the client leaves."""
        monitoring = _monitoring(request)
        state = server_state(request)
        gateway = gateway_of(request)
        return StreamingResponse(
            _stream_events(state, monitoring, gateway, interval),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )


def install_metrics_api(api: FastAPI) -> None:
    """Add the health, metrics and admin routes to ``api``."""
    from axtui.server.admin_api import admin_router
    from axtui.server.export_api import export_router

    open_router = APIRouter()
    _health_routes(open_router)
    api.include_router(open_router)
    guarded = APIRouter(dependencies=[Depends(require_reader)])
    _metrics_routes(guarded)
    api.include_router(guarded)
    api.include_router(admin_router())
    api.include_router(export_router())
