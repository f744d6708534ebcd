"""The Responses API's event stream, built from ax's chunks.

The sequence is OpenAI's, so the SDK's stream helpers (``responses.stream``,
``get_final_response``) work: ``response.created`` and
``response.in_progress``; per output item ``response.output_item.added``,
its deltas and ``response.output_item.done`` — a reasoning item with
``response.reasoning_text.delta``/``.done`` (or, when its thinking is the
summary the request asked for, ``response.reasoning_summary_part.added``,
``response.reasoning_summary_text.delta``…/``.done`` and
``response.reasoning_summary_part.done``), a message with
``response.content_part.added``, ``response.output_text.delta``…,
``response.output_text.done`` and ``response.content_part.done``, a
function call with ``response.function_call_arguments.delta``…/``.done``
— and last ``response.completed`` (``response.incomplete`` when the answer
was cut at ``max_output_tokens``). Every event carries a rising
``sequence_number``. Tool-call fragments are joined by their ``index``, so
parallel calls become separate ``function_call`` items.

`ResponseEvents` is what the route uses: a stream served natively (its
chunks carry the upstream's events) goes to the client event for event,
with ax's response id; a cached native answer is played back as the same
sequence (`replay_events`); any other stream is encoded as above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json

from axtui.providers.reasoning import summarises_thinking
from axtui.server import responses_wire as rw
from axtui.types import Chunk, Thinking, Usage

__all__ = ["ResponseEvents", "ResponseStreamEncoder", "error_event", "replay_events"]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + to_json(data) + b"\n\n"


class _Item:
    """One output item while it streams."""

    __slots__ = ("data", "index", "kind", "summarised", "text")

    def __init__(self, kind: str, index: int, data: dict[str, Any]) -> None:
        self.kind = kind
        self.index = index
        self.data = data
        self.text = ""
        self.summarised = False  # a reasoning item whose text is its summary


class ResponseStreamEncoder:
    """Turns ax `Chunk` objects into the Responses API's events.

    Args:
        request: the Responses request (its settings are echoed in the response object).
        response_id: the response's id.
        model: the model named until the chunks name one.
        created: the ``created_at`` timestamp.
        behind: the model an upstream id serves, where the id does not say (a Bedrock ARN's).
    """

    def __init__(self, request: rw.ResponsesRequest, response_id: str, model: str, created: int,
                 behind: Mapping[str, str] | None = None) -> None:
        self.request = request
        self.response_id = response_id
        self.model = model
        self.behind = behind or {}
        self.created = created
        self.usage: Usage | None = None
        self.finish_reason = "stop"
        self.output: list[dict[str, Any]] = []
        self.thinking = Thinking()
        self._sequence = 0
        self._open: _Item | None = None  # the reasoning or message item being written
        self._calls: dict[int, _Item] = {}  # tool call index -> its item
        self._items: list[_Item] = []
        #: The whole ``response`` object, once `finish` built it.
        self.body: dict[str, Any] | None = None

    def _emit(self, kind: str, data: dict[str, Any]) -> bytes:
        data = {"type": kind, **data, "sequence_number": self._sequence}
        self._sequence += 1
        return _event(kind, data)

    def _response(self, status: str, output: list[dict[str, Any]], usage: Usage | None) -> dict[str, Any]:
        return rw.response_body(self.request, self.response_id, self.created, model=self.model, output=output,
                                usage=usage, status=status, finish_reason=self.finish_reason if usage else None)

    def start(self) -> bytes:
        """``response.created`` and ``response.in_progress``: sent with the headers."""
        body = self._response("in_progress", [], None)
        return self._emit("response.created", {"response": body}) + self._emit("response.in_progress",
                                                                                {"response": body})

    def _add(self, kind: str, data: dict[str, Any]) -> tuple[_Item, bytes]:
        item = _Item(kind, len(self._items), data)
        self._items.append(item)
        return item, self._emit("response.output_item.added", {"output_index": item.index, "item": data})

    def _close_open(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        ident = item.data["id"]
        if item.kind == "reasoning":
            done = rw.reasoning_item(ident, item.text, self.thinking.blocks or None, summarised=item.summarised)
            if item.summarised:
                at = {"item_id": ident, "output_index": item.index, "summary_index": 0}
                out = self._emit("response.reasoning_summary_text.done", {**at, "text": item.text})
                out += self._emit("response.reasoning_summary_part.done", {
                    **at, "part": {"type": "summary_text", "text": item.text}})
            else:
                out = self._emit("response.reasoning_text.done", {"item_id": ident, "output_index": item.index,
                                                                  "content_index": 0, "text": item.text})
        else:
            # Closed at the end of an answer that was cut (max_output_tokens), the message is incomplete too.
            done = rw.message_item(ident, item.text, rw.status_of(self.finish_reason))
            part = done["content"][0]
            out = self._emit("response.output_text.done", {"item_id": ident, "output_index": item.index,
                                                           "content_index": 0, "text": item.text, "logprobs": []})
            out += self._emit("response.content_part.done", {"item_id": ident, "output_index": item.index,
                                                             "content_index": 0, "part": part})
        item.data = done
        return out + self._emit("response.output_item.done", {"output_index": item.index, "item": done})

    def _reasoning(self, chunk: Chunk) -> bytes:
        out = b""
        self.thinking.take(chunk)
        if chunk.reasoning:
            if self._open is None or self._open.kind != "reasoning":
                out += self._close_open()
                summarised = rw.wants_summary(self.request) and summarises_thinking(self.behind.get(self.model, self.model))
                ident = rw.item_id("rs")
                self._open, added = self._add("reasoning", rw.reasoning_item(ident, "", None, summarised=summarised))
                self._open.summarised = summarised
                out += added
                if summarised:
                    out += self._emit("response.reasoning_summary_part.added", {
                        "item_id": ident, "output_index": self._open.index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""}})
            item = self._open
            item.text += chunk.reasoning
            if item.summarised:
                out += self._emit("response.reasoning_summary_text.delta", {
                    "item_id": item.data["id"], "output_index": item.index, "summary_index": 0,
                    "delta": chunk.reasoning})
            else:
                out += self._emit("response.reasoning_text.delta", {"item_id": item.data["id"],
                                                                    "output_index": item.index, "content_index": 0,
                                                                    "delta": chunk.reasoning})
        return out

    def _text(self, delta: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != "message":
            out += self._close_open()
            ident = rw.item_id("msg")
            self._open, added = self._add("message", rw.message_item(ident, "", "in_progress"))
            out += added
            out += self._emit("response.content_part.added", {
                "item_id": ident, "output_index": self._open.index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        item = self._open
        item.text += delta
        return out + self._emit("response.output_text.delta", {"item_id": item.data["id"],
                                                               "output_index": item.index, "content_index": 0,
                                                               "delta": delta, "logprobs": []})

    def _tool(self, fragment: dict[str, Any]) -> bytes:
        out = b""
        index = int(fragment.get("index", len(self._calls)))
        fn = fragment.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            out += self._close_open()
            call = {"id": fragment.get("id") or "", "function": {"name": fn.get("name") or "", "arguments": ""}}
            item, added = self._add("function_call", rw.function_call_item(rw.item_id("fc"), call, "in_progress"))
            self._calls[index] = item
            out += added
        elif fn.get("name") and not item.data["name"]:
            item.data["name"] = str(fn["name"])
        arguments = fn.get("arguments")
        if arguments:
            piece = arguments if isinstance(arguments, str) else to_json(arguments).decode()
            item.text += piece
            out += self._emit("response.function_call_arguments.delta", {
                "item_id": item.data["id"], "output_index": item.index, "delta": piece})
        return out

    def encode(self, chunk: Chunk) -> bytes:
        """The events for one chunk (usage and finish are kept for the end)."""
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        out = self._reasoning(chunk)
        if chunk.delta:
            out += self._text(chunk.delta)
        for fragment in chunk.tool_calls or ():
            out += self._tool(fragment)
        return out

    def finish(self) -> bytes:
        """Close every open item; ``response.completed`` (or ``.incomplete``) with the whole response."""
        out = self._close_open()
        if not self._items:
            out += self._text("") + self._close_open()
        for item in self._calls.values():
            done = {**item.data, "arguments": item.text or "{}", "status": "completed"}
            out += self._emit("response.function_call_arguments.done", {
                "item_id": done["id"], "output_index": item.index, "name": done["name"],
                "arguments": done["arguments"]})
            out += self._emit("response.output_item.done", {"output_index": item.index, "item": done})
            item.data = done
        if self.thinking.blocks:
            for item in self._items:
                if item.kind == "reasoning":
                    item.data = rw.reasoning_item(item.data["id"], item.text, self.thinking.blocks,
                                                  summarised=item.summarised)
                    break
        self.output = [item.data for item in self._items]
        status = rw.status_of(self.finish_reason)
        body = self._response(status, self.output, self.usage or Usage())
        self.body = body
        return out + self._emit("response.completed" if status == "completed" else "response.incomplete",
                                {"response": body})


def error_event(body: dict[str, Any], sequence: int = 0) -> bytes:
    """An ``error`` event for a failure after the stream started (the SDK raises on it), ``sequence``-th."""
    detail = body.get("error") or {}
    return _event("error", {"type": "error", "code": detail.get("code"), "message": detail.get("message"),
                            "param": detail.get("param"), "error": detail, "sequence_number": sequence})


class ResponseEvents:
    """The events of one streamed response, however it was served (see the module docstring).

    Args: as `ResponseStreamEncoder`'s.
    """

    def __init__(self, request: rw.ResponsesRequest, response_id: str, model: str, created: int,
                 behind: Mapping[str, str] | None = None) -> None:
        self.request = request
        self.response_id = response_id
        self.translated = ResponseStreamEncoder(request, response_id, model, created, behind)
        self.mode = ""  # "native", "replay" or "chat", from the first chunk
        #: The whole ``response`` object, once the stream ended.
        self.body: dict[str, Any] | None = None
        self._native_sequence = 0  # after the last native event

    def error_event(self, body: dict[str, Any]) -> bytes:
        """The ``error`` event ending this stream, numbered after the events sent before it."""
        sequence = self._native_sequence if self.mode == "native" else self.translated._sequence
        return error_event(body, sequence)

    def _native(self, event: dict[str, Any]) -> bytes:
        if isinstance(number := event.get("sequence_number"), int):
            self._native_sequence = number + 1
        if isinstance(event.get("response"), dict):
            event = {**event, "response": rw.native_body(event["response"], self.request, self.response_id)}
            if event.get("type") in ("response.completed", "response.incomplete"):
                self.body = event["response"]
        return _event(str(event.get("type") or "message"), event)

    def encode(self, chunk: Chunk) -> bytes:
        """The events for one chunk."""
        if not self.mode:
            if chunk.native_events is not None:
                self.mode = "native"
            elif chunk.native is not None:
                self.mode = "replay"
                self.body = rw.native_body(chunk.native, self.request, self.response_id)
                return replay_events(self.body)
            else:
                self.mode = "chat"
                return self.translated.start() + self.translated.encode(chunk)
        if self.mode == "native":
            return b"".join(self._native(e) for e in chunk.native_events or ())
        if self.mode == "chat":
            return self.translated.encode(chunk)
        return b""

    def finish(self) -> bytes:
        """What ends the stream: nothing more for a native one (its own last event was sent)."""
        if self.mode in ("native", "replay"):
            return b""
        out = b"" if self.mode else self.translated.start()
        out += self.translated.finish()
        self.body = self.translated.body
        return out


def replay_events(body: dict[str, Any]) -> bytes:
    """A whole ``response`` object as the event sequence that would have streamed it."""
    sequence = 0

    def emit(kind: str, data: dict[str, Any]) -> bytes:
        nonlocal sequence
        sequence += 1
        return _event(kind, {"type": kind, **data, "sequence_number": sequence - 1})

    opening = {**body, "status": "in_progress", "output": [], "usage": None}
    out = emit("response.created", {"response": opening}) + emit("response.in_progress", {"response": opening})
    for index, item in enumerate(body.get("output") or ()):
        ident = item.get("id")
        where = {"item_id": ident, "output_index": index}
        if item.get("type") == "message":
            out += emit("response.output_item.added", {"output_index": index,
                                                       "item": {**item, "status": "in_progress", "content": []}})
            for part_index, part in enumerate(item.get("content") or ()):
                at = {**where, "content_index": part_index}
                text = part.get("text")
                out += emit("response.content_part.added", {**at, "part": {**part, "text": ""} if text is not None
                                                            else part})
                if part.get("type") == "output_text":
                    out += emit("response.output_text.delta", {**at, "delta": text or "", "logprobs": []})
                    out += emit("response.output_text.done", {**at, "text": text or "", "logprobs": []})
                out += emit("response.content_part.done", {**at, "part": part})
        elif item.get("type") == "function_call":
            out += emit("response.output_item.added", {"output_index": index,
                                                       "item": {**item, "status": "in_progress", "arguments": ""}})
            out += emit("response.function_call_arguments.delta", {**where, "delta": item.get("arguments") or ""})
            out += emit("response.function_call_arguments.done", {**where, "name": item.get("name"),
                                                                  "arguments": item.get("arguments") or ""})
        elif item.get("type") == "reasoning" and item.get("summary"):
            out += emit("response.output_item.added", {"output_index": index, "item": {**item, "summary": []}})
            for summary_index, part in enumerate(item["summary"]):
                at = {**where, "summary_index": summary_index}
                text = str(part.get("text") or "")
                out += emit("response.reasoning_summary_part.added", {**at, "part": {**part, "text": ""}})
                out += emit("response.reasoning_summary_text.delta", {**at, "delta": text})
                out += emit("response.reasoning_summary_text.done", {**at, "text": text})
                out += emit("response.reasoning_summary_part.done", {**at, "part": part})
        else:
            out += emit("response.output_item.added", {"output_index": index, "item": item})
        out += emit("response.output_item.done", {"output_index": index, "item": item})
    done = "response.incomplete" if body.get("status") == "incomplete" else "response.completed"
    return out + emit(done, {"response": body})
