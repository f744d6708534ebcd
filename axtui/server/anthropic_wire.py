"""Anthropic's Messages API on ``/v1/messages``, for Claude SDK users.

A Messages request goes to an Anthropic deployment as the client sent it
(its blocks in their order, ``cache_control``, ``is_error``, images in tool
results, server tools, the ``anthropic-beta`` header), with the
deployment's model: it carries its own body beside its chat translation
(`axtui.types.NativeRequest`, API ``messages``), as a Responses request
does for OpenAI. Every other provider is served the translation, ax's
OpenAI-shaped `ChatRequest` (``system`` becomes a system message,
``tool_use`` blocks tool calls, ``tool_result`` blocks tool messages, an
``is_error`` result text that says so, images ``image_url`` parts,
``metadata.user_id`` the ``user``; ``thinking`` and ``redacted_thinking``
blocks stay on their turn, signatures intact); parameters ax does not name
(``top_k``, ``thinking``…) pass through. What the translation cannot carry
(a block of another type, a server tool, an image in a tool result) is
refused there with a 400 naming the field, never left out.
An Anthropic deployment's answer goes back as it came, every block of it
(``redacted_thinking``, ``server_tool_use``, ``web_search_tool_result``,
citations on text…), with ax's message id; so does its replay from the
response cache. Another provider's answer is made up from ax's reading of
it: its thinking as ``thinking`` blocks, streamed with ``thinking_delta``
and ``signature_delta``; the stop sequence that ended it, when the
provider says which, as ``stop_reason: "stop_sequence"`` and
``stop_sequence``. The answer goes back as a Messages ``message``, or as
its event stream (`axtui.server.anthropic_stream`).

Usage: Anthropic's ``input_tokens`` leaves out the prompt tokens read from
or written to its cache, which it reports beside it; ax's counts them in,
so they are taken out again here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError

from axtui.errors import InvalidRequest
from axtui.providers.anthropic import BETA_HEADER, MESSAGES_API, anthropic_usage_body
from axtui.server.errors import invalid_from_validation
from axtui.types import ChatRequest, ChatResponse, Message, NativeRequest

__all__ = [
    "USER_FIELD",
    "AnthropicMessage",
    "AnthropicRequest",
    "client_beta",
    "message_body",
    "model_info",
    "model_page",
    "native_message",
    "native_request",
    "stop_reason",
    "to_chat_request",
    "usage_body",
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


#: The content blocks the chat translation carries, by the role of their turn.
_TRANSLATED = {"user": frozenset({"text", "image", "tool_result"}),
               "assistant": frozenset({"text", "tool_use", "thinking", "redacted_thinking"})}
#: The fields of a block the chat translation keeps (thinking blocks are kept whole).
_KEPT = {"text": frozenset({"type", "text", "cache_control"}), "image": frozenset({"type", "source", "cache_control"}),
         "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
         "tool_result": frozenset({"type", "tool_use_id", "content", "cache_control"})}
#: Request fields the cache keys through the chat translation (the rest of the body is keyed as sent).
_UNKEYED = frozenset({"model", "messages", "system", "stream", "metadata"})


class _Losses:
    """What the chat translation of one Messages request cannot carry, or carries only approximately.

    ``problems`` are refusals naming the field, for deployments served the
    translation (OpenAI, Gemini…); an Anthropic deployment is sent the
    client's body instead. ``lossy``: the translation leaves out something
    that changes the answer (block order, ``is_error``), so the cache keys
    the conversation as sent.
    """

    def __init__(self) -> None:
        self.problems: list[InvalidRequest] = []
        self.lossy = False

    def refuse(self, param: str, why: str) -> None:
        """Keep the refusal of the field ``param`` (``why`` says what it is) for translated deployments."""
        self.problems.append(InvalidRequest(f"{param}: {why}", param=param))
        self.lossy = True

    def unkept(self, block: dict[str, Any]) -> None:
        """Note a block with fields the translation leaves out (``citations``, ``is_error``…)."""
        kept = _KEPT.get(str(block.get("type")))
        if kept is not None and not kept.issuperset(block):
            self.lossy = True


def _untranslatable(kind: Any) -> str:
    return f"a {kind!r} block has no equivalent in the chat translation other providers are sent"


#: JSON's names for the Python types a parsed value can have, for messages.
_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number"}


def _block_type(block: dict[str, Any], where: str) -> str:
    """The ``type`` of the content block at ``where``, which every block names as a string (Anthropic
    refuses a block without one, so no deployment could serve it).

    Raises:
        InvalidRequest: the block has no type, or one that is not a string; the message names where.
    """
    kind = block.get("type")
    if isinstance(kind, str):
        return kind
    param = f"{where}.type"
    got = "it has none" if kind is None else f"not {_JSON_TYPES.get(type(kind), 'that')}"
    raise InvalidRequest(f"{param}: a content block's type is a string such as 'text', 'image' or 'tool_use'; "
                         f"{got}", param=param)


def _part(block: dict[str, Any], where: str, losses: _Losses) -> dict[str, Any]:
    """An OpenAI content part for a Messages content block (text or image; others are Anthropic's only)."""
    kind = block.get("type")
    source = block.get("source")
    part: dict[str, Any]
    if kind == "text":
        part = {"type": "text", "text": str(block.get("text", ""))}
    elif kind == "image" and isinstance(source, dict) and source.get("type") in ("base64", "url"):
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        else:
            url = str(source.get("url", ""))
        part = {"type": "image_url", "image_url": {"url": url}}
    else:
        # Documents, search results, files…: only Anthropic's own API takes them.
        if kind == "image":
            losses.refuse(f"{where}.source.type", "an image given other than as base64 data or a URL has no "
                                                  "equivalent in the chat translation other providers are sent")
        else:
            losses.refuse(f"{where}.type", _untranslatable(kind))
        return dict(block)
    losses.unkept(block)
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _parts(content: str | list[dict[str, Any]], where: str, losses: _Losses) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    for i, block in enumerate(content):
        _block_type(block, f"{where}.{i}")
    return [_part(b, f"{where}.{i}", losses) for i, b in enumerate(content)]


def _tool_result(block: dict[str, Any], where: str, losses: _Losses) -> Message:
    """A tool message: its text (``is_error`` said in words; other providers have no such flag)."""
    if not block.get("tool_use_id"):
        raise InvalidRequest(f"{where}: a tool_result block needs tool_use_id", param=where)
    losses.unkept(block)
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for k, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "text":
                texts.append(str(inner.get("text", "")))
                losses.unkept(inner)
            else:
                losses.refuse(f"{where}.content.{k}.type", f"a {kind!r} block in a tool_result has no equivalent "
                                                           f"in the chat translation (its tool results are text)")
        losses.lossy |= len(content) > 1
        content = "".join(texts)
    if block.get("is_error"):
        losses.lossy = True
        content = f"Error: {content}"
    return Message(role="tool", tool_call_id=str(block["tool_use_id"]), content=str(content))


def _assistant(content: str | list[dict[str, Any]], where: str, losses: _Losses) -> Message:
    """One assistant message: its texts joined, its tool calls after them (the blocks' order is Anthropic's only)."""
    if isinstance(content, str):
        return Message(role="assistant", content=content)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        kind = _block_type(block, f"{where}.content.{i}")
        if kind not in _TRANSLATED["assistant"]:
            losses.refuse(f"{where}.content.{i}.type", _untranslatable(kind))
            continue
        losses.unkept(block)
        if kind in ("thinking", "redacted_thinking"):
            # Kept exactly (signature included): Anthropic refuses a tool turn whose thinking was altered.
            thinking.append(dict(block))
        elif kind == "text":
            losses.lossy |= bool(calls)  # text after a tool call: the translation moves it before
            texts.append(str(block.get("text", "")))
        else:
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


def _user(content: list[dict[str, Any]], where: str, losses: _Losses) -> list[Message]:
    """Tool messages for the turn's ``tool_result`` blocks, then a user message for the rest."""
    messages: list[Message] = []
    rest: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        kind = _block_type(block, f"{where}.content.{j}")
        if kind == "tool_result":
            losses.lossy |= bool(rest)  # a result after other content: the translation moves it before
            messages.append(_tool_result(block, f"{where}.content.{j}", losses))
        elif kind not in _TRANSLATED["user"]:
            losses.refuse(f"{where}.content.{j}.type", _untranslatable(kind))
            rest.append(dict(block))
        else:
            rest.append(_part(block, f"{where}.content.{j}", losses))
    if rest:
        messages.append(Message(role="user", content=rest))
    return messages


def _tools(tools: list[dict[str, Any]], losses: _Losses) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if "input_schema" in tool and tool.get("type") in (None, "custom"):
            fn: dict[str, Any] = {"name": tool.get("name", ""), "parameters": tool["input_schema"]}
            if tool.get("description"):
                fn["description"] = tool["description"]
            entry: dict[str, Any] = {"type": "function", "function": fn}
            if "cache_control" in tool:
                entry["cache_control"] = tool["cache_control"]
            out.append(entry)
            continue
        if tool.get("type") != "function":
            # Server tools (web search…) and Anthropic-defined ones (bash…): Anthropic runs or defines them.
            losses.refuse(f"tools.{i}.type", f"tool type {tool.get('type')!r} is Anthropic's own; other providers "
                                             f"take tools with an input_schema only")
        out.append(dict(tool))
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


def client_beta(headers: Mapping[bytes, bytes]) -> str | None:
    """The ``anthropic-beta`` header a Messages client sent, if any (it goes upstream with its body)."""
    beta = headers.get(BETA_HEADER.encode())
    return beta.decode("latin-1") if beta else None


def to_chat_request(request: AnthropicRequest, *, beta: str | None = None) -> ChatRequest:
    """ax's request for a Messages API request, carrying the client's own body for Anthropic.

    The chat translation serves every other provider; an Anthropic
    deployment is sent the client's body and ``anthropic-beta`` header
    (``beta``) as they came (`native_request`). What the translation
    cannot carry (an unknown block, a server tool, an image in a tool
    result) is refused, naming the field, by deployments served the
    translation: the call moves on, and is a 400 when none is left.

    Raises:
        InvalidRequest: a content block has no type string, or a tool block lacks what it needs; the
            message names where.
    """
    losses = _Losses()
    messages: list[Message] = []
    if request.system:
        messages.append(Message(role="system", content=_parts(request.system, "system", losses)))
    for i, turn in enumerate(request.messages):
        where = f"messages.{i}"
        if turn.role == "assistant":
            messages.append(_assistant(turn.content, where, losses))
        elif isinstance(turn.content, str):
            messages.append(Message(role="user", content=turn.content))
        else:
            messages += _user(turn.content, where, losses)
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
        data["tools"] = _tools(request.tools, losses)
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
        chat = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, rename=lambda loc: _wire_path(loc, tools)) from None
    return chat.with_native(native_request(request, losses, beta))


