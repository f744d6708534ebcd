"""What the gateway process and its span export process say to each other.

Both ends are the same interpreter, so frames are `marshal` data (much
cheaper than pickling objects) behind a 4-byte little-endian length. The
gateway sends ``("config", dict)`` once, then ``("secrets", tuple)`` when
its remembered secrets change and ``("traces", list)`` batches; each trace
is a tuple of primitives in the order of `TRACE`. The export process
answers ``("ready",)`` (or ``("error", why)`` when it cannot start),
``("counts", exported, failed)`` (cumulative) and ``("log", message)``.
"""

from __future__ import annotations

import marshal
import os
import struct
from typing import IO, Any

__all__ = ["RECORD_FIELDS", "REQUEST_FIELDS", "TRACE", "plain", "read_frame", "write_frame"]

#: The `ChatRequest` fields a trace carries, in this order.
REQUEST_FIELDS = ("model", "temperature", "top_p", "output_limit", "seed", "presence_penalty",
                  "frequency_penalty", "stop", "stream")

#: The `CallRecord` fields a trace carries, in this order.
RECORD_FIELDS = ("endpoint", "request_id", "user", "cache", "status", "attempts", "input_tokens", "output_tokens",
                 "key", "route", "rule", "variant", "provider", "deployment", "similarity", "ttft_ms", "model",
                 "http_status", "cost_nanos", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
                 "tags", "error_message", "error_class")

#: One call's trace, field by field. ``request`` and ``record`` are tuples in the order above;
#: ``finish_reason`` is None without an answer; ``content`` is None unless content is captured, else
#: ``(((role, text), …), (answer text, ((tool call id, name, arguments), …)) or None)``; ``stages`` are
#: ``(name, span id, start, end, error)`` and ``attempts`` ``(provider, upstream model, deployment id,
#: number, span id, start, end, error)``, ``error`` being None or ``(type, message)``. Times are epoch ns.
TRACE = ("trace_id", "parent_id", "span_id", "start_ns", "end_ns", "request", "record", "finish_reason",
         "content", "stages", "attempts")

_HEADER = struct.Struct("<I")


def write_frame(fd: int, message: Any) -> None:
    """Write one frame to ``fd`` (blocking until all of it is written)."""
    try:
        payload = marshal.dumps(message)
    except ValueError:  # a value of a subclass (a str enum, a numpy float) marshal does not take
        payload = marshal.dumps(plain(message))
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame from ``stream``; None at its end."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return marshal.loads(payload)


def plain(value: Any) -> Any:
    """``value`` made of exact built-in types only, which marshal takes."""
    if value is None or type(value) in (str, int, float, bool, bytes):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
