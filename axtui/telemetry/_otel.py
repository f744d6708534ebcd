"""Traces of calls, taken on the call's path and handed to the span export process.

Each call is one SERVER span named ``{operation} {requested model}`` with
the GenAI semantic conventions' attributes and ax's own (``ax.*``); its
children are the cache lookup, the routing decision and one CLIENT span per
upstream attempt (retries and fallbacks each get one). The attempt's
context goes upstream as ``traceparent``.

On a call's path only ids and timestamps are taken, and at its end one
tuple of primitives (`axtui.telemetry._wire.TRACE`) is queued: a few
microseconds. Building the spans, scrubbing opted-in content of secrets,
the protobuf encoding and the export all happen in the span export process
(`axtui.telemetry._child`), so they never compete with the event loop for
this process's interpreter. This module does not import the SDK.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from operator import attrgetter
from types import TracebackType
from typing import Any

from axtui.telemetry._api import NO_TRACE, AttemptSpan, CallTrace, Telemetry
from axtui.telemetry._process import SpanExportProcess
from axtui.telemetry._wire import RECORD_FIELDS, REQUEST_FIELDS
from axtui.tracecontext import set_outbound
from axtui.types import CallRecord, ChatRequest, ChatResponse, Deployment

__all__ = ["OtelTelemetry"]

_getrandbits = random.getrandbits
_now = time.time_ns
_request_fields = attrgetter(*REQUEST_FIELDS)
_record_fields = attrgetter(*RECORD_FIELDS)


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


class _Stage(AbstractContextManager[None]):
    """Times one step; a class rather than a generator, which costs twice as much on the call's path."""

    __slots__ = ("name", "stages", "start")

    def __init__(self, stages: list[tuple[str, int, int, int, tuple[str, str] | None]], name: str) -> None:
        self.stages = stages
        self.name = name
        self.start = 0

    def __enter__(self) -> None:
        self.start = _now()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stages.append((self.name, _span_id(), self.start, _now(), None if exc is None else _error(exc)))


class _Trace(CallTrace):
    """A call's ids and timings, taken on the call's path; its spans are made by the export process."""

    __slots__ = ("attempts", "owner", "parent_id", "request", "span_id", "stages", "start_ns", "trace_id")

    def __init__(self, owner: OtelTelemetry, request: ChatRequest, parent: tuple[int, int] | None) -> None:
        self.owner = owner
        self.request = request
        if parent is None:
            self.trace_id, self.parent_id = _getrandbits(128) or 1, 0
        else:
            self.trace_id, self.parent_id = parent
        self.span_id = _span_id()
        self.start_ns = _now()
        self.stages: list[tuple[str, int, int, int, tuple[str, str] | None]] = []
        self.attempts: list[_Attempt] = []

    def stage(self, name: str) -> AbstractContextManager[None]:
        return _Stage(self.stages, name)

    def attempt(self, deployment: Deployment, number: int) -> AttemptSpan:
        attempt = _Attempt(self.trace_id, deployment, number)
        self.attempts.append(attempt)
        return attempt

    def finish(self, record: CallRecord, response: ChatResponse | None = None) -> None:
        end = _now()
        request, owner = self.request, self.owner
        content = _content(request, response) if owner.capture_content else None
        attempts = [(a.deployment.provider, a.deployment.upstream_model, a.deployment.id, a.number, a.span_id,
                     a.start_ns, a.end_ns or end, a.error) for a in self.attempts]
        owner.exporter.submit((self.trace_id, self.parent_id, self.span_id, self.start_ns, end,
                               _request_fields(request), _record_fields(record),
                               None if response is None else response.finish_reason or "stop",
                               content, self.stages, attempts))


def _content(request: ChatRequest, response: ChatResponse | None) -> tuple[Any, ...]:
    """The prompt and answer as sent to the export process, which scrubs them."""
    messages = tuple((m.role, m.text()) for m in request.messages)
    if response is None:
        return messages, None
    calls = []
    for call in response.tool_calls or []:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        calls.append((call.get("id"), fn.get("name"), str(fn.get("arguments", ""))))
    return messages, (response.content or "", tuple(calls))


class OtelTelemetry(Telemetry):
    """Tracing on: each call's trace goes to a span export process that sends it over OTLP/HTTP.

    Args:
        endpoint: the collector's traces URL (``…/v1/traces``).
        service_name: ``service.name`` of the resource.
        kinds: provider name → kind, for ``gen_ai.provider.name``.
        capture_content: add prompts and answers (scrubbed) to the call spans.
        max_queue: calls' traces waiting in this process at most; past it they are dropped and counted.
        timeout_s: the exporter's timeout per request.
        delay_s: how long traces wait to be batched.
    """

    enabled = True

    def __init__(
        self,
        endpoint: str,
        *,
        service_name: str = "ax",
        kinds: Mapping[str, str] | None = None,
        capture_content: bool = False,
        max_queue: int = 8192,
        timeout_s: float = 5.0,
        delay_s: float = 0.5,
    ) -> None:
        self.capture_content = capture_content
        config = {"endpoint": endpoint, "service_name": service_name, "kinds": dict(kinds or {}),
                  "capture_content": capture_content, "timeout_s": float(timeout_s)}
        self.exporter = SpanExportProcess(config, max_queue=max_queue, delay_s=delay_s)

    def begin(self, request: ChatRequest, record: CallRecord, traceparent: str | None = None) -> CallTrace:
        parent = None
        if traceparent:
            # Validated by the caller (`axtui.tracecontext.valid_traceparent`): 00-trace-span-flags.
            if not int(traceparent[53:55], 16) & 1:
                return NO_TRACE  # the caller decided not to sample this trace
            parent = (int(traceparent[3:35], 16), int(traceparent[36:52], 16))
        return _Trace(self, request, parent)

    def stats(self) -> dict[str, int]:
        return self.exporter.stats()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.exporter.shutdown(timeout_s)
