"""What the engine calls to trace a call; the do-nothing versions are used when tracing is off.

Tracing off must cost nothing measurable, so the engine always talks to a
`Telemetry` and a `CallTrace`: these base classes do nothing and return
shared objects, and `axtui.telemetry._otel` overrides them when an OTLP
endpoint is configured.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axtui.types import CallRecord, ChatRequest, ChatResponse, Deployment

__all__ = ["NO_TELEMETRY", "NO_TRACE", "AttemptSpan", "CallTrace", "Telemetry"]


class AttemptSpan:
    """One try of one deployment; `end` it once with how it went."""

    def end(self, error: BaseException | None = None) -> None:
        """The attempt finished: successfully when ``error`` is None."""


_NO_ATTEMPT = AttemptSpan()
#: A shared do-nothing context (a generator-based one would cost a microsecond a stage).
_NO_STAGE = contextlib.nullcontext()


class CallTrace:
    """The trace of one call: its stages and upstream attempts, then `finish`."""

    def stage(self, name: str) -> AbstractContextManager[None]:
        """A child span around one step of the pipeline (``cache lookup``, ``route``)."""
        return _NO_STAGE

    def attempt(self, deployment: Deployment, number: int) -> AttemptSpan:
        """A child span for try ``number`` (1-based) of ``deployment``; upstream requests carry its context."""
        return _NO_ATTEMPT

    def finish(self, record: CallRecord, response: ChatResponse | None = None) -> None:
        """The call ended as ``record`` says; ``response`` is the answer (for opted-in content)."""


NO_TRACE = CallTrace()


class Telemetry:
    """Traces calls; this base class is tracing switched off."""

    #: True when spans are exported somewhere.
    enabled = False

    def begin(self, request: ChatRequest, record: CallRecord, traceparent: str | None = None) -> CallTrace:
        """Start the trace of a call (continuing the caller's ``traceparent`` when given)."""
        return NO_TRACE

    def stats(self) -> dict[str, int]:
        """Spans exported, dropped (queue full) and failed (the collector refused or was unreachable)."""
        return {"exported": 0, "dropped": 0, "failed": 0}

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (waiting at most ``timeout_s``) and stop."""


NO_TELEMETRY = Telemetry()
