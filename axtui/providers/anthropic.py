"""Anthropic's Messages API, spoken from ax's OpenAI-shaped requests.

Requests are converted: system and developer messages become the top-level
``system``; assistant tool calls become ``tool_use`` blocks and tool
messages ``tool_result`` blocks; ``image_url`` parts become ``image``
blocks; ``max_tokens`` (required here) defaults to 4096. A request that
came through ax's own Messages API (``/v1/messages``) is not converted:
the client's body goes upstream as it was sent, with the deployment's
model and the client's ``anthropic-beta`` header (see
`axtui.types.NativeRequest`), and its answer comes back whole beside ax's
reading of it (``native``: the message, every block as it came; a stream's
events, and the message they make, `axtui.providers.anthropic_events`).

Usage: Anthropic's ``input_tokens`` leaves out the tokens read from and
written to the prompt cache, which it reports beside it. ax's
``input_tokens`` counts every prompt token, so the three are added up;
``cached_input_tokens`` and ``cache_write_tokens`` keep the parts, and
``cache_write_1h_tokens`` the part of the writes kept for an hour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from axtui.errors import InvalidRequest, ProviderBadRequest
from axtui.providers._http import HTTPProvider
from axtui.providers._wire import (
    OPENAI_ONLY_PARAMS,
    SHAPE_ERRORS,
    UnsupportedParameter,
    refuse_choices_and_logprobs,
    refuse_json_object,
    strict_json,
)
from axtui.providers.anthropic_events import (
    FINISH,
    EventReader,
    anthropic_usage,
    anthropic_usage_body,
    plain_type,
    tool_call,
)
from axtui.providers.openai_responses import upstream_body
from axtui.providers.reasoning import anthropic_budget
from axtui.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    Deployment,
    EmbeddingResponse,
    Message,
)

__all__ = [
    "BETA_HEADER",
    "DEFAULT_MAX_TOKENS",
    "MESSAGES_API",
    "AnthropicProvider",
    "anthropic_usage",
    "anthropic_usage_body",
    "messages_body",
]

#: Anthropic requires max_tokens; this is sent when the caller set none.
DEFAULT_MAX_TOKENS = 4096
ANTHROPIC_VERSION = "2023-06-01"

#: The `NativeRequest` API name of a request that came through ax's Messages API.
MESSAGES_API = "messages"
#: The header that switches on Anthropic's beta features, which a Messages client's request keeps upstream.
BETA_HEADER = "anthropic-beta"

#: The fields of a Messages body that count_tokens takes.
_COUNTED = frozenset(("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"))



# --- request conversion ------------------------------------------------------------


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Content blocks for a message's content; empty text is dropped (Anthropic refuses it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if part.get("text"):
                block = {"type": "text", "text": str(part["text"])}
                if "cache_control" in part:
                    block["cache_control"] = part["cache_control"]
                blocks.append(block)
        elif kind in ("image_url", "input_image"):
            block = _image_block(part)
            if "cache_control" in part:
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        else:
            # Anthropic-native blocks (image, document, …) pass as they are.
            blocks.append(dict(part))
    return blocks


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = strict_json(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        raise InvalidRequest(
            f"tool call {call.get('id')!r} has arguments that are not JSON; Anthropic needs a JSON object",
            param="messages",
        ) from None
    return {"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""), "input": parsed}


def _convert_messages(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages); consecutive turns of one role are merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            system.extend(_blocks(m.content))
            continue
        if m.role in ("tool", "function"):
            role = "user"
            result = m.content if isinstance(m.content, str) else _blocks(m.content)
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id or m.name or "", "content": result}]
        elif m.role == "assistant":
            role = "assistant"
            # Thinking goes back first and exactly as it came: Anthropic checks its signature.
            thinking = (m.model_extra or {}).get("thinking_blocks") or []
            blocks = [dict(b) for b in thinking if isinstance(b, dict)]
            blocks += _blocks(m.content) + [_tool_use(c) for c in m.tool_calls or ()]
        else:
            role = "user"
            blocks = _blocks(m.content)
        if not blocks:
            continue
        cache_control = (m.model_extra or {}).get("cache_control")
        if cache_control:
            blocks[-1] = {**blocks[-1], "cache_control": cache_control}
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        if tool.get("type") == "function" and isinstance(tool.get("function"), Mapping):
            fn = tool["function"]
            out: dict[str, Any] = {
                "name": fn["name"],
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            if fn.get("description"):
                out["description"] = fn["description"]
            if "cache_control" in tool:
                out["cache_control"] = tool["cache_control"]
            converted.append(out)
        else:
            # Anthropic-native tools (web search, bash, …) pass as they are.
            converted.append(dict(tool))
    return converted


def _tool_choice(choice: str | dict[str, Any] | None, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif isinstance(choice, str):
        result = {"type": {"required": "any", "none": "none"}.get(choice, "auto")}
    elif choice.get("type") == "function":
        result = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    else:
        result = dict(choice)
    if parallel is False:
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def messages_body(request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    """The JSON body of a Messages API call for an OpenAI-shaped request.

    Raises:
        UnsupportedParameter: ``n > 1``, ``logprobs``, ``top_logprobs`` or a ``json_object``
            response format, which Anthropic lacks (a ``json_schema`` one becomes ``output_config``).
    """
    refuse_choices_and_logprobs(request, deployment.provider, "Anthropic")
    system, messages = _convert_messages(request.messages)
    limit = request.output_limit or min(DEFAULT_MAX_TOKENS, deployment.max_output or DEFAULT_MAX_TOKENS)
    body: dict[str, Any] = {"model": deployment.upstream_model, "max_tokens": limit, "messages": messages}
    extras = request.passthrough()
    # A chat client that sent its tool turn back without the thinking it began with (role, content and
    # tool_calls only, as most frameworks keep a message) cannot have thinking now: Anthropic would refuse
    # the turn. Its reasoning_effort is left out for this call, which is answered without thinking.
    effort = None if _tool_turn_without_thinking(messages) else request.reasoning_effort
    budget = None if "thinking" in extras else anthropic_budget(effort)
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if limit <= budget:
            body["max_tokens"] = budget + limit
    thinking = budget is not None or (isinstance(extras.get("thinking"), Mapping) and extras["thinking"].get(
        "type") in ("enabled", "adaptive"))
    if system:
        # A plain string unless a block asks for caching, which needs the list form.
        plain = all(set(b) == {"type", "text"} for b in system)
        body["system"] = "\n\n".join(b["text"] for b in system) if plain else system
    if request.temperature is not None and not thinking:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.tools:
        body["tools"] = _tools(request.tools)
        choice = _tool_choice(request.tool_choice, extras.get("parallel_tool_calls"))
        if choice:
            if thinking and choice.get("type") in ("any", "tool"):
                raise _forced_tool_with_thinking(choice, deployment, by_effort=budget is not None)
            body["tool_choice"] = choice
    fmt = request.response_format or {}
    refuse_json_object(request, deployment.provider, "Anthropic")
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
        schema = fmt["json_schema"].get("schema") or {}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    body.update({k: v for k, v in extras.items() if k not in OPENAI_ONLY_PARAMS})
    if thinking:
        body.pop("top_k", None)
    return body


def _tool_turn_without_thinking(turns: list[dict[str, Any]]) -> bool:
    """Whether the last assistant turn calls a tool but does not begin with its thinking."""
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            blocks = turn["content"]
            return bool(blocks) and blocks[0].get("type") not in ("thinking", "redacted_thinking") and any(
                b.get("type") == "tool_use" for b in blocks)
    return False


def _forced_tool_with_thinking(choice: Mapping[str, Any], deployment: Deployment, *,
                               by_effort: bool) -> UnsupportedParameter:
    """The refusal of a forced tool choice beside thinking, which Anthropic's API refuses too."""
    forced = f"naming function {choice.get('name')!r}" if choice.get("type") == "tool" else '"required"'
    by = "reasoning_effort, or reasoning.effort on /v1/responses" if by_effort else "the request's thinking field"
    return UnsupportedParameter(
        f"tool_choice {forced} cannot be combined with thinking (set by {by}) at deployment {deployment.id!r}: "
        f"with extended thinking Anthropic takes only tool_choice \"auto\" or \"none\". Send tool_choice "
        f"\"auto\" (the model may still call a tool), or leave the thinking out to force the call",
        param="tool_choice", provider=deployment.provider)



