"""The Messages API's event stream, for ``/v1/messages`` with ``stream: true``.

``message_start`` goes with the headers; then each content block as
``content_block_start``, its deltas (``text_delta``, ``thinking_delta``
and ``signature_delta``, ``input_json_delta``) and ``content_block_stop``;
then ``message_delta`` (the stop reason, with the stop sequence that
ended the answer when the provider said which, and the usage) and
``message_stop``. A failure after the headers is an ``error`` event.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_json

from axtui.server.anthropic_wire import stop_reason, usage_body
from axtui.types import Chunk, Usage

__all__ = ["MessageStreamEncoder", "error_event"]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + to_json(data) + b"\n\n"


class MessageStreamEncoder:
    """Turns ax `Chunk` objects into the Messages API's event stream.

    Text opens a ``text`` block; a tool call (its first delta has an id)
    opens a ``tool_use`` block whose arguments follow as
    ``input_json_delta``; `finish` closes the open block and sends
    ``message_delta`` (stop reason, stop sequence and usage) and ``message_stop``.
    """

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.stop_sequence: str | None = None
        self._index = -1
        self._open: str | None = None

    def start(self) -> bytes:
        """``message_start``: sent with the headers."""
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _begin(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = block["type"]
        return out + _event("content_block_start", {"type": "content_block_start", "index": self._index,
                                                    "content_block": block})

    def encode(self, chunk: Chunk) -> bytes:
        """The events for one chunk (empty for usage and finish chunks, kept for the end)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
            self.stop_sequence = chunk.stop_sequence
        out = b""
        if chunk.reasoning:
            if self._open != "thinking":
                out += self._begin({"type": "thinking", "thinking": "", "signature": ""})
            out += _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                  "delta": {"type": "thinking_delta", "thinking": chunk.reasoning}})
        if chunk.reasoning_signature is not None:
            if self._open != "thinking":
                out += self._begin({"type": "thinking", "thinking": "", "signature": ""})
            out += _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                  "delta": {"type": "signature_delta",
                                                            "signature": chunk.reasoning_signature}})
            out += self._close()
        if chunk.reasoning_redacted is not None:
            out += self._begin({"type": "redacted_thinking", "data": chunk.reasoning_redacted})
            out += self._close()
        if chunk.delta:
            if self._open != "text":
                out += self._begin({"type": "text", "text": ""})
            out += _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                  "delta": {"type": "text_delta", "text": chunk.delta}})
        for call in chunk.tool_calls or ():
            fn = call.get("function") or {}
            if call.get("id") or self._open != "tool_use":
                out += self._begin({"type": "tool_use", "id": str(call.get("id", "")),
                                    "name": str(fn.get("name", "")), "input": {}})
            arguments = fn.get("arguments")
            if arguments:
                text = arguments if isinstance(arguments, str) else json.dumps(arguments)
                out += _event("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                      "delta": {"type": "input_json_delta", "partial_json": text}})
        return out

    def finish(self) -> bytes:
        """Close the open block; ``message_delta`` with stop reason and usage; ``message_stop``."""
        out = self._close()
        delta = {"stop_reason": stop_reason(self.finish_reason, self.stop_sequence),
                 "stop_sequence": self.stop_sequence}
        out += _event("message_delta", {"type": "message_delta", "delta": delta,
                                        "usage": usage_body(self.usage or Usage())})
        return out + _event("message_stop", {"type": "message_stop"})


def error_event(body: dict[str, Any]) -> bytes:
    """An ``error`` event for a failure after the stream started."""
    return _event("error", body)
