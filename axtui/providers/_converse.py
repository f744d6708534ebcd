"""Bedrock's Converse wire format, spoken from ax's OpenAI-shaped requests.

One shape for every model family on Bedrock: ``messages`` of content
blocks (``text``, ``image``, ``toolUse``, ``toolResult``), ``system``
blocks, ``inferenceConfig`` (``maxTokens``, ``temperature``, ``topP``,
``stopSequences``) and ``toolConfig`` (``toolSpec`` per function). Turns
must alternate between ``user`` and ``assistant``, so consecutive turns of
one role (tool results after a call, say) are merged.

Thinking (Claude on Bedrock): ``reasoning_effort`` becomes
``additionalModelRequestFields.thinking`` with Anthropic's budget (see
`axtui.providers.reasoning`) for ``anthropic.`` model ids; the answer's
``reasoningContent`` blocks come back as Anthropic-shaped thinking blocks,
and go back first in the assistant's turn, signature intact, as Bedrock
requires when tools are in use.

Structured outputs: a ``json_schema`` response format becomes
``outputConfig.textFormat`` (the schema travels as a JSON string). Converse
has no JSON mode, so ``json_object`` is refused, and the call moves on to a
deployment that has one.

Usage: ``inputTokens`` excludes the prompt-cache reads and writes
(``cacheReadInputTokens``, ``cacheWriteInputTokens``); ax's ``input_tokens``
counts every prompt token, so they are added in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from axtui.errors import ProviderBadRequest
from axtui.providers._wire import OPENAI_ONLY_PARAMS, refuse_choices_and_logprobs, refuse_json_object
from axtui.providers.reasoning import anthropic_budget
from axtui.types import ChatRequest, Message, Usage, token_count

__all__ = ["FINISH", "converse_body", "converse_usage", "converse_usage_body", "thinking_block", "tool_call"]

#: maxTokens asked for when thinking needs one and the caller named none (Anthropic's adapter's default).
_DEFAULT_MAX_TOKENS = 4096

#: Converse's stop reasons in ax's (OpenAI's) terms.
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}


def converse_usage(usage: Mapping[str, Any]) -> Usage:
    """ax's `Usage` from Converse's ``usage`` (cache reads and writes added to the input)."""
    fresh = token_count(usage.get("inputTokens"))
    read = token_count(usage.get("cacheReadInputTokens"))
    written = token_count(usage.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=token_count(fresh + read + written),
        output_tokens=token_count(usage.get("outputTokens")),
        cached_input_tokens=read,
        cache_write_tokens=written,
    )


def converse_usage_body(usage: Usage) -> dict[str, int]:
    """Converse's ``usage`` for ax's `Usage`: the inverse of `converse_usage` (the simulated Bedrock uses it)."""
    fresh = max(0, usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens)
    return {
        "inputTokens": fresh,
        "outputTokens": usage.output_tokens,
        "totalTokens": fresh + usage.output_tokens,
        "cacheReadInputTokens": usage.cached_input_tokens,
        "cacheWriteInputTokens": usage.cache_write_tokens,
    }


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call from a ``toolUse`` block."""
    return {
        "id": str(block.get("toolUseId", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": json.dumps(block.get("input") or {})},
    }


def thinking_block(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """An Anthropic-shaped thinking block from a ``reasoningContent`` block (None if it has neither form)."""
    text = block.get("reasoningText")
    if isinstance(text, Mapping):
        out: dict[str, Any] = {"type": "thinking", "thinking": str(text.get("text", ""))}
        if text.get("signature"):
            out["signature"] = str(text["signature"])
        return out
    if block.get("redactedContent") is not None:
        return {"type": "redacted_thinking", "data": str(block["redactedContent"])}
    return None


def _reasoning_content(block: Mapping[str, Any]) -> dict[str, Any] | None:
    if block.get("type") == "thinking":
        text: dict[str, Any] = {"text": str(block.get("thinking", ""))}
        if block.get("signature"):
            text["signature"] = str(block["signature"])
        return {"reasoningContent": {"reasoningText": text}}
    if block.get("type") == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": str(block.get("data", ""))}}
    return None


def _image(part: Mapping[str, Any], provider: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header.removeprefix("data:").split(";")[0]
        fmt = _IMAGE_FORMATS.get(mime)
        if fmt is None:
            raise ProviderBadRequest(
                f"provider {provider!r} (Bedrock) takes PNG, JPEG, GIF or WebP images, not {mime or 'this one'}; "
                "convert the image", provider=provider, http_status=400)
        return {"image": {"format": fmt, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        ext = url.rsplit(".", 1)[-1].lower()
        return {"image": {"format": "jpeg" if ext == "jpg" else ext, "source": {"s3Location": {"uri": url}}}}
    raise ProviderBadRequest(
        f"provider {provider!r} (Bedrock) cannot fetch images by URL ({url[:60]}); send the image inline as a "
        "data: URL, or as an s3:// location", provider=provider, http_status=400)


def _blocks(content: str | list[dict[str, Any]] | None, provider: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(_image(part, provider))
        elif kind is None:
            # Converse-native blocks ({"document": …}, {"cachePoint": …}) pass as they are.
            blocks.append(dict(part))
    return blocks


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        value = {"arguments": arguments}
    return {"toolUse": {"toolUseId": str(call.get("id", "")), "name": str(function.get("name", "")),
                        "input": value if isinstance(value, dict) else {"value": value}}}


def _tool_result(m: Message) -> dict[str, Any]:
    text = m.content if isinstance(m.content, str) else m.text()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    content = [{"json": value}] if isinstance(value, dict) else [{"text": text or "(empty)"}]
    return {"toolResult": {"toolUseId": m.tool_call_id or "", "content": content}}


def _messages(messages: list[Message], provider: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages), consecutive turns of one role merged."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            system.extend(b for b in _blocks(m.content, provider) if "text" in b or "cachePoint" in b)
            continue
        if m.role == "assistant":
            # Thinking goes back first and exactly as it came: its signature is checked.
            thinking = (m.model_extra or {}).get("thinking_blocks") or []
            blocks = [r for b in thinking if isinstance(b, Mapping) and (r := _reasoning_content(b)) is not None]
            role = "assistant"
            blocks += _blocks(m.content, provider) + [_tool_use(call) for call in m.tool_calls or ()]
        elif m.role in ("tool", "function"):
            role, blocks = "user", [_tool_result(m)]
        else:
            role, blocks = "user", _blocks(m.content, provider)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    specs = []
    for tool in request.tools or ():
        fn = tool.get("function")
        if tool.get("type") == "function" and isinstance(fn, Mapping):
            spec: dict[str, Any] = {"name": fn["name"],
                                    "inputSchema": {"json": fn.get("parameters") or {"type": "object"}}}
            if fn.get("description"):
                spec["description"] = fn["description"]
            specs.append({"toolSpec": spec})
    choice = request.tool_choice
    if not specs or choice == "none":
        # Converse has no "none": leaving the tools out is how a model is kept from calling them.
        return None
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, Mapping) and (choice.get("function") or {}).get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


def _output_config(request: ChatRequest) -> dict[str, Any] | None:
    fmt = request.response_format or {}
    spec = fmt.get("json_schema")
    if fmt.get("type") != "json_schema" or not isinstance(spec, Mapping):
        return None
    definition: dict[str, Any] = {"schema": json.dumps(spec.get("schema") or {"type": "object"})}
    for key in ("name", "description"):
        if spec.get(key):
            definition[key] = spec[key]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


def converse_body(request: ChatRequest, provider: str = "bedrock", model: str = "") -> dict[str, Any]:
    """The JSON body of a Converse (or ConverseStream) call; the model is named in the URL.

    ``model`` is the Bedrock model id the call is served by (an ARN's, see
    `axtui.bedrock_ids.model_behind`): its family decides what Claude alone takes.

    Fields ax does not name and Bedrock does not know go to
    ``additionalModelRequestFields`` (``top_k``, say), which the model's
    own API reads.

    Raises:
        UnsupportedParameter: ``n > 1``, ``logprobs``, ``top_logprobs`` or a ``json_object`` response format.
        ProviderBadRequest: an image Bedrock cannot take (by http URL, or of another format).
    """
    refuse_choices_and_logprobs(request, provider, "Bedrock")
    refuse_json_object(request, provider, "Bedrock")
    system, messages = _messages(request.messages, provider)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    for name, value in (("maxTokens", request.output_limit), ("temperature", request.temperature),
                        ("topP", request.top_p)):
        if value is not None:
            inference[name] = value
    if request.stop:
        inference["stopSequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if inference:
        body["inferenceConfig"] = inference
    tools = _tool_config(request)
    if tools:
        body["toolConfig"] = tools
    output = _output_config(request)
    if output:
        body["outputConfig"] = output
    extra: dict[str, Any] = {}
    for key, value in request.passthrough().items():
        if key in OPENAI_ONLY_PARAMS:
            continue
        if key in ("guardrailConfig", "performanceConfig", "promptVariables", "requestMetadata",
                   "additionalModelResponseFieldPaths"):
            body[key] = value
        elif key == "additionalModelRequestFields" and isinstance(value, Mapping):
            extra.update(value)
        else:
            extra[key] = value
    budget = anthropic_budget(request.reasoning_effort) if "anthropic." in model else None
    if budget is not None and "thinking" not in extra:
        extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if isinstance(extra.get("thinking"), Mapping) and extra["thinking"].get("type") == "enabled":
        # Thinking counts inside maxTokens, and Claude refuses a temperature beside it.
        limit = inference.get("maxTokens") or _DEFAULT_MAX_TOKENS
        wanted = int(extra["thinking"].get("budget_tokens") or 0)
        inference["maxTokens"] = limit if limit > wanted else wanted + limit
        inference.pop("temperature", None)
        body["inferenceConfig"] = inference
    if extra:
        body["additionalModelRequestFields"] = extra
    return body