# --- the adapter -----------------------------------------------------------------------


class AnthropicProvider(HTTPProvider):
    """Anthropic's Messages API (key from ``ANTHROPIC_API_KEY`` by default)."""

    kind: ClassVar[str] = "anthropic"
    default_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    default_base_url: ClassVar[str] = "https://api.anthropic.com/v1"
    stream_end_marker: ClassVar[str] = "its end marker (message_stop)"

    def auth_headers(self) -> dict[str, str]:
        """``x-api-key`` and ``anthropic-version`` (unless the config sets its own).

        Raises:
            ProviderAuthError: the key's variable is unset.
        """
        headers = {"x-api-key": self.api_key() or ""}
        if not any(k.lower() == "anthropic-version" for k in self.config.headers):
            headers["anthropic-version"] = ANTHROPIC_VERSION
        return headers

    def speaks(self, api: str, model: str = "") -> bool:
        """Anthropic's Messages API: a ``/v1/messages`` request goes upstream as its client sent it."""
        return api == MESSAGES_API

    def _call(self, request: ChatRequest, deployment: Deployment, *,
              stream: bool) -> tuple[dict[str, Any], dict[str, str]]:
        """The body and extra headers of a Messages call: the client's own for a Messages client, else converted.

        A Messages client's ``anthropic-beta`` goes with its body, after any the provider's config sets.
        """
        native = request.native
        if native is None or native.api != MESSAGES_API:
            return messages_body(request, deployment, stream=stream), {}
        betas = [v for k, v in self.config.headers.items() if k.lower() == BETA_HEADER]
        betas += [v for k, v in native.headers.items() if k.lower() == BETA_HEADER]
        headers = {BETA_HEADER: ",".join(dict.fromkeys(betas))} if betas else {}
        return upstream_body(native, deployment, stream=stream), headers

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer from ``POST /messages``."""
        body, headers = self._call(request, deployment, stream=False)
        data = await self._request("POST", "/messages", payload=body, headers=headers)
        try:
            blocks = data["content"]
            text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
            calls = [tool_call(b) for b in blocks if b.get("type") == "tool_use"]
            thinking = [dict(b) for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
            usage = anthropic_usage(data.get("usage") or {})
        except SHAPE_ERRORS as exc:
            raise self._malformed("a message", exc) from None
        stop = str(data.get("stop_reason") or "end_turn")
        sequence = data.get("stop_sequence")
        return ChatResponse(
            content=text,
            model=str(data.get("model") or deployment.upstream_model),
            usage=usage,
            finish_reason=FINISH.get(stop, "stop"),
            tool_calls=calls or None,
            id=str(data.get("id") or ""),
            provider=self.name,
            reasoning="".join(str(b.get("thinking", "")) for b in thinking),
            thinking_blocks=thinking or None,
            stop_sequence=str(sequence) if stop == "stop_sequence" and sequence is not None else None,
            # A Messages client is owed the message as it came, every block of it.
            native=data if request.native is not None and request.native.api == MESSAGES_API else None,
        )

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks from a streamed ``POST /messages``.

        Text deltas; tool calls in OpenAI's delta shape (a first delta with
        id and name, then argument fragments); a chunk with the finish
        reason and one with the usage when ``message_delta`` arrives.
        Thinking arrives as ``reasoning`` pieces, closed by a chunk with its
        ``reasoning_signature``; it is not part of the answer text. For a
        Messages client's request the chunks carry the upstream's own events
        and, last, the whole message (see `EventReader`).

        Raises:
            StreamInterrupted: the stream ended before ``message_stop``.
            ProviderServerError: an ``overloaded_error`` (or other error event) arrived.
        """
        body, headers = self._call(request, deployment, stream=True)
        native = request.native is not None and request.native.api == MESSAGES_API
        reader = EventReader(deployment.upstream_model, native=native)
        async with self._open_stream("/messages", body, headers=headers) as events:
            async for event in events:
                data = self._event_json(event)
                kind = data.setdefault("type", event.event)
                if not plain_type(kind):
                    # Its type names the event a Messages client is sent: only a plain name may go on.
                    raise self._malformed("an event whose type is not a plain name", ValueError(repr(kind)[:80]))
                if kind == "error":
                    raise self._event_error(data)
                try:
                    chunks = reader.take(data)
                except SHAPE_ERRORS as exc:
                    raise self._malformed(f"a {kind} event", exc) from None
                for chunk in chunks:
                    yield chunk
                if reader.done:
                    return
            raise self._interrupted()

    async def count_tokens(self, request: ChatRequest, deployment: Deployment) -> int | None:
        """Anthropic's own count from ``POST /messages/count_tokens`` (free, not billed)."""
        body, headers = self._call(request, deployment, stream=False)
        payload = {k: v for k, v in body.items() if k in _COUNTED}
        data = await self._request("POST", "/messages/count_tokens", payload=payload, headers=headers)
        try:
            return int(data["input_tokens"])
        except SHAPE_ERRORS as exc:
            raise self._malformed("a token count", exc) from None

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Anthropic has no embeddings endpoint.

        Raises:
            ProviderBadRequest: always; the message says what to configure instead.
        """
        raise ProviderBadRequest(
            f"provider {self.name!r} is Anthropic, which has no embeddings endpoint; configure an "
            f"OpenAI-compatible provider (OpenAI, Ollama, vLLM…) to serve embedding model {model!r}",
            provider=self.name,
        )

    async def list_models(self) -> list[str]:
        """Model ids from ``GET /models``, following its pages."""
        models: list[str] = []
        params = {"limit": "1000"}
        for _ in range(50):
            data = await self._request("GET", "/models", params=params)
            try:
                models.extend(str(row["id"]) for row in data["data"])
            except SHAPE_ERRORS as exc:
                raise self._malformed("a model list", exc) from None
            if not data.get("has_more") or not data.get("last_id"):
                break
            params = {"limit": "1000", "after_id": str(data["last_id"])}
        return models
