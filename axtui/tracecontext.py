"""The W3C trace context of the upstream attempt in progress.

A traced call sets the ``traceparent`` of its current upstream attempt here
(`axtui.telemetry`); the providers' HTTP layer sends whatever is set with
the request, so the upstream's own spans join the caller's trace. A
context variable carries it because the attempt and the HTTP request run
in the same task, several calls at once, and no provider signature has to
know about tracing. Nothing is set when tracing is off.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

__all__ = ["outbound_headers", "set_outbound", "valid_traceparent"]

_outbound: ContextVar[dict[str, str] | None] = ContextVar("ax_outbound_trace", default=None)

#: version-traceid-parentid-flags; all-zero ids and version ff are invalid (W3C Trace Context §3.2).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def outbound_headers() -> dict[str, str] | None:
    """Headers that carry the current attempt's trace context upstream, or None."""
    return _outbound.get()


def set_outbound(headers: dict[str, str] | None) -> None:
    """Set (or with None clear) the trace headers for upstream requests in this context."""
    _outbound.set(headers)


def valid_traceparent(value: str | None) -> str | None:
    """``value`` when it is a well-formed ``traceparent`` header, else None.

    A malformed header is ignored (the call starts a new trace), as the
    W3C recommendation says, rather than refusing the call.
    """
    if not value or len(value) > 512:
        return None
    value = value.strip().lower()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    if version == "00" and rest:
        return None
    return value
