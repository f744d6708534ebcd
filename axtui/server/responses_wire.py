"""OpenAI's Responses API on ``/v1/responses``, translated to and from chat.

A Responses request becomes ax's `ChatRequest`, so every provider serves
it and the engine caches, limits, budgets, prices and records it like
chat (the call log says ``endpoint = responses``):

- ``instructions`` becomes the first system message (it is not carried
  over from a previous response, as OpenAI documents);
- ``input`` (a string, or items: messages with ``input_text`` /
  ``input_image`` / ``output_text`` parts, ``function_call``,
  ``function_call_output``, ``reasoning``) becomes the conversation;
- function ``tools`` and ``tool_choice`` become chat's, ``max_output_tokens``
  ``max_tokens``, ``reasoning.effort`` ``reasoning_effort``, ``text.format``
  ``response_format``.

The answer becomes a ``response`` object whose ``output`` holds a
``reasoning`` item (when the provider shared its thinking; Anthropic's
signed thinking blocks travel in ``encrypted_content`` and go back to
Anthropic when the item is sent again), a ``message`` item with the text,
and one ``function_call`` item per tool call.

The thinking is the item's ``content`` (``reasoning_text``), unless the
request asked for ``reasoning.summary`` and the model's shared thinking is
itself a summary (Claude 4+, Gemini 2.5+:
`axtui.providers.reasoning.summarises_thinking`): then it is the item's
``summary`` (``summary_text``). Full reasoning is never passed off as a
summary: a request whose model cannot give one is refused
(`summary_refusal`), as is a summary asked without ``reasoning.effort``,
which is what makes a translated model think. Tools other than functions
(web search, file search, computer use…) are hosted by OpenAI: refused,
unless the model is served by a provider that speaks the Responses API
natively.

Natively (`native_request`): the client's body goes upstream as sent, with
ax's stored conversation in place of ``previous_response_id``; the chat
translation is still made, leniently, to size, route and key the call,
and serves a fallback to a provider that does not speak the API.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from axtui.errors import InvalidRequest
from axtui.providers.openai_responses import responses_usage_body
from axtui.providers.reasoning import summarises_thinking
from axtui.server.errors import invalid_from_validation
from axtui.types import REASONING_EFFORTS, ChatRequest, ChatResponse, Message, NativeRequest, Usage

__all__ = [
    "CONTINUED",
    "SUMMARIES",
    "ResponsesRequest",
    "conversation_after",
    "function_call_item",
    "history_items",
    "message_item",
    "native_body",
    "native_request",
    "output_messages",
    "reasoning_item",
    "response_body",
    "summary_refusal",
    "to_chat_request",
    "usage_body",
    "wants_summary",
]

#: Request fields passed on to chat as they are (OpenAI-only ones are dropped for other providers).
_PASSED = ("service_tier", "prompt_cache_key", "safety_identifier")

#: The values of ``reasoning.summary``.
SUMMARIES = ("auto", "concise", "detailed")


class ReasoningConfig(BaseModel):
    """``reasoning``: how hard the model thinks."""

    model_config = ConfigDict(extra="allow")

    effort: str | None = None
    summary: str | None = None
    #: The earlier name of ``summary`` (still in the SDK's type): read as ``summary`` when that is not set.
    generate_summary: str | None = None

    @field_validator("effort")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in REASONING_EFFORTS:
            raise ValueError(f"must be one of {', '.join(REASONING_EFFORTS)}, not {value!r}")
        return value

    @field_validator("summary", "generate_summary")
    @classmethod
    def _known_summary(cls, value: str | None) -> str | None:
        if value is not None and value not in SUMMARIES:
            raise ValueError(f"must be one of {', '.join(SUMMARIES)}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _earlier_name(self) -> ReasoningConfig:
        if self.summary is None:
            self.summary = self.generate_summary
        return self


class ResponsesRequest(BaseModel):
    """A ``POST /v1/responses`` body."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    reasoning: ReasoningConfig | None = None
    text: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    stream: StrictBool = False
    store: StrictBool = True
    previous_response_id: str | None = None
    background: StrictBool | None = None


# -- request ----------------------------------------------------------------------------------


#: Where a lenient translation keeps what it could not translate (None: raise at once).
Problems = list[InvalidRequest] | None


def _refuse(problems: Problems, problem: InvalidRequest) -> None:
    """Raise ``problem``, or keep it when translating leniently (the part is then left out)."""
    if problems is None:
        raise problem
    problems.append(problem)