def native_request(request: AnthropicRequest, losses: _Losses, beta: str | None) -> NativeRequest:
    """The client's Messages body as it goes to a deployment that speaks the API (Anthropic's).

    Only ax's cache directive (``metadata.ax_cache``) is taken out. The cache
    keys what the translation leaves out: the fields it does not name, the
    ``anthropic-beta`` header, and, when the translation was lossy, the
    conversation as sent.
    """
    body = request.model_dump(exclude_unset=True)
    if isinstance(body.get("metadata"), dict) and "ax_cache" in body["metadata"]:
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "ax_cache"}
        if not body["metadata"]:
            del body["metadata"]
    keyed = {k: v for k, v in sorted(body.items()) if k not in _UNKEYED}
    headers = {BETA_HEADER: beta} if beta else {}
    if beta:
        keyed[BETA_HEADER] = beta
    if losses.lossy:
        keyed.update(messages=body["messages"], system=body.get("system"))
    first = losses.problems[0] if losses.problems else None
    return NativeRequest(api=MESSAGES_API, body=body, keyed=keyed, problem=first.message if first else None,
                         param=first.param if first else None, headers=headers)


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


def stop_reason(finish_reason: str, stop_sequence: str | None) -> str:
    """Anthropic's ``stop_reason``: ``stop_sequence`` when the provider said which one matched.

    OpenAI-compatible providers answer ``stop`` alike for the end of a turn
    and a stop sequence, without saying which: that stays ``end_turn``.
    """
    if stop_sequence is not None:
        return "stop_sequence"
    return _STOP.get(finish_reason, "end_turn")


