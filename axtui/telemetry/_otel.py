"""Traces of calls as OpenTelemetry spans, exported over OTLP/HTTP.

Each call is one SERVER span named ``{operation} {requested model}`` with
the GenAI semantic conventions' attributes and ax's own (``ax.*``); its
children are the cache lookup, the routing decision and one CLIENT span per
upstream attempt (retries and fallbacks each get one). The attempt's
context goes upstream as ``traceparent``. Content (prompt and answer) is
added only when ``capture_content`` is on, scrubbed of secrets.

On a call's path only ids and timestamps are taken (a few microseconds);
the spans themselves are built and encoded by `SpanExportThread`.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from axtui import __version__
from axtui.money import NANOS_PER_USD
from axtui.redaction import scrub
from axtui.telemetry._api import NO_TRACE, AttemptSpan, CallTrace, Telemetry
from axtui.telemetry._processor import SpanExportThread
from axtui.tracecontext import set_outbound
from axtui.types import CallRecord, ChatRequest, ChatResponse, Deployment

__all__ = ["OtelTelemetry", "gen_ai_provider"]

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

#: Sampled, and the trace id is random (W3C Trace Context level 2).
_FLAGS = TraceFlags(0x03)
_OK = Status(StatusCode.UNSET)
_getrandbits = random.getrandbits
_now = time.time_ns


def gen_ai_provider(kind: str) -> str:
    """The semantic conventions' provider name for a provider kind (``ax.<kind>`` for others)."""
    return _PROVIDER_NAMES.get(kind, f"ax.{kind}")


def _span_id() -> int:
    return _getrandbits(64) or 1


def _error(exc: BaseException) -> tuple[str, str]:
    return getattr(exc, "kind", None) or type(exc).__name__, str(exc)


class _Attempt(AttemptSpan):
    __slots__ = ("deployment", "end_ns", "error", "number", "span_id", "start_ns")

    def __init__(self, trace_id: int, deployment: Deployment, number: int) -> None:
        self.deployment = deployment
        self.number = number
        self.span_id = _span_id()
        self.start_ns = _now()
        self.end_ns = 0
        self.error: tuple[str, str] | None = None
        set_outbound({"traceparent": f"00-{trace_id:032x}-{self.span_id:016x}-03"})

    def end(self, error: BaseException | None = None) -> None:
        set_outbound(None)
        self.end_ns = _now()
        if error is not None:
            self.error = _error(error)


class _Trace(CallTrace):
    """A call's ids and timings, taken on the call's path; spans are made later, on the export thread."""

    def __init__(self, owner: OtelTelemetry, request: ChatRequest, record: CallRecord,
                 parent: tuple[int, int] | None) -> None:
        self.owner = owner
        self.request = request
        self.record = record
        self.response: ChatResponse | None = None
        if parent is None:
            self.trace_id, self.parent_id = _getrandbits(128) or 1, 0
        else:
            self.trace_id, self.parent_id = parent
        self.span_id = _span_id()
        self.start_ns = _now()
        self.end_ns = 0
        self.stages: list[tuple[str, int, int, int, tuple[str, str] | None]] = []
        self.attempts: list[_Attempt] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start, error = _now(), None
        try:
            yield
        except BaseException as exc:
            error = _error(exc)
            raise
        finally:
            self.stages.append((name, _span_id(), start, _now(), error))

    def attempt(self, deployment: Deployment, number: int) -> AttemptSpan:
        attempt = _Attempt(self.trace_id, deployment, number)
        self.attempts.append(attempt)
        return attempt

    def finish(self, record: CallRecord, response: ChatResponse | None = None) -> None:
        self.end_ns = _now()
        self.response = response
        self.owner.exporter.submit(self)

    # -- on the export thread -----------------------------------------------------------------

    def span_count(self) -> int:
        return 1 + len(self.stages) + len(self.attempts)

    def to_spans(self) -> list[ReadableSpan]:
        owner, record, request = self.owner, self.record, self.request
        operation = _OPERATIONS.get(record.endpoint, record.endpoint)
        root = SpanContext(self.trace_id, self.span_id, is_remote=False, trace_flags=_FLAGS)
        parent = SpanContext(self.trace_id, self.parent_id, is_remote=True, trace_flags=_FLAGS) if self.parent_id else None
        attrs = _request_attributes(request, operation)
        attrs.update(_record_attributes(record, owner.kinds))
        if self.response is not None:
            attrs["gen_ai.response.finish_reasons"] = [self.response.finish_reason or "stop"]
        if owner.capture_content:
            attrs["gen_ai.input.messages"] = _input_messages(request)
            if self.response is not None:
                attrs["gen_ai.output.messages"] = _output_messages(self.response)
        status = _OK
        if record.status != "ok":
            status = Status(StatusCode.ERROR, scrub(record.error_message or record.status)[:300])
            attrs["error.type"] = record.error_class or record.status
        spans = [owner.span(f"{operation} {request.model}", root, parent, SpanKind.SERVER, attrs, status,
                            self.start_ns, self.end_ns)]
        for name, span_id, start, end, error in self.stages:
            spans.append(owner.span(name, SpanContext(self.trace_id, span_id, False, _FLAGS), root,
                                    SpanKind.INTERNAL, *_outcome({}, error), start, end))
        for a in self.attempts:
            dep = a.deployment
            attempt_attrs: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": gen_ai_provider(owner.kinds.get(dep.provider, dep.provider)),
                "gen_ai.request.model": dep.upstream_model,
                "ax.provider": dep.provider,
                "ax.deployment": dep.id,
                "ax.attempt": a.number,
            }
            spans.append(owner.span(f"{operation} {dep.upstream_model}",
                                    SpanContext(self.trace_id, a.span_id, False, _FLAGS), root, SpanKind.CLIENT,
                                    *_outcome(attempt_attrs, a.error), a.start_ns, a.end_ns or self.end_ns))
        return spans


