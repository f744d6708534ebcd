"""The Messages API's event stream, for ``/v1/messages`` with ``stream: true``.

The first chunk decides how the stream is made, and its events go first:

- the upstream's own events, when the chunks carry them (an Anthropic
  deployment was sent the client's body): passed on as they came, with
  ax's message id. Every content block arrives as Anthropic streamed it,
  and ``message_start`` reports the input tokens, cache reads and writes.
- a cached answer of such a deployment (the first chunk carries the whole
  message): the events that stream it (`message_events`).
- anything else is encoded from ax's chunks: ``message_start``, then each
  content block as ``content_block_start``, its deltas (``text_delta``,
  ``thinking_delta`` and ``signature_delta``, ``input_json_delta``) and
  ``content_block_stop``; then ``message_delta`` (the stop reason, with
  the stop sequence that ended the answer when the provider said which,
  and the usage) and ``message_stop``. Other providers count the prompt's
  tokens only at the end, so ``message_start`` says 0 rather than a guess,
  and ``message_delta`` carries the exact input and cache figures, which
  Anthropic's SDKs take over ``message_start``'s.

A failure after the headers is an ``error`` event.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic_core import to_json

from axtui.providers.anthropic_events import message_events
from axtui.server.anthropic_wire import stop_reason, usage_body
from axtui.types import Chunk, Usage

__all__ = ["MessageStreamEncoder", "error_event"]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + to_json(data) + b"\n\n"


class MessageStreamEncoder:
    """Turns ax `Chunk` objects into the Messages API's event stream (see the module docstring).

    An encoded stream: text opens a ``text`` block; a tool call (its first
    delta has an id) opens a ``tool_use`` block whose arguments follow as
    ``input_json_delta``; `finish` closes the open block and sends
    ``message_delta`` (stop reason, stop sequence and usage) and ``message_stop``.
    """

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.stop_sequence: str | None = None
        #: How the stream is made, decided by the first chunk (or `start`); "" before it.
        self.mode: Literal["", "native", "replay", "encoded"] = ""
        self._index = -1
        self._open: str | None = None

    def start(self) -> bytes:
        """An encoded stream's ``message_start`` (sent before the first chunk's events).

        The usage says no input tokens: the providers served this way report them at the end only.
        """
        self.mode = "encoded"
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

    def _native(self, event: dict[str, Any]) -> bytes:
        if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
            event = {**event, "message": {**event["message"], "id": self.message_id}}
        return _event(str(event.get("type")), event)

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
        """The events for one chunk (an encoded stream's are empty for usage and finish chunks, kept for the end)."""
        if not self.mode:
            if chunk.native_events is not None:
                self.mode = "native"
            elif chunk.native is not None and chunk.native.get("type") == "message":
                self.mode = "replay"
                return b"".join(self._native(e) for e in message_events({**chunk.native, "id": self.message_id}))
            else:
                return self.start() + self.encode(chunk)
        if self.mode == "native":
            return b"".join(self._native(e) for e in chunk.native_events or ())
        if self.mode == "replay":
            return b""
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
        """Close the open block; ``message_delta`` with stop reason and usage; ``message_stop``.

        Nothing for the upstream's own events or a replay: their ``message_stop`` was sent.
        """
        if self.mode in ("native", "replay"):
            return b""
        out = b"" if self.mode else self.start()
        out += self._close()
        delta = {"stop_reason": stop_reason(self.finish_reason, self.stop_sequence),
                 "stop_sequence": self.stop_sequence}
        out += _event("message_delta", {"type": "message_delta", "delta": delta,
                                        "usage": usage_body(self.usage or Usage())})
        return out + _event("message_stop", {"type": "message_stop"})

    def error_event(self, body: dict[str, Any]) -> bytes:
        """The `error_event` ending the stream on a failure after its headers."""
        return error_event(body)


def error_event(body: dict[str, Any]) -> bytes:
    """An ``error`` event for a failure after the stream started."""
    return _event("error", body)
