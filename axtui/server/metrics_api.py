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

Reads under ``/api`` take any gateway key or the admin key. A gateway key
sees its own tenant only (`axtui.server.tenancy`): its user's totals,
series and recent calls, its history. ``/metrics``, ``/healthz`` and
``/readyz`` are open, as scrapers and orchestrators expect. Each key (and
the admin) may hold at most ``server.max_streams_per_key`` metrics streams
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import text

from axtui.bus import AlertChanged, BudgetCrossed
from axtui.engine.gateway import Gateway
from axtui.errors import InvalidRequest
from axtui.server.auth import Viewer
from axtui.server.deps import gateway_of, monitoring_of, require_reader, server_state, viewer_of
from axtui.server.errors import HTTPProblem, problem_for_status
from axtui.server.state import ServerState
from axtui.server.tenancy import alert_visible, forbidden, owned_user, rule_visible, scope_visible

__all__ = ["health_router", "metrics_router"]

log = logging.getLogger(__name__)


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the gateway is built, the store answers, the recorder keeps up."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str]


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
            # The reason names server paths: the log has it, the answer does not.
            log.warning("readiness: the store does not answer: %s", exc)
            raise problem_for_status(503, "the store does not answer (the server log says why)") from None
        checks["store"] = "ok"
        recorder = gateway.recorder
        if recorder is not None and recorder.last_error:
            log.warning("readiness: the recorder cannot write: %s", recorder.last_error)
            raise problem_for_status(503, "the recorder cannot write (the server log says why)")
        checks["recorder"] = "ok" if recorder is not None else "off"
        return Readiness(checks=checks)

    @router.get("/metrics", tags=["Health"], summary="Prometheus metrics", response_class=Response,
                responses={200: {"description": "Prometheus text exposition (calls, latency, tokens, cost, "
                                                "alerts; names documented in the README)",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics(request: Request) -> Response:
        """Counters and histograms of this process's calls, in Prometheus' text format."""
        monitoring = monitoring_of(request)
        if monitoring.prometheus is None:
            raise problem_for_status(503, "Prometheus metrics are off in this server")
        body, content_type = monitoring.prometheus.render()
        return Response(body, media_type=content_type)


def _snapshot_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": what, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/MetricsSnapshot"}}}}}


def snapshot_json(monitoring: Any, viewer: Viewer, **kwargs: Any) -> dict[str, Any]:
    """The live snapshot the viewer may see: everything for the admin, its own user's calls for a key."""
    if viewer.admin:
        snapshot = monitoring.snapshot(**kwargs)
    else:
        assert viewer.user is not None
        kwargs.pop("top_users", None)
        snapshot = monitoring.user_snapshot(viewer.user, **kwargs)
    data: dict[str, Any] = snapshot.to_json()
    if not viewer.admin:
        data["alerts"] = [a for a in data.get("alerts") or () if rule_visible(viewer, str(a.get("rule", "")))]
    data["view"] = "all" if viewer.admin else f"user:{viewer.user}"
    return data


def _event_json(event: Any) -> Any:
    for name in ("to_json", "to_dict"):
        fn = getattr(event, name, None)
        if callable(fn):
            return fn()
    with contextlib.suppress(TypeError):
        from dataclasses import asdict

        return asdict(event)
    return event


#: What a tenant sees of an alert or budget event (no delivery details: they describe webhooks).
_PRIVATE_EVENT_FIELDS = ("delivery", "attempts", "delivery_error", "delivered_at", "webhook")


def event_for(viewer: Viewer, topic: str, event: Any) -> dict[str, Any] | None:
    """An ``alert`` or ``budget`` event as the viewer may see it; None when it is about someone else."""
    data = _event_json(event)
    if not isinstance(data, dict):
        return None
    if viewer.admin:
        return data
    if topic == "budget" and not scope_visible(viewer, str(data.get("scope", ""))):
        return None
    if topic == "alert" and not alert_visible(viewer, data.get("labels") or {}):
        return None
    return {k: v for k, v in data.items() if k not in _PRIVATE_EVENT_FIELDS}


def _stream_events(
    state: ServerState, monitoring: Any, gateway: Gateway, viewer: Viewer, interval: float,
    release: Callable[[], None], count: int | None = None,
) -> AsyncIterator[bytes]:
    queue, subscription = gateway.bus.queue((AlertChanged, BudgetCrossed), maxsize=1000)

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            yield b"retry: 2000\n\n"
            sent = 0
            while not state.stopping:
                yield b"event: snapshot\ndata: " + to_json(snapshot_json(monitoring, viewer)) + b"\n\n"
                sent += 1
                if count is not None and sent >= count:
                    return
                deadline = loop.time() + interval
                while not state.stopping and (left := deadline - loop.time()) > 0:
                    # Short waits, so a stopping server ends the stream within half a second.
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=min(left, 0.5))
                    except TimeoutError:
                        continue
                    payload = event.event if isinstance(event, AlertChanged) else getattr(event, "alert", event)
                    data = event_for(viewer, event.topic, payload)
                    if data is not None:
                        yield b"event: " + event.topic.encode() + b"\ndata: " + to_json(data) + b"\n\n"
        finally:
            subscription.close()
            release()

    return events()


