"""Turns finished call traces into spans and exports them, on a thread of its own.

The event loop only appends a finished `Exportable` (a call's timings and
ids) to a bounded queue. This thread builds the OpenTelemetry spans from
it and hands them to the SDK's exporter in batches, so neither building
spans nor encoding them runs on a call's path. It counts exported, dropped
(queue full) and failed (the collector refused them or was unreachable)
spans, and logs only when the collector goes away and when it comes back,
where the SDK's batch processor would log every lost span.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["Exportable", "SpanExportThread"]

log = logging.getLogger("axtui.telemetry")


class Exportable(Protocol):
    """A finished call's trace."""

    def span_count(self) -> int:
        """How many spans `to_spans` makes."""
        ...

    def to_spans(self) -> list[ReadableSpan]:
        """The spans, built off the event loop."""
        ...


class SpanExportThread:
    """Queue finished traces; build and export their spans from a background thread.

    Args:
        exporter: the SDK exporter that sends a batch (OTLP over HTTP in ax).
        max_queue: traces (calls) waiting at most; later ones are dropped and counted.
        batch: spans per export, at most.
        delay_s: how long the thread waits for a batch to fill.
    """

    def __init__(self, exporter: SpanExporter, *, max_queue: int = 8192, batch: int = 512, delay_s: float = 0.5) -> None:
        self._exporter = exporter
        self._queue: collections.deque[Exportable] = collections.deque()
        self._max_queue = max_queue
        self._batch = batch
        self._delay_s = delay_s
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._stopping = False
        self._busy = False
        self._healthy = True
        self.exported = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="ax-otlp-export", daemon=True)
        self._thread.start()

    def submit(self, trace: Exportable) -> None:
        """Queue a finished trace: O(1) on the caller's thread."""
        if self._stopping or len(self._queue) >= self._max_queue:
            self.dropped += trace.span_count()
            return
        self._queue.append(trace)
        if len(self._queue) >= self._batch // 4:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            with self._idle:
                self._busy = True
            try:
                while self._queue:
                    self._export_batch()
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
            if self._stopping and not self._queue:
                return

    def _export_batch(self) -> None:
        spans: list[ReadableSpan] = []
        while self._queue and len(spans) < self._batch:
            trace = self._queue.popleft()
            try:
                spans.extend(trace.to_spans())
            except Exception as exc:  # a bad trace is lost, never the thread
                self.failed += trace.span_count()
                log.warning("telemetry: a call's trace could not be built: %s", exc)
        if not spans:
            return
        try:
            result = self._exporter.export(spans)
        except Exception as exc:
            result = SpanExportResult.FAILURE
            log.debug("span export raised: %s", exc)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            if not self._healthy:
                self._healthy = True
                log.warning("telemetry: the OTLP collector accepts spans again")
        else:
            self.failed += len(spans)
            if self._healthy:
                self._healthy = False
                log.warning("telemetry: the OTLP collector did not accept %d spans; spans are dropped and "
                            "counted (ax_telemetry_spans_total{outcome=\"failed\"}) until it does", len(spans))

    def flush(self, timeout_s: float) -> bool:
        """Export everything queued; False when that took longer than ``timeout_s``."""
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._busy, timeout=timeout_s)

    def shutdown(self, timeout_s: float) -> None:
        """Stop taking traces, send what is left (waiting at most ``timeout_s``), close the exporter."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        self._exporter.shutdown()
