"""The span export process: builds spans from call traces and exports them with the SDK's OTLP exporter.

Started by `axtui.telemetry._process.SpanExportProcess` as
``python -m axtui.telemetry._child``, one per gateway process. It reads
frames (`axtui.telemetry._wire`) from stdin: the configuration, the
gateway's remembered secrets, and batches of traces. For each batch it
builds the OpenTelemetry spans (GenAI semantic conventions plus ``ax.*``),
scrubs error messages and opted-in content of secrets, and hands them to
the SDK's ``OTLPSpanExporter`` at most 512 at a time. On stdout it reports
its cumulative exported and failed counts after each batch, and a log line
only when the collector goes away and when it comes back (where the SDK
would log every lost batch).

At the end of stdin (the gateway stopped, or died) it exports what it has
read and exits. It ignores SIGINT and SIGTERM, so a Ctrl-C or a service
stop reaches the gateway, which drains it, rather than cutting the export.
Once it has loaded the SDK (at normal priority, so it is ready soon
even on busy cores), it runs only on a core nothing else wants
(``SCHED_IDLE``): waking up, it
never preempts the gateway's event loop, and a core it runs on counts as
idle, so a gateway thread, an upstream or anything else that wakes takes
it at once rather than queue behind another task on the other core. As
lower-priority batch work (``SCHED_BATCH``, `NICENESS`, the fallback where
``SCHED_IDLE`` is refused) it was not preempted, only outweighed, and a
traced gateway's p50 grew by 0.2-0.9 ms on a busy 2-core machine
(bench_telemetry.py). On full cores the gateway's calls go first and the
export catches up in idle time (if the cores stay full, traces pile up and
are dropped and counted).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["SpanBuilder", "gen_ai_provider", "main"]

#: ``gen_ai.provider.name`` for each provider kind (OpenTelemetry GenAI semantic conventions).
_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
}

_OPERATIONS = {"chat": "chat", "embeddings": "embeddings", "responses": "chat"}

#: Spans per export request, at most.
BATCH = 512
#: How much lower this process's CPU priority is than its gateway process's, where SCHED_IDLE is refused.
NICENESS = 10


def gen_ai_provider(kind: str) -> str:
    """The semantic conventions' provider name for a provider kind (``ax.<kind>`` for others)."""
    return _PROVIDER_NAMES.get(kind, f"ax.{kind}")