class _HeldStream(StreamingResponse):
    """A stream that gives its key's slot back however it ends (even unstarted, or cut by the client)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _stream_slot(request: Request, state: ServerState) -> Callable[[], None]:
    """Count one more stream for the request's key; the function that gives it back.

    Raises:
        HTTPProblem: 429, the key holds as many streams as ``server.max_streams_per_key``.
    """
    identity = request.scope.get("ax.identity")
    holder = identity.label if identity is not None else "anonymous"
    most = state.settings.server.max_streams_per_key
    if state.streams.get(holder, 0) >= most:
        raise HTTPProblem(429, f"this key already holds {most} metrics streams; close one (or raise "
                               "server.max_streams_per_key)", error_type="rate_limit_error", code="too_many_streams")
    state.streams[holder] = state.streams.get(holder, 0) + 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            left = state.streams.get(holder, 1) - 1
            if left > 0:
                state.streams[holder] = left
            else:
                state.streams.pop(holder, None)

    return release


def _metrics_routes(router: APIRouter) -> None:
    @router.get("/api/metrics/realtime", tags=["Metrics"], summary="Live snapshot", response_class=Response,
                responses=_snapshot_doc("The live snapshot (schema 1): totals, per-second series, providers, "
                                        "deployments, models, users, recent calls, active alerts; money as exact "
                                        "decimal strings. A gateway key sees its own user's calls only "
                                        "(`view` says whose)."))
    async def realtime(
        request: Request,
        series_s: Annotated[int | None, Query(ge=10, le=86_400, description="Seconds of per-second series")] = None,
        top_users: Annotated[int, Query(ge=0, le=1000, description="Most users listed")] = 20,
        recent: Annotated[int | None, Query(ge=0, le=10_000, description="Most recent calls listed")] = None,
    ) -> Response:
        """What the dashboard draws now: rates, latency quantiles, errors, spend, cache hits, per key."""
        monitoring = monitoring_of(request)
        viewer = await viewer_of(request)
        data = snapshot_json(monitoring, viewer, series_s=series_s, top_users=top_users, recent=recent)
        return Response(to_json(data), media_type="application/json")

    @router.get("/api/metrics/history", tags=["Metrics"], summary="History from the rollups",
                response_class=Response,
                responses={200: {"description": "Points per step (money as exact decimal strings); a gateway key "
                                                "reads its own user's (or its namespace's) history only",
                                 "content": {"application/json": {"schema": {"type": "object"}}}},
                           403: {"description": "A gateway key asked about another user or key"}})
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
        viewer = await viewer_of(request)
        now = gateway.clock.now()
        since_ts = parse_time(range_, now, option="range")
        until_ts = parse_time(until, now, option="until")
        assert gateway.store is not None
        if viewer.admin:
            result = await asyncio.to_thread(query, gateway.store, since_ts, until_ts, by=by, step=step,
                                             provider=provider, model=model, user=user, key=key, limit=limit)
            return Response(to_json(result.to_json()), media_type="application/json")
        # The rollups keep one dimension per row: a tenant's history is its user's (or key's)
        # totals, or the user or key breakdown cut down to what it owns.
        if by in ("provider", "model", "tag") or provider is not None or model is not None:
            raise forbidden("a breakdown by provider, model or tag (it covers every tenant's calls)")
        if key is not None and not viewer.owns_key(key):
            raise forbidden(f"reading key {key!r}")
        if by is None:
            chosen = {"key": key} if key is not None else {"user": owned_user(viewer, user)}
            result = await asyncio.to_thread(query, gateway.store, since_ts, until_ts, step=step, **chosen)
        else:
            if user is not None or key is not None:
                owned_user(viewer, user)
                raise InvalidRequest("history takes a breakdown (by) or a user/key filter, not both", param="by")
            result = await asyncio.to_thread(query, gateway.store, since_ts, until_ts, by=by, step=step, limit=1000)
            mine = viewer.owns_user if by == "user" else viewer.owns_key
            result.keys = [k for k in result.keys if mine(k)][:limit]
            result.points = [p for p in result.points if p.key in result.keys]
        return Response(to_json(result.to_json()), media_type="application/json")

    @router.get("/api/metrics/stream", tags=["Metrics"], summary="Live stream (server-sent events)",
                response_class=StreamingResponse,
                responses={200: {"description": "`event: snapshot` every `interval` seconds (the realtime "
                                                "snapshot, `MetricsSnapshot`), `event: alert` (`AlertEventData`) "
                                                "and `event: budget` (`BudgetEventData`) as they happen; each "
                                                "`data:` line is one JSON object",
                                 "content": {"text/event-stream": {"schema": {
                                     "$ref": "#/components/schemas/MetricsStreamEvent"}}}},
                           429: {"description": "The key already holds `server.max_streams_per_key` streams"}})
    async def stream(
        request: Request,
        interval: Annotated[float, Query(ge=0.2, le=60, description="Seconds between snapshots")] = 1.0,
        count: Annotated[int | None, Query(ge=1, le=1_000_000,
                                           description="End after this many snapshots (default: never)")] = None,
    ) -> StreamingResponse:
        """Server-sent events of live snapshots and alert events, until the client leaves."""
        monitoring = monitoring_of(request)
        state = server_state(request)
        gateway = gateway_of(request)
        viewer = await viewer_of(request)
        release = _stream_slot(request, state)
        return _HeldStream(
            _stream_events(state, monitoring, gateway, viewer, interval, release, count), release,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )


def health_router() -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics``: open to probes and scrapers."""
    router = APIRouter()
    _health_routes(router)
    return router


def metrics_router() -> APIRouter:
    """``/api/metrics/*``: any gateway key or the admin key."""
    router = APIRouter(dependencies=[Depends(require_reader)])
    _metrics_routes(router)
    return router