def _part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        if not url:
            raise InvalidRequest(f"{where}: input_image needs image_url (file_id images are not served by ax)",
                                 param=where)
        image: dict[str, Any] = {"url": str(url)}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(f"{where}: content part type {kind!r} is not served through ax; send input_text or "
                         f"input_image", param=where)


def _content(content: Any, where: str, problems: Problems = None) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: content must be a string or a list of parts", param=where)
    parts = []
    for i, p in enumerate(content):
        try:
            parts.append(_part(p, f"{where}.{i}") if isinstance(p, dict) else _bad(f"{where}.{i}"))
        except InvalidRequest as exc:
            _refuse(problems, exc)
    return parts


def _bad(where: str) -> dict[str, Any]:
    raise InvalidRequest(f"{where}: each content part must be an object with a type", param=where)


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return json.dumps(output)


def _thinking_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Anthropic's thinking blocks a reasoning item carries in ``encrypted_content`` (ax puts them there)."""
    raw = item.get("encrypted_content")
    if not isinstance(raw, str) or not raw:
        return []
    try:
        blocks = json.loads(base64.b64decode(raw, validate=True))
    except ValueError:
        return []  # another server's encrypted reasoning: meaningless here
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []


def input_messages(items: str | list[dict[str, Any]], problems: Problems = None) -> list[Message]:
    """The conversation an ``input`` stands for.

    With ``problems`` (a list), items and parts ax cannot translate are left
    out and their refusals kept there, for a request that goes upstream natively.

    Raises:
        InvalidRequest: an item ax cannot serve; the message names which.
    """
    if isinstance(items, str):
        return [Message(role="user", content=items)]
    messages: list[Message] = []
    thinking: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input.{i}"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: each input item must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise InvalidRequest(f"{where}.role: must be user, system, developer or assistant, not {role!r}",
                                     param=f"{where}.role")
            content = _content(item.get("content", ""), f"{where}.content", problems)
            extra: dict[str, Any] = {"thinking_blocks": thinking} if role == "assistant" and thinking else {}
            if role == "assistant":
                thinking = []
            messages.append(Message.model_validate({"role": role, "content": content, **extra}))
        elif kind == "function_call":
            if not item.get("call_id") or not item.get("name"):
                raise InvalidRequest(f"{where}: a function_call item needs call_id and name", param=where)
            call = {"id": str(item["call_id"]), "type": "function",
                    "function": {"name": str(item["name"]), "arguments": str(item.get("arguments") or "{}")}}
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and not thinking:
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                extra = {"thinking_blocks": thinking} if thinking else {}
                thinking = []
                messages.append(Message.model_validate({"role": "assistant", "content": None,
                                                        "tool_calls": [call], **extra}))
        elif kind == "function_call_output":
            if not item.get("call_id"):
                raise InvalidRequest(f"{where}: a function_call_output item needs call_id", param=where)
            messages.append(Message(role="tool", tool_call_id=str(item["call_id"]),
                                    content=_output_text(item.get("output", ""))))
        elif kind == "reasoning":
            thinking.extend(_thinking_of(item))
        else:
            _refuse(problems, InvalidRequest(
                f"{where}: input item type {kind!r} is not served through ax; send messages, function_call, "
                f"function_call_output or reasoning items", param=f"{where}.type"))
    return messages


def _tools(tools: list[dict[str, Any]], problems: Problems) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            _refuse(problems, InvalidRequest(
                f"tools.{i}: {tool.get('type')!r} tools are hosted by OpenAI and not served through ax; "
                f"send function tools", param=f"tools.{i}.type"))
            continue
        if not tool.get("name"):
            raise InvalidRequest(f"tools.{i}: a function tool needs a name", param=f"tools.{i}.name")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("parameters") or
                              {"type": "object", "properties": {}}}
        if tool.get("description"):
            fn["description"] = tool["description"]
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(f"tool_choice must be auto, none, required or a function, not {choice!r}",
                                 param="tool_choice")
        return choice
    if choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": str(choice["name"])}}
    raise InvalidRequest("tool_choice: only {\"type\": \"function\", \"name\": …} is served through ax",
                         param="tool_choice")


def _response_format(text: dict[str, Any]) -> dict[str, Any] | None:
    fmt = text.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest("text.format: a json_schema format needs a schema object", param="text.format.schema")
        schema: dict[str, Any] = {"name": str(fmt.get("name") or "response"), "schema": fmt["schema"]}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(f"text.format.type {fmt.get('type')!r} is unknown; use text, json_object or json_schema",
                         param="text.format.type")