class SpanBuilder:
    """Turns the tuples of `axtui.telemetry._wire.TRACE` into the SDK's finished spans.

    Args:
        service_name: ``service.name`` of the resource.
        kinds: provider name → kind, for ``gen_ai.provider.name``.
        capture_content: add prompts and answers (scrubbed) to the call spans.
    """

    def __init__(self, service_name: str, kinds: Mapping[str, str], capture_content: bool) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        from axtui import __version__
        from axtui.money import NANOS_PER_USD
        from axtui.redaction import scrub
        from axtui.telemetry._wire import RECORD_FIELDS, REQUEST_FIELDS

        self._span_type, self._context, self._status = ReadableSpan, SpanContext, Status
        self._kind, self._code, self._scrub = SpanKind, StatusCode, scrub
        #: Sampled, and the trace id is random (W3C Trace Context level 2).
        self._flags = TraceFlags(0x03)
        self._ok = Status(StatusCode.UNSET)
        self._usd = NANOS_PER_USD
        self._request_fields, self._record_fields = REQUEST_FIELDS, RECORD_FIELDS
        self.kinds = dict(kinds)
        self.capture_content = capture_content
        made = Resource.create({"service.name": service_name, "service.version": __version__})
        self.resource = _resource_hashed_once(Resource)(made.attributes, made.schema_url)
        self.scope = InstrumentationScope("axtui", __version__)

    def spans(self, trace: tuple[Any, ...]) -> list[Any]:
        """The call's span and its children."""
        trace_id, parent_id, span_id, start_ns, end_ns, req, rec, finish_reason, content, stages, attempts = trace
        request = dict(zip(self._request_fields, req, strict=True))
        record = dict(zip(self._record_fields, rec, strict=True))
        kind, ctx, flags = self._kind, self._context, self._flags
        operation = _OPERATIONS.get(record["endpoint"], record["endpoint"])
        root = ctx(trace_id, span_id, is_remote=False, trace_flags=flags)
        parent = ctx(trace_id, parent_id, is_remote=True, trace_flags=flags) if parent_id else None
        attrs = _request_attributes(request, operation)
        attrs.update(self._record_attributes(record))
        if finish_reason is not None:
            attrs["gen_ai.response.finish_reasons"] = [finish_reason]
        if content is not None:
            messages, answer = content
            attrs["gen_ai.input.messages"] = self._input_messages(messages)
            if answer is not None:
                attrs["gen_ai.output.messages"] = self._output_messages(answer, finish_reason or "stop")
        status = self._ok
        if record["status"] != "ok":
            status = self._status(self._code.ERROR, self._scrub(record["error_message"] or record["status"])[:300])
            attrs["error.type"] = record["error_class"] or record["status"]
        spans = [self._span(f"{operation} {request['model']}", root, parent, kind.SERVER, attrs, status,
                            start_ns, end_ns)]
        for name, child_id, start, end, error in stages:
            spans.append(self._span(name, ctx(trace_id, child_id, False, flags), root, kind.INTERNAL,
                                    *self._outcome({}, error), start, end))
        for provider, upstream_model, deployment, number, child_id, start, end, error in attempts:
            attempt_attrs: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": gen_ai_provider(self.kinds.get(provider, provider)),
                "gen_ai.request.model": upstream_model,
                "ax.provider": provider,
                "ax.deployment": deployment,
                "ax.attempt": number,
            }
            spans.append(self._span(f"{operation} {upstream_model}", ctx(trace_id, child_id, False, flags), root,
                                    kind.CLIENT, *self._outcome(attempt_attrs, error), start, end))
        return spans

    def _span(self, name: str, context: Any, parent: Any, kind: Any, attributes: dict[str, Any], status: Any,
              start: int, end: int) -> Any:
        return self._span_type(name, context=context, parent=parent, resource=self.resource, attributes=attributes,
                               kind=kind, status=status, start_time=start, end_time=end,
                               instrumentation_scope=self.scope)

    def _outcome(self, attrs: dict[str, Any], error: tuple[str, str] | None) -> tuple[dict[str, Any], Any]:
        if error is None:
            return attrs, self._ok
        attrs["error.type"] = error[0]
        return attrs, self._status(self._code.ERROR, self._scrub(error[1])[:300])

    def _record_attributes(self, record: dict[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "ax.request_id": record["request_id"],
            "ax.user": record["user"],
            "ax.cache": record["cache"],
            "ax.status": record["status"],
            "ax.attempts": record["attempts"],
            "gen_ai.response.id": record["request_id"],
            "gen_ai.usage.input_tokens": record["input_tokens"],
            "gen_ai.usage.output_tokens": record["output_tokens"],
        }
        optional = {
            "ax.key": record["key"],
            "ax.route": record["route"],
            "ax.rule": record["rule"],
            "ax.variant": record["variant"],
            "ax.provider": record["provider"],
            "ax.deployment": record["deployment"],
            "ax.cache.similarity": record["similarity"],
            "ax.ttft_ms": record["ttft_ms"],
            "gen_ai.response.model": record["model"],
            "http.response.status_code": record["http_status"],
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        provider = record["provider"]
        if provider:
            attrs["gen_ai.provider.name"] = gen_ai_provider(self.kinds.get(provider, provider))
        cost = record["cost_nanos"]
        if cost is not None:
            attrs["ax.cost_nanos"] = cost
            attrs["ax.cost_usd"] = cost / self._usd
        if record["cached_input_tokens"]:
            attrs["gen_ai.usage.cache_read.input_tokens"] = record["cached_input_tokens"]
        if record["cache_write_tokens"]:
            attrs["gen_ai.usage.cache_creation.input_tokens"] = record["cache_write_tokens"]
        if record["reasoning_tokens"]:
            attrs["ax.usage.reasoning_tokens"] = record["reasoning_tokens"]
        if record["tags"]:
            attrs["ax.tags"] = list(record["tags"])
        return attrs

    def _input_messages(self, messages: tuple[tuple[str, str], ...]) -> str:
        scrub = self._scrub
        parts = [{"role": role, "parts": [{"type": "text", "content": scrub(text)}]} for role, text in messages]
        return json.dumps(parts, ensure_ascii=False)

    def _output_messages(self, answer: tuple[str, tuple[tuple[Any, Any, str], ...]], finish_reason: str) -> str:
        scrub = self._scrub
        text, calls = answer
        parts: list[dict[str, Any]] = []
        if text:
            parts.append({"type": "text", "content": scrub(text)})
        for call_id, name, arguments in calls:
            parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": scrub(arguments)})
        return json.dumps([{"role": "assistant", "parts": parts, "finish_reason": finish_reason}], ensure_ascii=False)


def _resource_hashed_once(resource: type[Any]) -> type[Any]:
    """``Resource`` with its hash worked out once: the encoder groups spans by resource, hashing it for every
    span, and ``Resource`` serialises its attributes to JSON for each hash (about a tenth of this process's CPU)."""

    class Hashed(resource):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._hash = super().__hash__()

        def __hash__(self) -> int:
            return self._hash  # type: ignore[no-any-return]

        def __eq__(self, other: object) -> bool:
            return other is self or bool(super().__eq__(other))

    return Hashed


def _request_attributes(request: dict[str, Any], operation: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": request["model"]}
    optional = {
        "gen_ai.request.temperature": request["temperature"],
        "gen_ai.request.top_p": request["top_p"],
        "gen_ai.request.max_tokens": request["output_limit"],
        "gen_ai.request.seed": request["seed"],
        "gen_ai.request.presence_penalty": request["presence_penalty"],
        "gen_ai.request.frequency_penalty": request["frequency_penalty"],
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    stop = request["stop"]
    if stop:
        attrs["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request["stream"]:
        attrs["ax.stream"] = True
    return attrs


class _Exporter:
    """Exports spans in requests of at most `BATCH`, counting, and saying when the collector goes and comes back."""

    def __init__(self, exporter: Any, report: Any) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self._exporter = exporter
        self._success = SpanExportResult.SUCCESS
        self._report = report
        self._healthy = True
        self.exported = 0
        self.failed = 0

    def export(self, spans: list[Any]) -> None:
        for i in range(0, len(spans), BATCH):
            chunk = spans[i:i + BATCH]
            try:
                ok = self._exporter.export(chunk) is self._success
            except Exception:  # the exporter's own failure is a failed export, never the process's end
                ok = False
            if ok:
                self.exported += len(chunk)
                if not self._healthy:
                    self._healthy = True
                    self._report(("log", "telemetry: the OTLP collector accepts spans again"))
            else:
                self.failed += len(chunk)
                if self._healthy:
                    self._healthy = False
                    self._report(("log", f"telemetry: the OTLP collector did not accept {len(chunk)} spans; "
                                         "spans are dropped and counted "
                                         "(ax_telemetry_spans_total{outcome=\"failed\"}) until it does"))


def _span_count(trace: Any) -> int:
    try:
        return 1 + len(trace[9]) + len(trace[10])
    except Exception:
        return 1


def _background() -> None:
    """Run only on a core nothing else wants (``SCHED_IDLE``); failing that, as lower-priority batch work."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(AttributeError, OSError):
        os.nice(NICENESS)


def main() -> int:
    """Serve one gateway process until its end of the pipe closes."""
    from axtui.telemetry._wire import read_frame, write_frame

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Reports go to the original stdout; anything else printed goes to stderr, not into the pipe.
    out = os.dup(1)
    os.dup2(2, 1)
    # The SDK logs every failed export; this process reports failures itself, once per outage.
    logging.getLogger().addHandler(logging.NullHandler())
    source = sys.stdin.buffer

    def report(message: tuple[Any, ...]) -> None:
        write_frame(out, message)

    first = read_frame(source)
    if first is None or first[0] != "config":
        return 2
    config = first[1]
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from axtui.redaction import remember

        builder = SpanBuilder(config["service_name"], config["kinds"], config["capture_content"])
        # OTEL_EXPORTER_OTLP_HEADERS (a vendor's API key) is read by the exporter itself, from the environment.
        sdk = OTLPSpanExporter(endpoint=config["endpoint"], timeout=config["timeout_s"])
    except ImportError as exc:
        report(("error", f"it could not load the OpenTelemetry SDK ({exc}); install it with "
                         "`pip install 'axtui[otel]'`"))
        return 1
    except Exception as exc:
        report(("error", f"the OTLP exporter could not be set up ({exc}); check [telemetry] and the "
                         "OTEL_EXPORTER_OTLP_* variables"))
        return 1
    exporter = _Exporter(sdk, report)
    # Loading the SDK went at normal priority: on busy cores an idle-only process could take minutes to
    # get ready, and every span of that time would wait for it. From here on, only idle time.
    _background()
    report(("ready",))
    try:
        while (message := read_frame(source)) is not None:
            kind, payload = message
            if kind == "secrets":
                for secret in payload:
                    remember(secret)
                continue
            spans: list[Any] = []
            for trace in payload:
                try:
                    spans.extend(builder.spans(trace))
                except Exception:  # a malformed trace is lost and counted, never the process
                    exporter.failed += _span_count(trace)
            exporter.export(spans)
            report(("counts", exporter.exported, exporter.failed))
    finally:
        sdk.shutdown()  # type: ignore[no-untyped-call]
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the gateway process went away while this one was reporting
        sys.exit(0)
