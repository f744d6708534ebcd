"""OpenTelemetry traces of every call, off by default.

With ``[telemetry] otlp_endpoint`` set (or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
variables), each call becomes a span following the OpenTelemetry GenAI
semantic conventions, with child spans for the cache lookup, the routing
decision and each upstream attempt. A call's path only takes ids and
timestamps; the spans are built, encoded and exported over OTLP/HTTP with
the SDK's exporter by a child process of each gateway process
(`axtui.telemetry._process`), so that work never holds the interpreter the event
loop needs. Off, the engine talks to `NO_TELEMETRY`, which does nothing; the
OpenTelemetry SDK is not even imported (with tracing on, only the child
imports it).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import TYPE_CHECKING

from axtui.errors import ConfigError
from axtui.telemetry._api import NO_TELEMETRY, NO_TRACE, AttemptSpan, CallTrace, Telemetry

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from axtui.config import Settings
    from axtui.telemetry._metrics import MetricsBridge

__all__ = [
    "NO_TELEMETRY",
    "NO_TRACE",
    "AttemptSpan",
    "CallTrace",
    "Telemetry",
    "build_telemetry",
    "export_metrics",
    "otlp_endpoint",
    "traces_endpoint",
]

log = logging.getLogger("axtui.telemetry")


def otlp_endpoint(settings: Settings, signal: str) -> str | None:
    """Where ``signal`` (``traces`` or ``metrics``) goes: the config's endpoint, else the standard variables.

    None when nothing is configured or ``OTEL_SDK_DISABLED=true``.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    base = settings.telemetry.otlp_endpoint
    if base is None:
        full = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        if full:
            return full
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None
    if base is None:
        return None
    return f"{base.rstrip('/')}/v1/{signal}"


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans go; None when tracing is off."""
    return otlp_endpoint(settings, "traces")


def _service_name(settings: Settings) -> str:
    return settings.telemetry.service_name or os.environ.get("OTEL_SERVICE_NAME", "").strip() or "ax"


def _missing_sdk(exc: ImportError) -> ConfigError:
    return ConfigError(
        f"[telemetry] exports over OTLP, but the OpenTelemetry SDK is not installed ({exc}); "
        "install it with `pip install 'axtui[otel]'`, or remove otlp_endpoint (and unset "
        "OTEL_EXPORTER_OTLP_ENDPOINT)"
    )


def build_telemetry(settings: Settings) -> Telemetry:
    """The telemetry the settings ask for: `NO_TELEMETRY` unless an endpoint is set.

    With one, this starts the span export process (checking first, without
    importing it, that the OpenTelemetry SDK and its OTLP exporter are there).
    """
    endpoint = traces_endpoint(settings)
    if endpoint is None:
        return NO_TELEMETRY
    try:
        found = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http.trace_exporter") is not None
    except ImportError as exc:
        raise _missing_sdk(exc) from None
    if not found or importlib.util.find_spec("opentelemetry.sdk") is None:
        raise _missing_sdk(ImportError("no module named opentelemetry.exporter.otlp.proto.http"))
    from axtui.telemetry._otel import OtelTelemetry

    cfg = settings.telemetry
    service = _service_name(settings)
    log.info("telemetry: exporting traces to %s as service %r", endpoint, service)
    return OtelTelemetry(
        endpoint,
        service_name=service,
        kinds={p.name: p.kind for p in settings.providers},
        capture_content=cfg.capture_content,
        max_queue=cfg.max_queue,
        timeout_s=cfg.export_timeout_s,
    )


def export_metrics(registry: CollectorRegistry, settings: Settings) -> MetricsBridge | None:
    """Push ``registry``'s figures over OTLP when ``[telemetry] export_metrics`` is on and an endpoint is set."""
    if not settings.telemetry.export_metrics:
        return None
    endpoint = otlp_endpoint(settings, "metrics")
    if endpoint is None:
        return None
    try:
        from axtui.telemetry._metrics import MetricsBridge
    except ImportError as exc:
        raise _missing_sdk(exc) from None
    log.info("telemetry: exporting metrics to %s every %gs", endpoint, settings.telemetry.metrics_interval_s)
    return MetricsBridge(registry, endpoint=endpoint, service_name=_service_name(settings),
                         interval_s=settings.telemetry.metrics_interval_s,
                         timeout_s=settings.telemetry.export_timeout_s)
