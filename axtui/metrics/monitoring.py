"""Monitoring attached to a running gateway: live windows, alerts, Prometheus.

`attach_monitoring` is what the server, the dashboard and ``ax sim load``
call once the gateway exists and the event loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, Literal

from axtui.aio import cancel_and_wait
from axtui.cache import AnswerCache
from axtui.metrics.alerts.evaluator import AlertEvaluator
from axtui.metrics.alerts.sources import MetricSources
from axtui.metrics.live import LiveMetrics
from axtui.metrics.prometheus import PrometheusMetrics
from axtui.metrics.shared import SecondsHook, StoreFeed
from axtui.metrics.snapshot import AlertSummary, Snapshot
from axtui.telemetry import export_metrics

if TYPE_CHECKING:
    from axtui.engine.gateway import Gateway
    from axtui.store import Store

__all__ = ["Monitoring", "attach_monitoring"]

log = logging.getLogger(__name__)


class Monitoring:
    """The monitoring parts attached to one gateway; close with `aclose`.

    Attributes:
        live: the live windows (``snapshot()`` for screens and the metrics API).
        evaluator: the alert evaluator, or None when alerts are off.
        prometheus: the Prometheus registry's feeder (``render()`` for ``GET /metrics``), or None.
        feed: in the ``store`` source mode, what fills ``live`` from the store.

    Without an evaluator (``alerts=False``: another worker evaluates), the
    pending and firing rules shown in snapshots are read from the store
    every ``alerts.interval_s``, so every worker's snapshot shows them.
    """

    def __init__(
        self,
        live: LiveMetrics,
        *,
        evaluator: AlertEvaluator | None,
        prometheus: PrometheusMetrics | None,
        feed: StoreFeed | None,
        hook: SecondsHook | None,
        recorder: Any,
        store: Store | None = None,
        interval_s: float = 5.0,
    ) -> None:
        self.live = live
        self.evaluator = evaluator
        self.prometheus = prometheus
        self.feed = feed
        self._hook = hook
        self._recorder = recorder
        self._closed = False
        self._stored_alerts: list[AlertSummary] = []
        self._alert_task: asyncio.Task[None] | None = None
        if evaluator is None and store is not None:
            self._alert_task = asyncio.get_running_loop().create_task(
                self._read_alerts(store, interval_s), name="ax-alert-states"
            )

    async def _read_alerts(self, store: Store, interval_s: float) -> None:
        from axtui.metrics.alerts.storage import list_rules

        while True:
            try:
                rules = await asyncio.to_thread(list_rules, store)
                active = [
                    AlertSummary(r.id, r.name, r.severity, r.state, r.state_since or 0.0, r.last_value, r.rule)
                    for r in rules
                    if r.enabled and r.state != "ok"
                ]
                active.sort(key=lambda a: (a.state != "firing", a.since))
                self._stored_alerts = active
            except Exception as exc:  # the next look catches up
                log.debug("reading alert states failed: %s", exc)
            await asyncio.sleep(interval_s)

    def snapshot(self, **kwargs: Any) -> Snapshot:
        """`LiveMetrics.snapshot` plus the alerts pending or firing now."""
        snap = self.live.snapshot(**kwargs)
        snap.alerts = self.evaluator.active() if self.evaluator is not None else list(self._stored_alerts)
        return snap

    def user_snapshot(self, user: str, **kwargs: Any) -> Snapshot:
        """`LiveMetrics.user_snapshot` (one tenant's calls) plus the alerts pending or firing now."""
        snap = self.live.user_snapshot(user, **kwargs)
        snap.alerts = self.evaluator.active() if self.evaluator is not None else list(self._stored_alerts)
        return snap

    async def aclose(self) -> None:
        """Stop evaluating and feeding; unhook from the bus and the recorder."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._alert_task)
        if self.feed is not None:
            await self.feed.aclose()
        if self.evaluator is not None:
            await self.evaluator.aclose()
        self.live.detach()
        if self.prometheus is not None:
            self.prometheus.detach()
        if self._hook is not None and self._recorder is not None:
            # Leave the hook in while the recorder writes its last batches, so
            # every recorded call also has its per-second row.
            await asyncio.to_thread(self._recorder.flush)
            with contextlib.suppress(ValueError):
                self._recorder.hooks.remove(self._hook)


def attach_monitoring(
    gateway: Gateway,
    *,
    source: Literal["local", "store"] = "local",
    alerts: bool = True,
    prometheus: bool = True,
) -> Monitoring:
    """Attach live metrics, the alert evaluator and Prometheus counters to ``gateway``.

    Call it from a coroutine (it starts tasks on the running loop). The
    gateway closes the monitoring when it closes; `Monitoring.aclose` may
    be called earlier.

    Args:
        gateway: a built gateway (its settings, bus, store, recorder and clock are used).
        source: ``local`` counts this process's calls from the bus; ``store``
            reads every process's per-second rollups (several server
            workers, or a dashboard beside a server).
        alerts: run the alert evaluator every ``alerts.interval_s``.
        prometheus: count calls and alerts for ``GET /metrics``.

    Raises:
        RuntimeError: no event loop is running, or ``source="store"`` without a store.
    """
    asyncio.get_running_loop()
    settings = gateway.settings
    clock = gateway.clock
    store = gateway.store
    recorder = gateway.recorder
    live = LiveMetrics(settings.metrics, clock=clock, source=source)
    feed = None
    if source == "store":
        if store is None:
            raise RuntimeError("live metrics from the store need a gateway with a store")
        feed = StoreFeed(store, live, clock=clock)
        feed.start()
    else:
        live.attach(gateway.bus)
    hook = None
    if settings.metrics.store_seconds and recorder is not None:
        hook = SecondsHook(
            retention_s=settings.metrics.second_retention_s,
            prune_every_s=settings.metrics.prune_interval_s,
            clock=clock,
        )
        recorder.add_hook(hook)
    evaluator = None
    if alerts and store is not None:
        shared = None
        if source == "local" and hook is not None:
            # Rules are measured on every process's calls (replicas, several `ax serve` on one file, `ax sim
            # load` beside a server), read from the rollups they all write, just before each evaluation.
            windows = LiveMetrics(settings.metrics.model_copy(update={"recent_calls": 0}), clock=clock,
                                  source="store")
            rescan_s = max(10, math.ceil(2 * settings.alerts.interval_s))  # polled once per evaluation
            shared = StoreFeed(store, windows, clock=clock, rescan_s=rescan_s)
        sources = MetricSources(live, store, settings, shared=shared)
        evaluator = AlertEvaluator(store, live, settings, bus=gateway.bus, clock=clock, sources=sources)
        evaluator.start()
    prom = None
    if prometheus:
        prom = PrometheusMetrics()
        prom.attach(gateway.bus)
        if recorder is not None:
            prom.watch_recorder(recorder)
        if gateway.telemetry.enabled:
            prom.watch_spans(gateway.telemetry.stats)
        if isinstance(gateway.cache, AnswerCache):
            prom.watch_cache(gateway.cache.snapshot)
        bridge = export_metrics(prom.registry, settings)
        if bridge is not None:
            gateway.extras.setdefault("closers", []).append(lambda: asyncio.to_thread(bridge.shutdown))
    monitoring = Monitoring(
        live, evaluator=evaluator, prometheus=prom, feed=feed, hook=hook, recorder=recorder, store=store,
        interval_s=settings.alerts.interval_s,
    )  # fmt: skip
    closers = gateway.extras.setdefault("closers", [])
    # Before the gateway's own closers: alerts stop before the store goes away.
    closers.insert(0, monitoring.aclose)
    return monitoring
