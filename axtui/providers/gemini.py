"""Google Gemini's generateContent API, spoken from ax's OpenAI-shaped requests.

Requests are converted: messages become ``contents`` (roles ``user`` and
``model``; tool results are ``functionResponse`` parts), system messages
become ``systemInstruction``, sampling settings ``generationConfig``, and
function tools ``functionDeclarations``. Streams use
``:streamGenerateContent?alt=sse`` and end with a chunk naming a
``finishReason``.

Usage: ``promptTokenCount`` already includes ``cachedContentTokenCount``;
thoughts (``thoughtsTokenCount``) are billed as output, so they are added
to the candidates' tokens and kept as ``reasoning_tokens`` too.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from axtui.errors import MalformedResponse
from axtui.providers._http import HTTPProvider
from axtui.providers._wire import OPENAI_ONLY_PARAMS, SHAPE_ERRORS, refuse_choices_and_logprobs, strict_json
from axtui.providers.reasoning import gemini_budget
from axtui.tokens import estimate_tokens
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Message, Usage, token_count

__all__ = ["GeminiProvider", "gemini_usage", "generate_body"]

_CONTENT_FILTER = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}

#: Request fields that belong in generationConfig when passed through.
_GENERATION_EXTRAS = {
    "top_k": "topK",
    "topK": "topK",
    "thinking_config": "thinkingConfig",
    "thinkingConfig": "thinkingConfig",
}


def gemini_usage(meta: Mapping[str, Any]) -> Usage:
    """ax's `Usage` from Gemini's ``usageMetadata``.

    Tokens of tool results Gemini fetched itself (``toolUsePromptTokenCount``)
    are billed as input, so they count as input here.
    """
    thoughts = token_count(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=token_count(token_count(meta.get("promptTokenCount")) + token_count(meta.get("toolUsePromptTokenCount"))),
        output_tokens=token_count(token_count(meta.get("candidatesTokenCount")) + thoughts),
        cached_input_tokens=token_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _finish(reason: str | None, has_calls: bool) -> str:
    if reason in _CONTENT_FILTER:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


# --- request conversion ------------------------------------------------------------


def _model_path(model: str) -> str:
    return "/models/" + model.removeprefix("models/")


def _parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        elif kind in ("image_url", "input_image"):
            image = part.get("image_url")
            url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
            if url.startswith("data:"):
                header, _, data = url.partition(",")
                mime = header.removeprefix("data:").split(";")[0] or "image/png"
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            else:
                mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime = f"audio/{audio.get('format') or 'wav'}"
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data", "")}})
        else:
            # Gemini-native parts ({"inlineData": …}, {"fileData": …}) pass as they are.
            parts.append(dict(part))
    return parts


def _function_call_part(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        args = strict_json(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        args = {"arguments": arguments}
    part: dict[str, Any] = {"functionCall": {"name": function.get("name", ""), "args": args}}
    # Gemini 3 refuses a history whose function calls lost their thought signature.
    signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(m: Message, names: Mapping[str, str]) -> dict[str, Any]:
    text = m.content if isinstance(m.content, str) else m.text()
    try:
        result = strict_json(text)
    except ValueError:
        result = None
    response = result if isinstance(result, dict) else {"result": text}
    name = names.get(m.tool_call_id or "") or m.name or m.tool_call_id or ""
    return {"functionResponse": {"name": name, "response": response}}


def _contents(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system parts, contents); consecutive turns of one role are merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, which Gemini matches on
    for m in messages:
        if m.role in ("system", "developer"):
            system.extend(_parts(m.content))
            continue
        if m.role == "assistant":
            role = "model"
            parts = _parts(m.content)
            for call in m.tool_calls or ():
                names[str(call.get("id", ""))] = str((call.get("function") or {}).get("name", ""))
                parts.append(_function_call_part(call))
        elif m.role in ("tool", "function"):
            role, parts = "user", [_function_response(m, names)]
        else:
            role, parts = "user", _parts(m.content)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = {"required": "ANY", "none": "NONE"}.get(choice, "AUTO")
        return {"functionCallingConfig": {"mode": mode}}
    name = (choice.get("function") or {}).get("name")
    if name:
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def generate_body(request: ChatRequest, provider: str = "gemini") -> dict[str, Any]:
    """The JSON body of a generateContent call for an OpenAI-shaped request.

    Raises:
        UnsupportedParameter: ``n > 1``, ``logprobs`` or ``top_logprobs``
            (ax returns Gemini's first candidate only).
    """
    refuse_choices_and_logprobs(request, provider, "Gemini")
    system, contents = _contents(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    for name, value in (
        ("temperature", request.temperature),
        ("topP", request.top_p),
        ("maxOutputTokens", request.output_limit),
        ("seed", request.seed),
        ("presencePenalty", request.presence_penalty),
        ("frequencyPenalty", request.frequency_penalty),
        ("candidateCount", request.n),
    ):
        if value is not None:
            config[name] = value
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    fmt = request.response_format or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    if request.tools:
        declarations = []
        for tool in request.tools:
            fn = tool.get("function")
            if tool.get("type") == "function" and isinstance(fn, Mapping):
                decl: dict[str, Any] = {"name": fn["name"], "description": fn.get("description", "")}
                if fn.get("parameters"):
                    # Full JSON Schema; the older `parameters` field takes only an OpenAPI subset.
                    decl["parametersJsonSchema"] = fn["parameters"]
                declarations.append(decl)
        # Gemini-native tools ({"googleSearch": {}}, …) pass as they are.
        tools = [{"functionDeclarations": declarations}] if declarations else []
        tools += [dict(t) for t in request.tools if t.get("type") != "function"]
        if tools:
            body["tools"] = tools
        tool_config = _tool_config(request.tool_choice)
        if tool_config:
            body["toolConfig"] = tool_config
    for key, value in request.passthrough().items():
        if key in OPENAI_ONLY_PARAMS:
            continue
        if key == "thinking" and isinstance(value, Mapping):
            # Anthropic's setting, from a /v1/messages client: Gemini's thinking budget.
            if value.get("type") == "enabled" and isinstance(value.get("budget_tokens"), int):
                config["thinkingConfig"] = {"thinkingBudget": value["budget_tokens"], "includeThoughts": True}
            continue
        if key in _GENERATION_EXTRAS:
            config[_GENERATION_EXTRAS[key]] = value
        elif key in ("generationConfig", "generation_config") and isinstance(value, Mapping):
            config.update(value)
        else:
            body[key] = value
    budget = gemini_budget(request.reasoning_effort)
    if budget is not None and "thinkingConfig" not in config:
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    if config:
        body["generationConfig"] = config
    return body


# --- the adapter -----------------------------------------------------------------------


def _tool_call(call: Mapping[str, Any], signature: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}"),
        "type": "function",
        "function": {"name": str(call.get("name", "")), "arguments": json.dumps(call.get("args") or {})},
    }
    if signature:
        # Where Gemini's own OpenAI-compatible API keeps it, so it survives a round trip.
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def _one_call_only(request: ChatRequest) -> bool:
    # Gemini has no switch for parallel calls; ax keeps the first when the caller forbade them.
    return request.passthrough().get("parallel_tool_calls") is False


class GeminiProvider(HTTPProvider):
    """Google's Gemini API (key from ``GEMINI_API_KEY`` by default)."""

    kind: ClassVar[str] = "gemini"
    default_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com/v1beta"
    stream_end_marker: ClassVar[str] = "its end marker (a chunk with finishReason)"

    def auth_headers(self) -> dict[str, str]:
        """``x-goog-api-key``.

        Raises:
            ProviderAuthError: the key's variable is unset.
        """
        return {"x-goog-api-key": self.api_key() or ""}

    def _candidate(self, data: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]], str | None, str]:
        """(text, tool calls, finish reason, thoughts) of the first candidate of one answer."""
        candidates = data.get("candidates") or []
        if not candidates:
            # A prompt blocked before any answer: no candidates, a blockReason.
            blocked = (data.get("promptFeedback") or {}).get("blockReason")
            return "", [], "SAFETY" if blocked else None, ""
        candidate = candidates[0]
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                calls.append(_tool_call(part["functionCall"], part.get("thoughtSignature")))
            elif part.get("text") and part.get("thought"):
                thoughts.append(str(part["text"]))
            elif part.get("text"):
                text.append(str(part["text"]))
        reason = candidate.get("finishReason")
        return "".join(text), calls, str(reason) if reason else None, "".join(thoughts)

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer from ``POST /models/{model}:generateContent``."""
        path = _model_path(deployment.upstream_model) + ":generateContent"
        data = await self._request("POST", path, payload=generate_body(request, self.name))
        try:
            text, calls, reason, thoughts = self._candidate(data)
            usage = gemini_usage(data.get("usageMetadata") or {})
        except SHAPE_ERRORS as exc:
            raise self._malformed("an answer", exc) from None
        if reason is None and not (text or calls):
            # No candidate, and no blocked prompt to say why: nothing answered (a stream's chunk may be so; an
            # answer is not), and an empty answer would be served and cached as one.
            raise self._malformed("an answer without candidates or a blockReason")
        if _one_call_only(request):
            calls = calls[:1]
        return ChatResponse(
            content=text,
            model=str(data.get("modelVersion") or deployment.upstream_model),
            usage=usage,
            finish_reason=_finish(reason, bool(calls)),
            tool_calls=calls or None,
            id=str(data.get("responseId") or ""),
            provider=self.name,
            reasoning=thoughts,
        )

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks from ``:streamGenerateContent?alt=sse``.

        Text deltas; each function call whole, as one tool-call delta; a
        chunk with the finish reason and one with the usage.

        Raises:
            StreamInterrupted: the stream ended before a chunk with a finishReason.
        """
        path = _model_path(deployment.upstream_model) + ":streamGenerateContent"
        model, ident = deployment.upstream_model, ""
        calls_seen = 0
        async with self._open_stream(path, generate_body(request, self.name), params={"alt": "sse"}) as events:
            async for event in events:
                data = self._event_json(event)
                if data.get("error"):
                    raise self._event_error(data)
                model = str(data.get("modelVersion") or model)
                ident = str(data.get("responseId") or ident)
                try:
                    text, calls, reason, thoughts = self._candidate(data)
                    meta = data.get("usageMetadata")
                except SHAPE_ERRORS as exc:
                    raise self._malformed("a stream chunk", exc) from None
                if thoughts:
                    yield Chunk(reasoning=thoughts, model=model, id=ident)
                if text:
                    yield Chunk(delta=text, model=model, id=ident)
                if calls and _one_call_only(request):
                    calls = calls[: max(0, 1 - calls_seen)]
                if calls:
                    for call in calls:
                        call["index"] = calls_seen
                        calls_seen += 1
                    yield Chunk(tool_calls=calls, model=model, id=ident)
                if reason:
                    yield Chunk(finish_reason=_finish(reason, calls_seen > 0), model=model, id=ident)
                    # Each chunk repeats the running usage; the last one is the total.
                    if isinstance(meta, Mapping):
                        yield Chunk(usage=gemini_usage(meta), model=model, id=ident)
                    return
            raise self._interrupted()

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Vectors from ``POST /models/{model}:batchEmbedContents``, in input order.

        Gemini reports no token counts for embeddings, so they are estimated.
        """
        name = "models/" + model.removeprefix("models/")
        shape = {"outputDimensionality": dimensions} if dimensions is not None else {}
        payload = {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **shape} for t in inputs]}
        data = await self._request("POST", _model_path(model) + ":batchEmbedContents", payload=payload)
        try:
            vectors = [[float(x) for x in row["values"]] for row in data["embeddings"]]
        except SHAPE_ERRORS as exc:
            raise self._malformed("an embeddings answer", exc) from None
        if len(vectors) != len(inputs):
            raise MalformedResponse(
                f"provider {self.name!r} returned {len(vectors)} vectors for {len(inputs)} inputs",
                provider=self.name,
            )
        usage = Usage(input_tokens=sum(estimate_tokens(t) for t in inputs), estimated=True)
        return EmbeddingResponse(vectors=vectors, model=model, usage=usage)

    async def list_models(self) -> list[str]:
        """Model names from ``GET /models`` (without the ``models/`` prefix), every page."""
        models: list[str] = []
        params = {"pageSize": "1000"}
        for _ in range(50):
            data = await self._request("GET", "/models", params=params)
            try:
                models.extend(str(row["name"]).removeprefix("models/") for row in data["models"])
            except SHAPE_ERRORS as exc:
                raise self._malformed("a model list", exc) from None
            token = data.get("nextPageToken")
            if not token:
                break
            params = {"pageSize": "1000", "pageToken": str(token)}
        return models
