"""An OTLP/HTTP trace receiver on 127.0.0.1 that decodes what it is sent, for tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass
class ReceivedSpan:
    """One decoded span."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: str
    attributes: dict[str, Any]
    error: bool
    service: str
    children: list[ReceivedSpan] = field(default_factory=list)


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which)


class Receiver:
    """Collects the spans POSTed to ``{url}/v1/traces`` and the metric points POSTed to ``{url}/v1/metrics``."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        #: metric name → the latest (value, attributes) points.
        self.metrics: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self.posts = 0
        #: Trace batches held by `stall` (received, not answered) so far.
        self.stalled = 0
        self._open = threading.Event()
        self._open.set()
        spans, lock = self.spans, threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/metrics":
                    self._metrics(body)
                    return
                if not outer._open.is_set():
                    with lock:
                        outer.stalled += 1
                    outer._open.wait()
                    return  # a collector that hung loses what it held (no answer; the connection closes)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with lock:
                    outer.posts += 1
                    for rs in request.resource_spans:
                        service = next(
                            (_value(a.value) for a in rs.resource.attributes if a.key == "service.name"), ""
                        )
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                spans.append(ReceivedSpan(
                                    name=s.name,
                                    trace_id=s.trace_id.hex(),
                                    span_id=s.span_id.hex(),
                                    parent_id=s.parent_span_id.hex(),
                                    kind=_KINDS.get(s.kind, str(s.kind)),
                                    attributes={a.key: _value(a.value) for a in s.attributes},
                                    error=s.status.code == 2,
                                    service=service,
                                ))
                self._ok()

            def _metrics(self, body: bytes) -> None:
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                with lock:
                    for rm in request.resource_metrics:
                        for sm in rm.scope_metrics:
                            for m in sm.metrics:
                                data = getattr(m, m.WhichOneof("data"))
                                outer.metrics[m.name] = [
                                    (p.as_int if p.WhichOneof("value") == "as_int" else p.as_double,
                                     {a.key: _value(a.value) for a in p.attributes})
                                    for p in data.data_points
                                ]
                self._ok()

            def _ok(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stall(self) -> None:
        """Hang on every trace batch from now on, until `resume`; those batches are then lost."""
        self._open.clear()

    def resume(self) -> None:
        """Answer again (the batches held meanwhile are not kept)."""
        self._open.set()

    def close(self) -> None:
        self._open.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans once at least ``count`` arrived; fails loudly after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.spans) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} spans, received {len(self.spans)}: "
                                     f"{[s.name for s in self.spans]}")
            time.sleep(0.02)
        return list(self.spans)

    def wait_for_metric(self, name: str, timeout: float = 15.0) -> list[tuple[float, dict[str, Any]]]:
        """The points of metric ``name`` once some arrived; fails loudly after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.metrics.get(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"metric {name} never arrived; received {sorted(self.metrics)}")
            time.sleep(0.05)
        return self.metrics[name]

    def roots(self) -> list[ReceivedSpan]:
        """The call spans, each with its children attached."""
        by_id = {s.span_id: s for s in self.spans}
        for s in self.spans:
            s.children = []
        roots = []
        for s in self.spans:
            parent = by_id.get(s.parent_id)
            if parent is None:
                roots.append(s)
            else:
                parent.children.append(s)
        return roots
