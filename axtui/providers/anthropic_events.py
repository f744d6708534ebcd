"""Anthropic's Messages answers as they come back: the whole ``message``, its event stream, and ax's reading of both.

`EventReader` reads a stream's events as ax's chunks (and, for a Messages
client, passes the events on); `anthropic_usage` reads a ``usage`` object
and `anthropic_usage_body` writes one. `MessageSnapshot` puts a stream's events together into its ``message``, as
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
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from axtui.providers._wire import strict_json
from axtui.types import Chunk, Usage, token_count

__all__ = ["FINISH", "EventReader", "MessageSnapshot", "anthropic_usage", "anthropic_usage_body",
           "message_events", "plain_type", "tool_call"]

#: Blocks whose ``input`` streams as ``input_json_delta`` pieces (the SDK's accumulator parses them for these).
_STREAMED_INPUT = frozenset({"tool_use", "server_tool_use"})


class MessageSnapshot:
    """The ``message`` a Messages event stream has streamed so far (``message`` is None before ``message_start``).

    `take` raises ValueError when a tool's input pieces do not make JSON, and
    TypeError, KeyError, IndexError or OverflowError (an index of ``1e999``)
    when an event is not shaped as Anthropic's.
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
                message["content"][index]["input"] = strict_json(pieces)
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


# --- reading a stream -----------------------------------------------------------------

#: Anthropic's stop reasons as chat's finish reasons.
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def anthropic_usage(usage: Mapping[str, Any]) -> Usage:
    """ax's `Usage` from an Anthropic ``usage`` object (cache tokens added in)."""
    fresh = token_count(usage.get("input_tokens"))
    read = token_count(usage.get("cache_read_input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    creation = usage.get("cache_creation") or {}
    details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=token_count(fresh + read + written),
        output_tokens=token_count(usage.get("output_tokens")),
        cached_input_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=token_count(creation.get("ephemeral_1h_input_tokens")),
        reasoning_tokens=token_count(details.get("thinking_tokens")),
    )


def anthropic_usage_body(usage: Usage) -> dict[str, int]:
    """Anthropic's ``usage`` object for ax's `Usage`: the inverse of `anthropic_usage`.

    Anthropic's ``input_tokens`` leaves out the cache reads and writes that
    ax's ``input_tokens`` includes. The one encoder of this shape: the
    gateway's answers and the simulated Anthropic upstream both use it.
    """
    fresh = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": fresh,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": json.dumps(block.get("input") or {})},
    }


def _carries(chunk: Chunk) -> bool:
    """Whether a chunk carries something of the answer for the caller (then the call cannot fall back)."""
    return bool(chunk.delta or chunk.tool_calls or chunk.finish_reason or chunk.reasoning
                or chunk.reasoning_signature is not None or chunk.reasoning_redacted is not None)


_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def plain_type(kind: object) -> bool:
    """Whether an event's ``type`` is a plain name, fit to be a client's ``event:`` line (no newline to forge one)."""
    return isinstance(kind, str) and _EVENT_TYPE.fullmatch(kind) is not None


class EventReader:
    """A Messages stream's events as ax's chunks (see `AnthropicProvider.stream`).

    ``native``: the request went upstream as its Messages client sent it, so
    the client is owed the upstream's own events. Each chunk then carries
    the events it stands for (``native_events``), and the last one the
    whole message (``native``, put together by `MessageSnapshot`): every
    block reaches the client as it came, ``message_start`` with its usage
    too. Events before the first chunk that carries something of the
    answer are held back and sent with it, so an upstream that fails before
    answering leaves nothing at the client and the call may still fall back.

    ``message_start`` reports the prompt's tokens (cache reads and writes
    included) before the answer: the first chunk of the answer carries them
    as an ``estimated`` usage (the output is not known yet), so a call cut
    after it is paid for that prompt exactly; ``message_delta`` gives the
    whole usage.
    """

    def __init__(self, model: str, *, native: bool) -> None:
        self.model = model
        self.ident = ""
        self.done = False
        self._usage: dict[str, Any] = {}
        self._prompt: Usage | None = None  # message_start's figures, until the first chunk of the answer
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._snapshot = MessageSnapshot() if native else None
        self._held: list[dict[str, Any]] | None = [] if native else None

    def take(self, event: dict[str, Any]) -> list[Chunk]:
        """The chunks for one event (a JSON object with its ``type``); ``done`` turns true at ``message_stop``."""
        chunks = list(self._chunks(event))
        if self._prompt is not None:
            first = next((c for c in chunks if _carries(c)), None)
            if first is not None:
                first.usage = first.usage or self._prompt
                self._prompt = None
        if self._snapshot is None:
            return chunks
        self._snapshot.take(event)
        if self._held is not None:
            if not self.done and not any(_carries(c) for c in chunks):
                self._held.append(event)
                return []
            events, self._held = [*self._held, event], None
        else:
            events = [event]
        chunks = chunks or [Chunk(model=self.model, id=self.ident)]
        chunks[0].native_events = events
        if self.done:
            chunks[-1].native = self._snapshot.message
        return chunks

    def _chunks(self, data: dict[str, Any]) -> Iterator[Chunk]:
        kind = data["type"]
        model, ident = self.model, self.ident
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = str(message.get("model") or model)
            self.ident = str(message.get("id") or ident)
            self._usage.update(message.get("usage") or {})
            self._prompt = dataclasses.replace(anthropic_usage(self._usage), estimated=True)
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                n = self._tools.setdefault(int(data.get("index", 0)), len(self._tools))
                call = {"index": n, **tool_call({**block, "input": {}})}
                call["function"]["arguments"] = ""
                yield Chunk(tool_calls=[call], model=model, id=ident)
            elif block.get("type") == "text" and block.get("text"):
                yield Chunk(delta=str(block["text"]), model=model, id=ident)
            elif block.get("type") == "redacted_thinking":
                yield Chunk(reasoning_redacted=str(block.get("data", "")), model=model, id=ident)
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield Chunk(delta=str(delta["text"]), model=model, id=ident)
            elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                yield Chunk(reasoning=str(delta["thinking"]), model=model, id=ident)
            elif delta.get("type") == "signature_delta":
                yield Chunk(reasoning_signature=str(delta.get("signature", "")), model=model, id=ident)
            elif delta.get("type") == "input_json_delta":
                position = self._tools.get(int(data.get("index", 0)))
                if position is not None and delta.get("partial_json"):
                    fragment = {"index": position, "function": {"arguments": str(delta["partial_json"])}}
                    yield Chunk(tool_calls=[fragment], model=model, id=ident)
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            stop, sequence = delta.get("stop_reason"), delta.get("stop_sequence")
            # message_delta's usage is cumulative; it overrides message_start's.
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            if stop:
                matched = str(sequence) if stop == "stop_sequence" and sequence is not None else None
                yield Chunk(finish_reason=FINISH.get(str(stop), "stop"), stop_sequence=matched, model=model, id=ident)
            yield Chunk(usage=anthropic_usage(self._usage), model=model, id=ident)
        elif kind == "message_stop":
            self.done = True
