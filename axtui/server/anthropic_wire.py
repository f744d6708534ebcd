"""Anthropic's Messages API on ``/v1/messages``, for Claude SDK users.

A Messages request becomes ax's OpenAI-shaped `ChatRequest` (``system``
becomes a system message, ``tool_use`` blocks tool calls, ``tool_result``
blocks tool messages, images ``image_url`` parts, ``metadata.user_id`` the
``user``; ``thinking`` and ``redacted_thinking`` blocks stay on their turn,
signatures intact, and go back to Anthropic as they came); parameters ax
does not name (``top_k``, ``thinking``…) pass through to the provider.
The answer's thinking comes back as ``thinking`` blocks, streamed with
``thinking_delta`` and ``signature_delta``. The answer goes back as a Messages ``message``,
or as its event stream (``message_start``, ``content_block_*``,
``message_delta``, ``message_stop``).

Usage: Anthropic's ``input_tokens`` leaves out the prompt tokens read from
or written to its cache, which it reports beside it; ax's counts them in,
so they are taken out again here.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError
from pydantic_core import to_json

from axtui.errors import InvalidRequest
from axtui.providers.anthropic import anthropic_usage_body
from axtui.server.errors import invalid_from_validation
from axtui.types import ChatRequest, ChatResponse, Chunk, Message, Usage

__all__ = [
    "USER_FIELD",
    "AnthropicMessage",
    "AnthropicRequest",
    "MessageStreamEncoder",
    "message_body",
    "to_chat_request",
]

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


class AnthropicTurn(BaseModel):
    """One turn of a Messages conversation."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class AnthropicRequest(BaseModel):
    """A Messages API request."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: StrictInt = Field(ge=1)
    messages: list[AnthropicTurn] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0, le=1)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    top_k: StrictInt | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: StrictBool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class AnthropicUsage(BaseModel):
    """Token counts in Anthropic's terms (cache reads and writes beside input)."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


class AnthropicMessage(BaseModel):
    """A Messages API answer."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: AnthropicUsage


# -- request ----------------------------------------------------------------------------------


def _part(block: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI content part for a Messages content block."""
    kind = block.get("type")
    part: dict[str, Any]
    if kind == "text":
        part = {"type": "text", "text": str(block.get("text", ""))}
    elif kind == "image" and isinstance(block.get("source"), dict):
        source = block["source"]
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        else:
            url = str(source.get("url", ""))
        part = {"type": "image_url", "image_url": {"url": url}}
    else:
        # Documents, search results…: Anthropic-native blocks that the Anthropic adapter sends as they are.
        return dict(block)
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _parts(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_part(b) for b in content]


def _tool_result(block: dict[str, Any], where: str) -> Message:
    if not block.get("tool_use_id"):
        raise InvalidRequest(f"{where}: a tool_result block needs tool_use_id", param=where)
    content = block.get("content", "")
    if isinstance(content, list):
        content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    if block.get("is_error"):
        content = f"Error: {content}"
    return Message(role="tool", tool_call_id=str(block["tool_use_id"]), content=str(content))


def _assistant(content: str | list[dict[str, Any]], where: str) -> Message:
    if isinstance(content, str):
        return Message(role="assistant", content=content)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            # Kept exactly (signature included): Anthropic refuses a tool turn whose thinking was altered.
            thinking.append(dict(block))
        elif kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            if not block.get("id") or not block.get("name"):
                raise InvalidRequest(f"{where}.content.{i}: a tool_use block needs id and name",
                                     param=f"{where}.content.{i}")
            calls.append({
                "id": str(block["id"]),
                "type": "function",
                "function": {"name": str(block["name"]), "arguments": json.dumps(block.get("input") or {})},
            })
    if thinking:
        return Message.model_validate({"role": "assistant", "content": "".join(texts) or None,
                                       "tool_calls": calls or None, "thinking_blocks": thinking})
    return Message(role="assistant", content="".join(texts) or None, tool_calls=calls or None)


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        if "input_schema" in tool:
            fn: dict[str, Any] = {"name": tool.get("name", ""), "parameters": tool["input_schema"]}
            if tool.get("description"):
                fn["description"] = tool["description"]
            entry: dict[str, Any] = {"type": "function", "function": fn}
            if "cache_control" in tool:
                entry["cache_control"] = tool["cache_control"]
            out.append(entry)
        else:
            out.append(dict(tool))  # server tools (web search…) pass as they are
    return out


def _tool_choice(choice: dict[str, Any]) -> tuple[str | dict[str, Any] | None, bool | None]:
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        return {"type": "function", "function": {"name": str(choice.get("name", ""))}}, parallel
    return "auto", parallel


