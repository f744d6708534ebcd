"""Prometheus exposition of the gateway's calls and alerts, fed from the bus.

`PrometheusMetrics` owns a private `CollectorRegistry` (so two gateways in
one process never clash) and is what the server's ``GET /metrics`` renders.
Names are stable and documented here and in the README:

=====================================  ==========  ==================================================
name                                   type        labels
=====================================  ==========  ==================================================
``ax_requests_total``                  counter     provider, model, status, cache
``ax_request_duration_seconds``        histogram   provider, model (served calls: ok and error)
``ax_time_to_first_token_seconds``     histogram   provider, model (successful calls)
``ax_tokens_total``                    counter     provider, model, kind (input, output, cached_input, reasoning)
``ax_cost_usd_total``                  counter     provider, model (priced calls; exact sums: ``ax cost``)
``ax_unpriced_calls_total``            counter     provider, model (served at an unknown price)
``ax_cache_saved_usd_total``           counter     (what cache hits would have cost)
``ax_alerts_firing``                   gauge       rule_id, name, severity (1 while firing)
``ax_alert_transitions_total``         counter     kind (pending, firing, resolved, cancelled), severity
``ax_budget_events_total``             counter     (budget thresholds crossed)
``ax_recorder_pending``                gauge       (call records waiting to be written)
``ax_recorder_quarantined_total``      counter     (records the database refused, kept in calls_quarantine)
``ax_recorder_refused_total``          counter     (calls refused with 503: the recorder's queue stayed full)
``ax_recorder_dropped_total``          counter     (records lost: not even the quarantine took them)
``ax_telemetry_spans_total``           counter     outcome (exported, dropped, failed; with tracing on)
``ax_cache_entries``                   gauge       tier (memory, index: the semantic index)
``ax_cache_index_bytes``               gauge       (the semantic index's memory)
``ax_cache_evictions_total``           counter     tier (memory, index: entries that left a full tier)
``ax_cache_dropped_writes_total``      counter     (answers not indexed or not written: a queue was full)
``ax_cache_guard_blocks_total``        counter     (similar answers the guards refused to serve)
``ax_cache_worker_unanswered_total``   counter     (semantic lookups and stores the worker did not answer in time)
``ax_cache_worker_restarts_total``     counter     (semantic workers started in place of one that ended)
=====================================  ==========  ==================================================

``provider`` and ``model`` are ``none`` for calls refused before a
deployment was chosen. Users and keys are deliberately not labels: their
number is unbounded, and a Prometheus series per user would swamp it; the
per-user view is ``ax monitor`` and the metrics API.

With several server workers, each exposes its own counters (scrape each,
or sum them); the shared view is the metrics API.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from axtui.bus import AlertChanged, BudgetCrossed, CallRecorded, Event, EventBus, Subscription
from axtui.money import NANOS_PER_USD
from axtui.types import CallRecord

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

#: The content type of `PrometheusMetrics.render`.
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RecorderCounts(Protocol):
    """What `PrometheusMetrics.watch_recorder` reads of a recorder."""

    @property
    def pending(self) -> int:
        """Records waiting to be written."""

    quarantined: int
    refused: int
    dropped: int


class _RecorderCollector(Collector):
    """Reads a recorder's counters at each scrape (they move on the writer thread)."""

    def __init__(self, recorder: RecorderCounts) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Metric]:
        r = self.recorder
        yield GaugeMetricFamily("ax_recorder_pending", "Call records waiting to be written.", value=r.pending)
        yield CounterMetricFamily(
            "ax_recorder_quarantined", "Call records the database refused, kept in calls_quarantine.",
            value=r.quarantined,
        )  # fmt: skip
        yield CounterMetricFamily(
            "ax_recorder_refused", "Calls refused (503) because the recorder's queue stayed full.", value=r.refused
        )
        yield CounterMetricFamily(
            "ax_recorder_dropped", "Call records lost: not even the quarantine could take them.", value=r.dropped
        )