def _outcome(attrs: dict[str, Any], error: tuple[str, str] | None) -> tuple[dict[str, Any], Status]:
    if error is None:
        return attrs, _OK
    attrs["error.type"] = error[0]
    return attrs, Status(StatusCode.ERROR, scrub(error[1])[:300])


class OtelTelemetry(Telemetry):
    """Tracing on: each call's spans go to ``exporter`` (the SDK's OTLP/HTTP exporter in ax).

    Args:
        exporter: the span exporter.
        service_name: ``service.name`` of the resource.
        kinds: provider name → kind, for ``gen_ai.provider.name``.
        capture_content: add prompts and answers (scrubbed) to the call spans.
        max_queue: calls' traces waiting for export at most; past it they are dropped and counted.
        delay_s: how long spans wait to be batched.
    """

    enabled = True

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        service_name: str = "ax",
        kinds: Mapping[str, str] | None = None,
        capture_content: bool = False,
        max_queue: int = 8192,
        delay_s: float = 0.5,
    ) -> None:
        self.kinds = dict(kinds or {})
        self.capture_content = capture_content
        self.resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self.scope = InstrumentationScope("axtui", __version__)
        self.exporter = SpanExportThread(exporter, max_queue=max_queue, delay_s=delay_s)

    def begin(self, request: ChatRequest, record: CallRecord, traceparent: str | None = None) -> CallTrace:
        parent = None
        if traceparent:
            # Validated by the caller (`axtui.tracecontext.valid_traceparent`): 00-trace-span-flags.
            if not int(traceparent[53:55], 16) & 1:
                return NO_TRACE  # the caller decided not to sample this trace
            parent = (int(traceparent[3:35], 16), int(traceparent[36:52], 16))
        return _Trace(self, request, record, parent)

    def span(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
             attributes: dict[str, Any], status: Status, start: int, end: int) -> ReadableSpan:
        """One finished span of this service."""
        return ReadableSpan(name, context=context, parent=parent, resource=self.resource, attributes=attributes,
                            kind=kind, status=status, start_time=start, end_time=end,
                            instrumentation_scope=self.scope)

    def stats(self) -> dict[str, int]:
        return {"exported": self.exporter.exported, "dropped": self.exporter.dropped, "failed": self.exporter.failed}

    def shutdown(self, timeout_s: float = 2.0) -> None:
        self.exporter.shutdown(timeout_s)


def _request_attributes(request: ChatRequest, operation: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": request.model}
    optional = {
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.top_p": request.top_p,
        "gen_ai.request.max_tokens": request.output_limit,
        "gen_ai.request.seed": request.seed,
        "gen_ai.request.presence_penalty": request.presence_penalty,
        "gen_ai.request.frequency_penalty": request.frequency_penalty,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if request.stop:
        attrs["gen_ai.request.stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.stream:
        attrs["ax.stream"] = True
    return attrs


def _record_attributes(record: CallRecord, kinds: Mapping[str, str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "ax.request_id": record.request_id,
        "ax.user": record.user,
        "ax.cache": record.cache,
        "ax.status": record.status,
        "ax.attempts": record.attempts,
        "gen_ai.response.id": record.request_id,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
    }
    optional: dict[str, Any] = {
        "ax.key": record.key,
        "ax.route": record.route,
        "ax.rule": record.rule,
        "ax.variant": record.variant,
        "ax.provider": record.provider,
        "ax.deployment": record.deployment,
        "ax.cache.similarity": record.similarity,
        "ax.ttft_ms": record.ttft_ms,
        "gen_ai.response.model": record.model,
        "http.response.status_code": record.http_status,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if record.provider:
        attrs["gen_ai.provider.name"] = gen_ai_provider(kinds.get(record.provider, record.provider))
    if record.cost_nanos is not None:
        attrs["ax.cost_nanos"] = record.cost_nanos
        attrs["ax.cost_usd"] = record.cost_nanos / NANOS_PER_USD
    if record.cached_input_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = record.cached_input_tokens
    if record.cache_write_tokens:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = record.cache_write_tokens
    if record.reasoning_tokens:
        attrs["ax.usage.reasoning_tokens"] = record.reasoning_tokens
    if record.tags:
        attrs["ax.tags"] = list(record.tags)
    return attrs


def _input_messages(request: ChatRequest) -> str:
    messages = [{"role": m.role, "parts": [{"type": "text", "content": scrub(m.text())}]} for m in request.messages]
    return json.dumps(messages, ensure_ascii=False)


def _output_messages(response: ChatResponse) -> str:
    parts: list[dict[str, Any]] = []
    if response.content:
        parts.append({"type": "text", "content": scrub(response.content)})
    for call in response.tool_calls or []:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"),
                      "arguments": scrub(str(fn.get("arguments", "")))})
    message = {"role": "assistant", "parts": parts, "finish_reason": response.finish_reason or "stop"}
    return json.dumps([message], ensure_ascii=False)
