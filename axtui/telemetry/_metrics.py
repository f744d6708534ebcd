"""The figures of ``GET /metrics``, also pushed over OTLP.

Every metric family in ax's Prometheus registry becomes an OpenTelemetry
observable instrument of the same name: counters stay cumulative counters,
gauges stay gauges, and a histogram goes out as its ``_count`` and ``_sum``
counters (bucket boundaries chosen for Prometheus do not map onto an OTLP
histogram read after the fact). One read of the registry serves every
instrument of one collection. A periodic reader exports them from its own
thread, so nothing here runs on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from axtui import __version__

__all__ = ["MetricsBridge"]


class MetricsBridge:
    """Pushes a Prometheus registry's samples to an OTLP metrics endpoint every ``interval_s``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        endpoint: str | None = None,
        service_name: str = "ax",
        interval_s: float = 15.0,
        timeout_s: float = 5.0,
        exporter: MetricExporter | None = None,
    ) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._samples: dict[str, list[tuple[float, dict[str, str]]]] = {}
        reader = PeriodicExportingMetricReader(
            exporter or OTLPMetricExporter(endpoint=endpoint, timeout=timeout_s),
            export_interval_millis=interval_s * 1000,
        )
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self._provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self._provider.get_meter("axtui", __version__)
        for family in registry.collect():
            if family.type == "counter":
                meter.create_observable_counter(f"{family.name}_total", [self._reader(f"{family.name}_total")],
                                                description=family.documentation)
            elif family.type == "gauge":
                meter.create_observable_gauge(family.name, [self._reader(family.name)],
                                              description=family.documentation)
            elif family.type == "histogram":
                for part in ("_count", "_sum"):
                    meter.create_observable_counter(family.name + part, [self._reader(family.name + part)],
                                                    description=family.documentation)

    def _reader(self, sample_name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, labels) for value, labels in self._read().get(sample_name, [])]

        return observe

    def _read(self) -> dict[str, list[tuple[float, dict[str, str]]]]:
        """The registry's samples by name, read once per collection (all instruments are observed together)."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at > 0.5:
                samples: dict[str, list[tuple[float, dict[str, str]]]] = {}
                for family in self._registry.collect():
                    for s in family.samples:
                        samples.setdefault(s.name, []).append((s.value, dict(s.labels)))
                self._samples, self._read_at = samples, now
            return self._samples

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export now."""
        return bool(self._provider.force_flush(int(timeout_s * 1000)))

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """A last export, then stop."""
        self._provider.shutdown(timeout_millis=timeout_s * 1000)