class PrometheusMetrics:
    """Prometheus counters and histograms of every call and alert on a bus.

    Args:
        registry: where the metrics are registered (a new private one by default).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ax_requests", "Calls through the gateway.", ["provider", "model", "status", "cache"], registry=r
        )
        self.duration = Histogram(
            "ax_request_duration_seconds", "Latency of served calls (ok and error).", ["provider", "model"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "ax_time_to_first_token_seconds", "Time to the first token of successful calls.", ["provider", "model"],
            buckets=_TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter("ax_tokens", "Tokens by kind.", ["provider", "model", "kind"], registry=r)
        self.cost = Counter("ax_cost_usd", "Spend of priced calls, in dollars.", ["provider", "model"], registry=r)
        self.unpriced = Counter(
            "ax_unpriced_calls", "Calls served at an unknown price.", ["provider", "model"], registry=r
        )
        self.saved = Counter("ax_cache_saved_usd", "What cache hits would have cost, in dollars.", registry=r)
        self.alerts_firing = Gauge(
            "ax_alerts_firing", "1 for each alert rule that is firing.", ["rule_id", "name", "severity"], registry=r
        )
        self.alert_transitions = Counter(
            "ax_alert_transitions", "Alert rule transitions.", ["kind", "severity"], registry=r
        )
        self.budget_events = Counter("ax_budget_events", "Budget thresholds crossed.", registry=r)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._request_children: dict[tuple[str, str, str, str], Any] = {}
        self._subscription: Subscription | None = None

    def attach(self, bus: EventBus) -> Subscription:
        """Count every call, alert and budget event published on ``bus`` from now on."""
        self._subscription = bus.subscribe(self.handle)
        return self._subscription

    def watch_recorder(self, recorder: RecorderCounts) -> None:
        """Expose ``recorder``'s pending, quarantined, refused and dropped counts."""
        self.registry.register(_RecorderCollector(recorder))

    def detach(self) -> None:
        """Stop counting."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def handle(self, event: Event) -> None:
        """A bus handler."""
        if isinstance(event, CallRecorded):
            self.observe(event.record)
        elif isinstance(event, AlertChanged):
            self._alert(event.event)
        elif isinstance(event, BudgetCrossed):
            self.budget_events.inc()

    def _labelled(self, provider: str, model: str) -> tuple[Any, ...]:
        # .labels() costs a lock and a dict build per call; keep the children.
        key = (provider, model)
        found = self._children.get(key)
        if found is None:
            with self._lock:
                found = self._children[key] = (
                    self.duration.labels(provider, model),
                    self.ttft.labels(provider, model),
                    self.tokens.labels(provider, model, "input"),
                    self.tokens.labels(provider, model, "output"),
                    self.tokens.labels(provider, model, "cached_input"),
                    self.tokens.labels(provider, model, "reasoning"),
                    self.cost.labels(provider, model),
                    self.unpriced.labels(provider, model),
                )
        return found

    def observe(self, rec: CallRecord) -> None:
        """Count one call."""
        provider = rec.provider or "none"
        model = rec.model or "none"
        key = (provider, model, rec.status, rec.cache)
        counter = self._request_children.get(key)
        if counter is None:
            with self._lock:
                counter = self._request_children[key] = self.requests.labels(*key)
        counter.inc()
        duration, ttft, t_in, t_out, t_cached, t_reason, cost, unpriced = self._labelled(provider, model)
        if rec.status in ("ok", "error"):
            duration.observe(rec.latency_ms / 1000)
        if rec.status == "ok" and rec.ttft_ms is not None:
            ttft.observe(rec.ttft_ms / 1000)
        if rec.input_tokens:
            t_in.inc(rec.input_tokens)
        if rec.output_tokens:
            t_out.inc(rec.output_tokens)
        if rec.cached_input_tokens:
            t_cached.inc(rec.cached_input_tokens)
        if rec.reasoning_tokens:
            t_reason.inc(rec.reasoning_tokens)
        if rec.cost_nanos is not None:
            if rec.cost_nanos > 0:
                cost.inc(rec.cost_nanos / NANOS_PER_USD)
        elif rec.status == "ok" and rec.cache == "miss":
            unpriced.inc()
        if rec.saved_nanos:
            self.saved.inc(rec.saved_nanos / NANOS_PER_USD)

    def _alert(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        severity = getattr(event, "severity", "warning")
        if kind is None:
            return
        self.alert_transitions.labels(kind, severity).inc()
        labels = (str(getattr(event, "rule_id", "")), str(getattr(event, "rule_name", "")), severity)
        if kind == "firing":
            self.alerts_firing.labels(*labels).set(1)
        elif kind == "resolved":
            with contextlib.suppress(KeyError):
                self.alerts_firing.remove(*labels)

    def watch_spans(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Expose the span exporter's counts (``exported``, ``dropped``, ``failed``) as ``ax_telemetry_spans_total``."""
        self.registry.register(_SpanCounts(stats))

    def watch_cache(self, figures: Callable[[], Mapping[str, Any]]) -> None:
        """Expose the response cache's live figures (`axtui.cache.AnswerCache.snapshot`) as ``ax_cache_*``."""
        self.registry.register(_CacheFigures(figures))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE


class _SpanCounts(Collector):
    """Reads the span exporter's counters at each scrape."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "ax_telemetry_spans", "Trace spans by outcome: exported, dropped (queue full), failed (collector).",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._stats().items()):
            family.add_metric([outcome], count)
        yield family


class _CacheFigures(Collector):
    """Reads the response cache's live figures at each scrape (this process's, like every counter here)."""

    def __init__(self, figures: Callable[[], Mapping[str, Any]]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self._figures()
        entries = GaugeMetricFamily("ax_cache_entries", "Response cache entries held, by tier.", labels=["tier"])
        entries.add_metric(["memory"], f["memory_entries"])
        entries.add_metric(["index"], f["index_entries"])
        yield entries
        yield GaugeMetricFamily("ax_cache_index_bytes", "Memory of the semantic index.", value=f["index_bytes"])
        evictions = CounterMetricFamily(
            "ax_cache_evictions", "Response cache entries that left a full tier.", labels=["tier"]
        )
        evictions.add_metric(["memory"], f["memory_evictions"])
        evictions.add_metric(["index"], f["index_evictions"])
        yield evictions
        yield CounterMetricFamily(
            "ax_cache_dropped_writes", "Answers not indexed or not written because a queue was full.",
            value=f["dropped_writes"],
        )  # fmt: skip
        yield CounterMetricFamily(
            "ax_cache_guard_blocks", "Similar answers the guards refused to serve.", value=f["guard_blocks"]
        )
        if "worker_restarts" in f:
            yield CounterMetricFamily(
                "ax_cache_worker_unanswered", "Semantic lookups and stores the worker did not answer in time.",
                value=f["worker_unanswered"],
            )  # fmt: skip
            yield CounterMetricFamily(
                "ax_cache_worker_restarts", "Semantic workers started in place of one that ended.",
                value=f["worker_restarts"],
            )  # fmt: skip
