"""OpenTelemetry traces of every call, off by default.

With ``[telemetry] otlp_endpoint`` set (or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
variables), each call becomes a span following the OpenTelemetry GenAI
semantic conventions, with child spans for the cache lookup, the routing
decision and each upstream attempt, exported in batches over OTLP/HTTP from
a background thread. Off, the engine talks to `NO_TELEMETRY`, which does
nothing; the OpenTelemetry SDK is not even imported.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from axtui.errors import ConfigError
from axtui.telemetry._api import NO_TELEMETRY, NO_TRACE, AttemptSpan, CallTrace, Telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from axtui.config import Settings

__all__ = [
    "NO_TELEMETRY",
    "NO_TRACE",
    "AttemptSpan",
    "CallTrace",
    "Telemetry",
    "build_telemetry",
    "traces_endpoint",
]

log = logging.getLogger("axtui.telemetry")


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans go: the config's endpoint, else the standard variables; None when tracing is off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    base = settings.telemetry.otlp_endpoint
    if base is None:
        full = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if full:
            return full
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None
    if base is None:
        return None
    return base.rstrip("/") + "/v1/traces"


def build_telemetry(settings: Settings, exporter: SpanExporter | None = None) -> Telemetry:
    """The telemetry the settings ask for: `NO_TELEMETRY` unless an endpoint (or ``exporter``) is given."""
    endpoint = traces_endpoint(settings)
    if endpoint is None and exporter is None:
        return NO_TELEMETRY
    cfg = settings.telemetry
    try:
        from axtui.telemetry._otel import OtelTelemetry
    except ImportError as exc:
        raise ConfigError(
            f"[telemetry] exports traces, but the OpenTelemetry SDK is not installed ({exc}); "
            "install it with `pip install 'axtui[otel]'`, or remove otlp_endpoint (and unset "
            "OTEL_EXPORTER_OTLP_ENDPOINT)"
        ) from None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # OTEL_EXPORTER_OTLP_HEADERS (a vendor's API key) is read by the exporter itself, from the environment.
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=cfg.export_timeout_s)
    service = cfg.service_name or os.environ.get("OTEL_SERVICE_NAME", "").strip() or "ax"
    kinds = {p.name: p.kind for p in settings.providers}
    log.info("telemetry: exporting traces to %s as service %r", endpoint or "a custom exporter", service)
    return OtelTelemetry(
        exporter,
        service_name=service,
        kinds=kinds,
        capture_content=cfg.capture_content,
        max_queue=cfg.max_queue,
    )