def native_message(response: ChatResponse) -> dict[str, Any] | None:
    """The upstream's own ``message``, when the answer came from a deployment sent the client's body (Anthropic)."""
    native = response.native
    return native if isinstance(native, dict) and native.get("type") == "message" else None


def message_body(response: ChatResponse, message_id: str) -> dict[str, Any]:
    """A Messages ``message`` for a complete answer: the upstream's own, when it speaks the API, with ax's id."""
    native = native_message(response)
    if native is not None:
        return {**native, "id": message_id}
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
        "stop_reason": stop_reason(response.finish_reason, response.stop_sequence),
        "stop_sequence": response.stop_sequence,
        "usage": usage_body(response.usage),
    }


# -- models ---------------------------------------------------------------------------------


#: Anthropic's page size for ``GET /v1/models`` when ``limit`` is not given, and the most it takes.
MODELS_PAGE, MODELS_PAGE_MAX = 20, 1000


def model_info(name: str, created: float) -> dict[str, Any]:
    """Anthropic's ``model`` object for a model or alias ax serves (``created_at``: RFC 3339)."""
    stamp = datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": name, "display_name": name, "created_at": stamp}


def model_page(names: list[str], created: float, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of Anthropic's model list: ``limit``, ``after_id`` and ``before_id`` as Anthropic reads them.

    Raises:
        InvalidRequest: a ``limit`` outside 1 to 1000, or an ``after_id``/``before_id`` that names no model
            listed; the message says which.
    """
    raw = query.get("limit", str(MODELS_PAGE))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MODELS_PAGE_MAX:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MODELS_PAGE_MAX}, not {raw!r}", param="limit")
    limit = int(raw)
    after, before = query.get("after_id"), query.get("before_id")
    for param, given in (("after_id", after), ("before_id", before)):
        if given is not None and given not in names:
            raise InvalidRequest(f"{param} {given!r} names no model listed here; use the id of a listed model "
                                 f"(a page's first_id or last_id)", param=param)
    start = names.index(after) + 1 if after is not None else 0
    end = names.index(before) if before is not None else len(names)
    if before is not None and after is None:
        # The page just before ``before_id``; more are left before it.
        page, more = names[max(start, end - limit):end], end - limit > start
    else:
        page, more = names[start:end][:limit], start + limit < end
    return {"data": [model_info(n, created) for n in page], "has_more": more,
            "first_id": page[0] if page else None, "last_id": page[-1] if page else None}
