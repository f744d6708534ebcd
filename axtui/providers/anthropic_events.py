"""Anthropic's Messages event stream and the whole ``message`` it streams, each made from the other.

`MessageSnapshot` puts a stream's events together into its ``message``, as
the official SDK's accumulator does: every content block as it came
(``server_tool_use``, ``web_search_tool_result``, ``redacted_thinking``,
citations on text…), tool inputs parsed from their ``input_json_delta``
pieces, ``message_delta``'s stop reason and cumulative usage laid over
``message_start``'s. `message_events` is the inverse, for an answer kept
whole (the response cache) that a client asks for as a stream: text goes
as ``citations_delta`` and ``text_delta``, thinking as ``thinking_delta``
and ``signature_delta``, a tool's input as one ``input_json_delta``, and
any other block whole in its ``content_block_start``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["MessageSnapshot", "message_events"]

#: Blocks whose ``input`` streams as ``input_json_delta`` pieces (the SDK's accumulator parses them for these).
_STREAMED_INPUT = frozenset({"tool_use", "server_tool_use"})


class MessageSnapshot:
    """The ``message`` a Messages event stream has streamed so far (``message`` is None before ``message_start``).

    `take` raises ValueError when a tool's input pieces do not make JSON, and
    TypeError, KeyError or IndexError when an event is not shaped as Anthropic's.
    """

    __slots__ = ("_inputs", "message")

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self._inputs: dict[int, str] = {}

    def take(self, event: dict[str, Any]) -> None:
        """Lay one event (a JSON object with its ``type``) over the message."""
        kind = event.get("type")
        if kind == "message_start":
            self.message = copy.deepcopy(event["message"])
            self.message["content"] = list(self.message.get("content") or ())
            return
        message = self.message
        if message is None:
            return
        if kind == "content_block_start":
            message["content"].append(copy.deepcopy(event["content_block"]))
        elif kind == "content_block_delta":
            index = int(event["index"])
            self._delta(message["content"][index], index, event["delta"])
        elif kind == "content_block_stop":
            index = int(event["index"])
            pieces = self._inputs.pop(index, "")
            if pieces:
                message["content"][index]["input"] = json.loads(pieces)
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            usage = message.setdefault("usage", {})
            # Cumulative counts: they replace message_start's; one left out keeps message_start's.
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})

    def _delta(self, block: dict[str, Any], index: int, delta: dict[str, Any]) -> None:
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = str(block.get("text") or "") + str(delta["text"])
        elif kind == "thinking_delta":
            block["thinking"] = str(block.get("thinking") or "") + str(delta["thinking"])
        elif kind == "signature_delta":
            block["signature"] = str(delta["signature"])
        elif kind == "citations_delta":
            block["citations"] = [*(block.get("citations") or ()), delta["citation"]]
        elif kind == "input_json_delta":
            self._inputs[index] = self._inputs.get(index, "") + str(delta.get("partial_json") or "")


def message_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events that stream ``message`` (see the module docstring); `MessageSnapshot` makes it again from them."""
    usage = dict(message.get("usage") or {})
    opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {**usage, "output_tokens": 0}}
    for late in ("container", "stop_details"):
        opening.pop(late, None)
    events: list[dict[str, Any]] = [{"type": "message_start", "message": opening}]
    for index, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        deltas: list[dict[str, Any]] = []
        start = block
        if kind == "text":
            start = {**block, "text": ""}
            if block.get("citations"):
                start["citations"] = []
            deltas = [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
            if block.get("text"):
                deltas.append({"type": "text_delta", "text": block["text"]})
        elif kind == "thinking":
            start = {**block, "thinking": "", "signature": ""}
            if block.get("thinking"):
                deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
        elif kind in _STREAMED_INPUT:
            start = {**block, "input": {}}
            if block.get("input"):
                deltas.append({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    delta.update({k: message[k] for k in ("container", "stop_details") if k in message})
    events.append({"type": "message_delta", "delta": delta, "usage": usage})
    events.append({"type": "message_stop"})
    return events