def to_chat_request(request: ResponsesRequest, history: list[Message], problems: Problems = None) -> ChatRequest:
    """ax's chat request for a Responses request that continues ``history``.

    With ``problems`` (a list), what cannot be translated (hosted tools, file
    inputs, items of hosted tools…) is left out and its refusal kept there:
    the request then goes upstream natively, and the translation only sizes,
    routes and keys it.

    Raises:
        InvalidRequest: something ax cannot serve (hosted tools, file inputs,
            background mode); the message names the field.
    """
    if request.background:
        raise InvalidRequest("background responses are not served through ax; leave background out",
                             param="background")
    if (request.model_extra or {}).get("conversation") is not None:
        # OpenAI keeps conversations itself; translated, the turns would be answered without their history.
        _refuse(problems, InvalidRequest("conversation is kept by OpenAI and not served through ax here; chain "
                                         "turns with previous_response_id instead", param="conversation"))
    if (request.model_extra or {}).get("top_logprobs") is not None:
        _refuse(problems, InvalidRequest("top_logprobs is not served on /v1/responses through ax; ask "
                                         "/v1/chat/completions with logprobs instead", param="top_logprobs"))
    messages: list[Message] = []
    if request.instructions:
        messages.append(Message(role="system", content=request.instructions))
    messages += history
    messages += input_messages(request.input, problems)
    if not messages and problems:
        # Nothing translates (only items a native upstream reads): an empty turn keeps the request whole for
        # sizing, routing and keying; a translating provider refuses it for its problems.
        messages.append(Message(role="user", content=""))
    data: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream}
    for name in ("temperature", "top_p", "user", "metadata"):
        value = getattr(request, name)
        if value is not None:
            data[name] = value
    if request.max_output_tokens is not None:
        data["max_tokens"] = request.max_output_tokens
    if request.tools:
        data["tools"] = _tools(request.tools, problems) or None
    if request.tool_choice is not None:
        try:
            data["tool_choice"] = _tool_choice(request.tool_choice)
        except InvalidRequest as exc:
            _refuse(problems, exc)
    if request.parallel_tool_calls is not None:
        data["parallel_tool_calls"] = request.parallel_tool_calls
    if request.reasoning is not None and request.reasoning.effort:
        data["reasoning_effort"] = request.reasoning.effort
    if request.text:
        try:
            fmt = _response_format(request.text)
        except InvalidRequest as exc:
            _refuse(problems, exc)
            fmt = None
        if fmt is not None:
            data["response_format"] = fmt
    extra = request.model_extra or {}
    data.update({k: extra[k] for k in _PASSED if k in extra})
    # The chat request's tools are the function tools, in order (hosted ones are left out).
    functions = [i for i, tool in enumerate(request.tools or []) if tool.get("type") == "function"]
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, rename=lambda loc: _wire_path(loc, functions)) from None


def wants_summary(request: ResponsesRequest) -> bool:
    """Whether the request asked for a summary of the model's reasoning (``reasoning.summary``)."""
    return request.reasoning is not None and request.reasoning.summary is not None


def summary_refusal(request: ResponsesRequest, served: list[tuple[str, str]]) -> InvalidRequest | None:
    """Why a translated request's ``reasoning.summary`` cannot be answered truthfully, or None when it can.

    Args:
        request: the Responses request.
        served: (provider, upstream model) of each deployment that may serve it, translated to chat.
    """
    if not wants_summary(request) or not served:
        return None
    if not any(summarises_thinking(model) for _, model in served):
        where = ", ".join(f"{model!r} on {provider!r}" for provider, model in served)
        return InvalidRequest(
            f"reasoning.summary: {request.model!r} is served translated to chat ({where}), which shares no "
            f"summary of its reasoning (Claude 4+ and Gemini 2.5+ do; OpenAI models give theirs through a "
            f"provider set to responses = \"native\"); leave reasoning.summary out — any reasoning the model shares "
            f"comes as the reasoning item's content", param="reasoning.summary")
    effort = request.reasoning.effort if request.reasoning else None
    if effort in (None, "none"):
        return InvalidRequest(
            f"reasoning.summary: {request.model!r} thinks through ax only when reasoning.effort asks it to, so "
            f"there would be nothing to summarise; add reasoning.effort ({', '.join(REASONING_EFFORTS[1:])})",
            param="reasoning.summary")
    return None