def to_chat_request(request: AnthropicRequest) -> ChatRequest:
    """ax's request for a Messages API request.

    Raises:
        InvalidRequest: a tool block lacks what it needs; the message names where.
    """
    messages: list[Message] = []
    if request.system:
        messages.append(Message(role="system", content=_parts(request.system)))
    for i, turn in enumerate(request.messages):
        where = f"messages.{i}"
        if turn.role == "assistant":
            messages.append(_assistant(turn.content, where))
            continue
        if isinstance(turn.content, str):
            messages.append(Message(role="user", content=turn.content))
            continue
        rest = []
        for j, block in enumerate(turn.content):
            if block.get("type") == "tool_result":
                messages.append(_tool_result(block, f"{where}.content.{j}"))
            else:
                rest.append(_part(block))
        if rest:
            messages.append(Message(role="user", content=rest))
    data: dict[str, Any] = dict(request.model_extra or {})
    data.update(model=request.model, messages=messages, max_tokens=request.max_tokens, stream=request.stream)
    if request.temperature is not None:
        data["temperature"] = request.temperature
    if request.top_p is not None:
        data["top_p"] = request.top_p
    if request.top_k is not None:
        data["top_k"] = request.top_k
    if request.stop_sequences:
        data["stop"] = request.stop_sequences
    if request.tools:
        data["tools"] = _tools(request.tools)
    if request.tool_choice:
        choice, parallel = _tool_choice(request.tool_choice)
        data["tool_choice"] = choice
        if parallel is not None:
            data["parallel_tool_calls"] = parallel
    metadata = dict(request.metadata or {})
    if metadata.get("user_id"):
        data["user"] = str(metadata.pop("user_id"))
    if metadata:
        data["metadata"] = metadata
    tools = request.tools or []
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, rename=lambda loc: _wire_path(loc, tools)) from None


#: Where a Messages request carries the end user (``user`` in ax's chat request).
USER_FIELD = "metadata.user_id"


def _wire_path(loc: tuple[int | str, ...], tools: list[dict[str, Any]]) -> tuple[int | str, ...]:
    """Where a field of the translated chat request is in the Messages request (a tool without
    ``input_schema`` went on as sent: its fields are where they were)."""
    match loc:
        case ("tools", int() as i, "function", *rest) if i < len(tools) and "input_schema" in tools[i]:
            return ("tools", i, *(["input_schema", *rest[1:]] if rest[:1] == ["parameters"] else rest))
        case ("tool_choice", "function", *rest):
            return ("tool_choice", *rest)
        case ("stop", *rest):
            return ("stop_sequences", *rest)
        case ("user", *rest):
            return (*USER_FIELD.split("."), *rest)
    return loc


# -- answer ---------------------------------------------------------------------------------


#: Anthropic's ``usage`` object for ax's `Usage` (one encoder, shared with the simulated upstream).
usage_body = anthropic_usage_body


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {"_raw": raw}
    return raw or {}


def message_body(response: ChatResponse, message_id: str) -> dict[str, Any]:
    """A Messages ``message`` for a complete answer."""
    content: list[dict[str, Any]] = []
    if response.thinking_blocks:
        content.extend(response.thinking_blocks)
    elif response.reasoning:
        # Another provider's thoughts: shown, but with no signature an Anthropic upstream would accept.
        content.append({"type": "thinking", "thinking": response.reasoning, "signature": ""})
    if response.content:
        content.append({"type": "text", "text": response.content})
    for call in response.tool_calls or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": str(call.get("id", "")), "name": str(fn.get("name", "")),
                        "input": _arguments(fn.get("arguments"))})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": _STOP.get(response.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": usage_body(response.usage),
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + to_json(data) + b"\n\n"


class MessageStreamEncoder:
    """Turns ax `Chunk` objects into the Messages API's event stream.

    Text opens a ``text`` block; a tool call (its first delta has an id)
    opens a ``tool_use`` block whose arguments follow as
    ``input_json_delta``; `finish` closes the open block and sends
    ``message_delta`` (stop reason and usage) and ``message_stop``.
    """

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason = "stop"
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
        delta = {"stop_reason": _STOP.get(self.finish_reason, "end_turn"), "stop_sequence": None}
        out += _event("message_delta", {"type": "message_delta", "delta": delta,
                                        "usage": usage_body(self.usage or Usage())})
        return out + _event("message_stop", {"type": "message_stop"})


def error_event(body: dict[str, Any]) -> bytes:
    """An ``error`` event for a failure after the stream started."""
    return _event("error", body)
