"""Gemini's wire format: generateContent, its SSE stream, embeddings, models.

Served at ``/v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (``?alt=sse`` for server-sent events, else one
JSON array), ``:embedContent``, ``:batchEmbedContents`` and
``GET /v1beta/models``. Each streamed event is a whole
``GenerateContentResponse``; the last one carries ``finishReason`` and the
final ``usageMetadata`` (there is no other end marker). As upstream, zero
counts are left out of ``usageMetadata``; ``candidatesTokenCount`` excludes
the ``thoughtsTokenCount``, and both together stay within
``maxOutputTokens``. ``responseMimeType: application/json`` gets JSON, of
``responseJsonSchema`` (or the OpenAPI-style ``responseSchema``) when given.
Errors are ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from axtui.errors import ProviderError, ProviderRateLimited
from axtui.providers.sim.simulate import ChatPlan, EmbedPlan, thinking_signature
from axtui.providers.sim.spec import ProviderProfile
from axtui.providers.sim.wire import ChatCall, EmbedCall, Wire, bad_request, chat_request, overflow_of, sse
from axtui.types import Usage

__all__ = ["GeminiWire"]

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _usage(usage: Usage, *, final: bool) -> dict[str, Any]:
    visible = usage.output_tokens - usage.reasoning_tokens
    meta: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if final:
        meta["candidatesTokenCount"] = visible
        if usage.reasoning_tokens:
            meta["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_input_tokens:
        meta["cachedContentTokenCount"] = usage.cached_input_tokens
    meta["totalTokenCount"] = usage.input_tokens + (usage.output_tokens if final else 0)
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.input_tokens}]
    return meta


def _part(part: Any) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise bad_request("contents: each part must be an object")
    if "text" in part:
        return {"type": "text", "text": str(part["text"])}
    if "inlineData" in part or "inline_data" in part or "fileData" in part or "file_data" in part:
        return {"type": "image"}
    # functionCall / functionResponse count by their JSON.
    return {"type": "text", "text": json.dumps(part)}


def _declaration(decl: Any) -> dict[str, Any]:
    """A function declaration as an OpenAI function (its schema under ``parameters``)."""
    if not isinstance(decl, dict):
        raise bad_request("tools: each function declaration must be an object")
    schema = decl.get("parametersJsonSchema") or decl.get("parameters_json_schema") or decl.get("parameters") or {}
    return {"type": "function", "function": {"name": decl.get("name", ""), "parameters": schema}}


def _tool_choice(config: Any) -> Any:
    calling = (config or {}).get("functionCallingConfig") or (config or {}).get("function_calling_config") or {}
    mode = str(calling.get("mode", "AUTO")).upper()
    allowed = calling.get("allowedFunctionNames") or calling.get("allowed_function_names") or []
    if mode == "ANY" and len(allowed) == 1:
        return {"type": "function", "function": {"name": allowed[0]}}
    return {"ANY": "required", "NONE": "none"}.get(mode)


def _response_format(config: dict[str, Any]) -> dict[str, Any] | None:
    """``responseMimeType`` and ``responseJsonSchema`` (or the OpenAPI-style ``responseSchema``) as a ``response_format``."""
    mime = config.get("responseMimeType") or config.get("response_mime_type")
    schema = next((config[k] for k in ("responseJsonSchema", "response_json_schema", "responseSchema",
                                       "response_schema") if config.get(k) is not None), None)
    if mime != "application/json":
        return None
    if isinstance(schema, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    return {"type": "json_object"}


def _model_of(path_model: str | None) -> str:
    if not path_model:
        raise bad_request("the URL must name a model: /v1beta/models/{model}:generateContent")
    return path_model.removeprefix("models/")


class GeminiWire(Wire):
    """Google's Gemini API (Generative Language, v1beta)."""

    name = "gemini"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A generateContent body as a `ChatCall`; the model comes from the URL."""
        model = _model_of(path_model)
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            raise bad_request("* GenerateContentRequest.contents: contents is not specified")
        messages: list[dict[str, Any]] = []
        system = body.get("systemInstruction") or body.get("system_instruction")
        if isinstance(system, dict):
            messages.append({"role": "system", "content": [_part(p) for p in system.get("parts") or []]})
        for content in body["contents"]:
            if not isinstance(content, dict):
                raise bad_request("contents: each content must be an object with 'parts'")
            role = "assistant" if content.get("role") == "model" else "user"
            parts = [p for p in content.get("parts") or [] if isinstance(p, dict)]
            if role == "user" and parts and all("functionResponse" in p or "function_response" in p for p in parts):
                role = "tool"  # function results: the model answers them in words
            messages.append({"role": role, "content": [_part(p) for p in content.get("parts") or []]})
        config = body.get("generationConfig") or body.get("generation_config") or {}
        if not isinstance(config, dict):
            raise bad_request("generationConfig must be an object")
        tools = [_declaration(d) for t in body.get("tools") or [] if isinstance(t, dict)
                 for d in t.get("functionDeclarations") or t.get("function_declarations") or []]
        data: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": config.get("maxOutputTokens") or config.get("max_output_tokens"),
            "stop": config.get("stopSequences") or config.get("stop_sequences") or None,
            "temperature": config.get("temperature"),
            "top_p": config.get("topP") or config.get("top_p"),
            "tools": tools or None,
            "response_format": _response_format(config),
            "tool_choice": _tool_choice(body.get("toolConfig") or body.get("tool_config")),
        }
        thinking = config.get("thinkingConfig") or config.get("thinking_config")
        if isinstance(thinking, dict):
            data["thinkingConfig"] = thinking
        return ChatCall(request=chat_request(data), model=model, stream=bool(stream))

    def _response(self, plan: ChatPlan, call: ChatCall, text: str, *, final: bool,
                  parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts if parts is not None else [{"text": text}],
                                                 "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = _FINISH.get(plan.finish_reason, "STOP")
        return {
            "candidates": [candidate],
            "usageMetadata": _usage(plan.usage, final=final),
            "modelVersion": call.model,
            "responseId": plan.response_id,
        }

    @staticmethod
    def _thought(plan: ChatPlan) -> list[dict[str, Any]]:
        return [{"text": plan.thinking, "thought": True}] if plan.thinking else []

    @staticmethod
    def _calls(plan: ChatPlan) -> list[dict[str, Any]]:
        # Gemini sends each function call whole, the first with a thought signature.
        parts: list[dict[str, Any]] = []
        for i, c in enumerate(plan.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": c.name, "args": json.loads(c.arguments)}}
            if i == 0:
                part["thoughtSignature"] = thinking_signature(c.arguments)
            parts.append(part)
        return parts

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A ``GenerateContentResponse`` with one candidate: thoughts (when asked), text or function calls."""
        text = [{"text": plan.text}] if plan.text or not plan.tool_calls else []
        return self._response(plan, call, plan.text, final=True,
                              parts=self._thought(plan) + text + self._calls(plan))

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """The thoughts, when asked for; otherwise nothing (each Gemini event is a whole response)."""
        if not plan.thinking:
            return []
        return [sse(self._response(plan, call, "", final=False, parts=self._thought(plan)), crlf=True)]

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """One response with every function call, finish reason and usage (Gemini does not split calls)."""
        if not plan.tool_calls:
            return []
        return [sse(self._response(plan, call, "", final=True, parts=self._calls(plan)), crlf=True)]

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """A response with one piece; the last one carries finish and usage."""
        return sse(self._response(plan, call, piece, final=last), crlf=True)

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Nothing more: the last piece already ended the stream."""
        return []

    def streams_events(self, query: Mapping[str, str]) -> bool:
        """Only ``?alt=sse`` streams events; otherwise Gemini sends one JSON array."""
        return query.get("alt") == "sse"

    def stream_json(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """The stream's responses as one JSON array."""
        if plan.tool_calls:
            return [self._response(plan, call, "", final=True, parts=self._calls(plan))]
        last = len(plan.chunks) - 1
        return [self._response(plan, call, piece, final=i == last) for i, piece in enumerate(plan.chunks)]

    def stream_garbage(self, plan: ChatPlan) -> bytes:
        """An event whose data is cut mid-object."""
        return b'data: {"candidates": [{"content": {"parts": [{"text": "\r\n\r\n'

    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """``embedContent`` (one content) or ``batchEmbedContents`` (``requests``)."""
        model = _model_of(path_model)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        requests = body.get("requests") if batch else [body]
        if not isinstance(requests, list) or not requests:
            raise bad_request("* BatchEmbedContentsRequest.requests: at least one request is required")
        inputs: list[str] = []
        dims: int | None = None
        for r in requests:
            content = r.get("content") if isinstance(r, dict) else None
            if not isinstance(content, dict):
                raise bad_request("* EmbedContentRequest.content: content is not specified")
            inputs.append("\n".join(str(p.get("text", "")) for p in content.get("parts") or [] if isinstance(p, dict)))
            dims = r.get("outputDimensionality") or r.get("output_dimensionality") or dims
        return EmbedCall(model=model, inputs=inputs, dimensions=dims)

    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """``{"embeddings": [{"values"}]}`` or, for one, ``{"embedding": {"values"}}``."""
        if batch:
            return {"embeddings": [{"values": v} for v in plan.vectors]}
        return {"embedding": {"values": plan.vectors[0]}}

    def models_body(self, providers: list[ProviderProfile]) -> Any:
        """``{"models": [...]}`` with limits and supported methods."""
        models: dict[str, Any] = {}
        for p in providers:
            for m in p.models:
                methods = ["embedContent", "batchEmbedContents"] if m.is_embedding else [
                    "generateContent", "streamGenerateContent", "countTokens"]
                models.setdefault(m.name, {
                    "name": f"models/{m.name}",
                    "version": "001",
                    "displayName": m.name,
                    "inputTokenLimit": m.context_window,
                    "outputTokenLimit": m.max_output,
                    "supportedGenerationMethods": methods,
                    "thinking": m.reasoning,
                })
        return {"models": list(models.values())}

    def error_body(self, exc: ProviderError, status: int) -> Any:
        """``{"error": {"code", "message", "status"}}``; a 429 says when to retry."""
        overflow = overflow_of(exc)
        message = exc.message
        if overflow is not None:
            message = (
                f"The input token count ({overflow.prompt_tokens + overflow.output_tokens}) exceeds the maximum "
                f"number of tokens allowed ({overflow.context_window})."
            )
        error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        if isinstance(exc, ProviderRateLimited) and exc.retry_after:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": f"{exc.retry_after:g}s"}]
        return {"error": error}