def _wire_path(loc: tuple[int | str, ...], functions: list[int]) -> tuple[int | str, ...]:
    """Where a field of the translated chat request is in the Responses request (``functions``: where its tools
    are in the request's)."""
    match loc:
        case ("tools", int() as i, "function", *rest) if i < len(functions):
            return ("tools", functions[i], *rest)
        case ("tool_choice", "function", *rest):
            return ("tool_choice", *rest)
        case ("response_format", "json_schema", *rest) | ("response_format", *rest):
            return ("text", "format", *rest)
        case ("max_tokens", *rest):
            return ("max_output_tokens", *rest)
        case ("reasoning_effort", *rest):
            return ("reasoning", "effort", *rest)
    return loc


# -- answer -----------------------------------------------------------------------------------


def item_id(prefix: str) -> str:
    """A new output item id (``msg_…``, ``fc_…``, ``rs_…``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


#: The Responses API's ``usage`` for ax's `Usage` (one encoder, shared with the simulated upstream).
usage_body = responses_usage_body

def message_item(ident: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant ``message`` output item with one ``output_text`` part."""
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status != "in_progress" \
        else []
    return {"type": "message", "id": ident, "status": status, "role": "assistant", "content": content}


def function_call_item(ident: str, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """A ``function_call`` output item for an OpenAI-shaped tool call."""
    fn = call.get("function") or {}
    arguments = fn.get("arguments")
    return {"type": "function_call", "id": ident, "call_id": str(call.get("id") or ""),
            "name": str(fn.get("name") or ""),
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
            "status": status}


def reasoning_item(ident: str, text: str, thinking_blocks: list[dict[str, Any]] | None, *,
                   summarised: bool = False) -> dict[str, Any]:
    """A ``reasoning`` output item; Anthropic's signed blocks ride in ``encrypted_content``.

    ``text`` is the item's ``summary`` when ``summarised`` (the model's thinking is a summary and one was
    asked for), its ``content`` otherwise.
    """
    item: dict[str, Any] = {"type": "reasoning", "id": ident}
    if summarised:
        item["summary"] = [{"type": "summary_text", "text": text}] if text else []
    else:
        item["summary"] = []
        item["content"] = [{"type": "reasoning_text", "text": text}] if text else []
    if thinking_blocks:
        item["encrypted_content"] = base64.b64encode(json.dumps(thinking_blocks).encode()).decode()
    return item


def output_items(
    response: ChatResponse, *, summary: bool = False, behind: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The ``output`` of a complete answer: reasoning, message, function calls.

    ``summary``: the request asked for ``reasoning.summary`` (honoured when the answering model's thinking is a
    summary); ``behind``: the model an upstream id serves, where the id does not say (a Bedrock ARN).
    """
    items: list[dict[str, Any]] = []
    if response.reasoning or response.thinking_blocks:
        served = (behind or {}).get(response.model, response.model)
        items.append(reasoning_item(item_id("rs"), response.reasoning, response.thinking_blocks,
                                    summarised=summary and summarises_thinking(served)))
    if response.content or not response.tool_calls:
        items.append(message_item(item_id("msg"), response.content, status_of(response.finish_reason)))
    items += [function_call_item(item_id("fc"), call) for call in response.tool_calls or ()]
    return items


def response_body(
    request: ResponsesRequest,
    response_id: str,
    created: int,
    *,
    model: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    status: str,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A ``response`` object: the request's settings echoed, the output, the usage."""
    incomplete = {"reason": "max_output_tokens"} if finish_reason == "length" else None
    if finish_reason == "content_filter":
        incomplete = {"reason": "content_filter"}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": request.reasoning.effort if request.reasoning else None,
                      "summary": request.reasoning.summary if request.reasoning else None},
        "store": request.store,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "text": request.text or {"format": {"type": "text"}},
        "tool_choice": request.tool_choice or "auto",
        "tools": request.tools or [],
        "truncation": "disabled",
        "usage": usage_body(usage) if usage is not None else None,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def status_of(finish_reason: str) -> str:
    """``completed``, or ``incomplete`` when the answer was cut (length, content filter)."""
    return "incomplete" if finish_reason in ("length", "content_filter") else "completed"


def conversation_after(history: list[Message], request: ResponsesRequest,
                       output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a later ``previous_response_id`` continues from: history, this input, this output.

    Instructions are left out (each request brings its own), and so are
    items only a native upstream understands (hosted tools' calls, files):
    the conversation is kept as chat, so any provider can continue it.
    """
    messages = [*history, *input_messages(request.input, []), *output_messages(output)]
    return [m.model_dump(exclude_none=True) for m in messages]


#: The output items a stored conversation keeps (as chat), and a later turn's input goes on from.
CONTINUED = ("message", "function_call", "reasoning")


def output_messages(output: list[dict[str, Any]]) -> list[Message]:
    """The messages a response's ``output`` adds to its stored conversation."""
    return input_messages([_as_input(item) for item in output if item.get("type") in CONTINUED], [])


# -- native pass-through ------------------------------------------------------------------------

#: Request fields that do not change the answer, left out of a native request's cache key
#: (the model, input and instructions are keyed through the chat translation).
_UNKEYED = frozenset({"model", "input", "instructions", "stream", "stream_options", "store", "previous_response_id",
                      "user", "metadata", "service_tier", "prompt_cache_key", "safety_identifier"})


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "image_url":
        image = part.get("image_url") or {}
        out = {"type": "input_image", "image_url": image.get("url")}
        return {**out, "detail": image["detail"]} if image.get("detail") else out
    return {"type": "input_text", "text": str(part.get("text", ""))}


def history_items(history: list[Message]) -> list[dict[str, Any]]:
    """A stored conversation as Responses input items, for an upstream that is sent the whole of it.

    Anthropic's thinking blocks stay behind: only Anthropic reads them.
    """
    items: list[dict[str, Any]] = []
    for m in history:
        if m.role == "tool":
            items.append({"type": "function_call_output", "call_id": m.tool_call_id or "", "output": m.text()})
            continue
        if m.role == "assistant":
            if m.text():
                items.append({"type": "message", "role": "assistant", "content": m.text()})
            for call in m.tool_calls or ():
                fn = call.get("function") or {}
                items.append({"type": "function_call", "call_id": str(call.get("id") or ""),
                              "name": str(fn.get("name") or ""), "arguments": str(fn.get("arguments") or "{}")})
            continue
        content: Any = m.content if isinstance(m.content, str) else [_input_part(p) for p in m.content or ()]
        items.append({"type": "message", "role": m.role if m.role != "function" else "user", "content": content})
    return items


def native_request(body: dict[str, Any], history: list[Message], problems: list[InvalidRequest]) -> NativeRequest:
    """The client's Responses body as it goes to an upstream that speaks the API.

    ax keeps the conversation, so ``previous_response_id`` becomes the
    stored turns put before ``input``, and the upstream is asked not to
    store the response (``store: false``). ``problems`` are what the chat
    translation left out: such a request is served by native upstreams only,
    and its whole input keys the cache.
    """
    sent = {k: v for k, v in body.items() if k != "previous_response_id"}
    sent["store"] = False
    if isinstance(sent.get("metadata"), dict) and "ax_cache" in sent["metadata"]:
        # ax's cache directive is for ax, as on chat.
        sent["metadata"] = {k: v for k, v in sent["metadata"].items() if k != "ax_cache"}
    if history:
        given = sent["input"]
        sent["input"] = [*history_items(history),
                         *([{"type": "message", "role": "user", "content": given}] if isinstance(given, str)
                           else given)]
    keyed = {k: v for k, v in sorted(sent.items()) if k not in _UNKEYED}
    lossy = bool(problems) or (isinstance(body["input"], list) and any(
        isinstance(item, dict) and item.get("type") == "reasoning" for item in body["input"]))
    if lossy:
        keyed["input"] = sent["input"]
    first = problems[0] if problems else None
    return NativeRequest(api="responses", body=sent, keyed=keyed, problem=first.message if first else None,
                         param=first.param if first else None)


def native_body(native: dict[str, Any], request: ResponsesRequest, response_id: str) -> dict[str, Any]:
    """An upstream's ``response`` object as ax returns it: ax's id, and ax's own storage and continuation.

    ``metadata`` is the request's (a cached answer may have been made for another).
    """
    return {**native, "id": response_id, "store": request.store, "previous_response_id": request.previous_response_id,
            "metadata": {k: v for k, v in (request.metadata or {}).items() if k != "ax_cache"}, "user": request.user}


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("type") == "message":
        return {"type": "message", "role": "assistant", "content": item.get("content") or []}
    return item
