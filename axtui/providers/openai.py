"""OpenAI-compatible chat completions, embeddings and models.

One adapter serves OpenAI and every server that speaks its wire format
(Ollama, vLLM, LM Studio, Groq, OpenRouter, Together…) by ``base_url``.
The request is ax's `ChatRequest` almost as it came (it is OpenAI's shape),
with the deployment's model name; streams ask for usage with
``stream_options.include_usage`` and end with ``data: [DONE]``.

Usage: OpenAI counts cached prompt tokens inside ``prompt_tokens`` and
reasoning tokens inside ``completion_tokens``, which is ax's meaning too.

A request that came through ``/v1/responses`` goes to the server's own
``POST /responses`` as the client sent it when the provider speaks it
(``responses = "native"``, the default for api.openai.com; see
`axtui.providers.openai_responses`); otherwise it is served as chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from axtui.errors import MalformedResponse
from axtui.providers._http import HTTPProvider
from axtui.providers._wire import SHAPE_ERRORS
from axtui.providers.openai_responses import EventReader, answer_of, reported_usage, upstream_body
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage, token_count

__all__ = ["OpenAIProvider", "chat_body", "openai_usage", "openai_usage_body"]


def chat_body(request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    """The JSON body of a chat completion call.

    Fields left unset are omitted, so the server's defaults apply; fields ax
    does not name (``request.passthrough()``) are sent as they came.
    """
    # ``thinking`` is Anthropic's setting (a /v1/messages client routed here); OpenAI refuses unknown fields.
    body = request.model_dump(exclude_none=True, exclude={"messages", "stream", "stream_options", "thinking"})
    body["model"] = deployment.upstream_model
    # Anthropic's thinking blocks kept on a turn are for Anthropic; OpenAI refuses unknown fields.
    body["messages"] = [m.model_dump(exclude_none=True, exclude={"thinking_blocks"}) for m in request.messages]
    if stream:
        body["stream"] = True
        # Without include_usage a stream reports no tokens at all.
        body["stream_options"] = {**(request.stream_options or {}), "include_usage": True}
    return body


def openai_usage(usage: Mapping[str, Any]) -> Usage:
    """ax's `Usage` from an OpenAI ``usage`` object.

    ``prompt_tokens`` already includes the cached part
    (``prompt_tokens_details.cached_tokens``); ``completion_tokens``
    already includes ``completion_tokens_details.reasoning_tokens``.
    """
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    # DeepSeek names its cache hits prompt_cache_hit_tokens; OpenRouter
    # reports cache writes in prompt_tokens_details.cache_write_tokens.
    cached = token_count(prompt_details.get("cached_tokens")) or token_count(usage.get("prompt_cache_hit_tokens"))
    return Usage(
        input_tokens=token_count(usage.get("prompt_tokens")),
        output_tokens=token_count(usage.get("completion_tokens")),
        cached_input_tokens=cached,
        cache_write_tokens=token_count(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=token_count(completion_details.get("reasoning_tokens")),
    )


def openai_usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's ``usage`` object for ax's `Usage`: the inverse of `openai_usage`.

    The one encoder of this shape: the gateway's answers and the simulated
    OpenAI upstream both use it.
    """
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens,
                                  "cache_write_tokens": usage.cache_write_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _fragments(calls: Any) -> Any:
    """A chunk's tool-call fragments as sent, but an ``"index": null`` left out: a fragment without an index is
    read as one (`axtui.types.tool_calls_problem`), and every encoder reads a missing index alike. Anything
    that is not a list of objects stays as it came, for that check to refuse."""
    if not isinstance(calls, list):
        return calls
    return [{k: v for k, v in call.items() if k != "index"} if isinstance(call, dict) and call.get("index", 0) is None
            else call for call in calls]


class OpenAIProvider(HTTPProvider):
    """OpenAI's API, or any server that speaks it.

    The key is sent as a Bearer token from ``api_key_env`` (default
    ``OPENAI_API_KEY``). A provider pointed at another server (Ollama, say)
    without ``api_key_env`` sends no key, since local servers need none.
    """

    kind: ClassVar[str] = "openai"
    default_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    stream_end_marker: ClassVar[str] = "its end marker (data: [DONE])"

    @property
    def auth_headers_sent(self) -> bool:
        """Whether requests carry a key: always for OpenAI, else when configured."""
        if self.config.api_key_env:
            return True
        return not self.config.base_url or self.base_url == self.default_base_url

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer …`` when a key is sent.

        Raises:
            ProviderAuthError: a key is needed and its variable is unset.
        """
        if not self.auth_headers_sent:
            return {}
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def embeds_token_ids(self) -> bool:  # type: ignore[override]
        """OpenAI's embeddings take token ids (as LangChain sends them); other servers of the format may not."""
        return self.base_url == self.default_base_url

    def speaks(self, api: str, model: str = "") -> bool:
        """The Responses API natively: as ``responses`` says, else only at api.openai.com."""
        if api != "responses":
            return False
        if self.config.responses is not None:
            return self.config.responses == "native"
        return self.base_url == self.default_base_url

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer from ``POST /chat/completions`` (``POST /responses`` for a native request)."""
        native = request.native
        if native is not None and self.speaks(native.api):
            data = await self._request("POST", "/responses", payload=upstream_body(native, deployment, stream=False))
            if data.get("status") == "failed" or data.get("error"):
                raise self._event_error({"error": data.get("error") or {"message": "the response failed"}})
            try:
                return answer_of(data, request, deployment, self.name)
            except SHAPE_ERRORS as exc:
                raise self._malformed("a response object", exc) from None
        data = await self._request("POST", "/chat/completions", payload=chat_body(request, deployment, stream=False))
        try:
            return self._response(data, request, deployment)
        except SHAPE_ERRORS as exc:
            raise self._malformed("a chat completion", exc) from None

    def _response(self, data: dict[str, Any], request: ChatRequest, deployment: Deployment) -> ChatResponse:
        choices = data.get("choices")
        if not choices:
            raise self._malformed("a chat completion without choices")
        choice = choices[0]
        message = choice.get("message") or {}
        content = _text(message.get("content"))
        tool_calls = message.get("tool_calls") or None
        response = ChatResponse(
            content=content,
            model=str(data.get("model") or deployment.upstream_model),
            usage=reported_usage(data.get("usage"), openai_usage, request, content),
            finish_reason=str(choice.get("finish_reason") or ("tool_calls" if tool_calls else "stop")),
            tool_calls=tool_calls,
            id=str(data.get("id") or ""),
            provider=self.name,
            # DeepSeek, vLLM and other compatible servers share their thinking here.
            reasoning=str(message.get("reasoning_content") or message.get("reasoning") or ""),
            extra_choices=list(choices[1:]) or None,
            logprobs=choice.get("logprobs") or None,
        )
        created = data.get("created")
        if isinstance(created, int | float):
            response.created = int(created)
        return response

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks from a streamed ``POST /chat/completions``.

        Text deltas, tool-call deltas (OpenAI's shape, as sent), a chunk with
        the finish reason, then one chunk with the usage.

        Raises:
            StreamInterrupted: the stream ended before ``data: [DONE]``.
        """
        native = request.native
        if native is not None and self.speaks(native.api):
            async for chunk in self._native_stream(upstream_body(native, deployment, stream=True)):
                yield chunk
            return
        body = chat_body(request, deployment, stream=True)
        model, ident = deployment.upstream_model, ""
        usage: Usage | None = None
        async with self._open_stream("/chat/completions", body) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    if usage is not None:
                        yield Chunk(usage=usage, model=model, id=ident)
                    return
                data = self._event_json(event)
                if data.get("error"):
                    raise self._event_error(data)
                model = str(data.get("model") or model)
                ident = str(data.get("id") or ident)
                try:
                    for choice in data.get("choices") or ():
                        delta = choice.get("delta") or {}
                        index = int(choice.get("index") or 0)
                        thought = delta.get("reasoning_content") or delta.get("reasoning")
                        if thought:
                            yield Chunk(reasoning=str(thought), model=model, id=ident, choice=index)
                        text = delta.get("content")
                        logprobs = choice.get("logprobs") or None
                        if text or logprobs:
                            yield Chunk(delta=str(text or ""), model=model, id=ident, choice=index,
                                        logprobs=logprobs)
                        if delta.get("tool_calls"):
                            yield Chunk(tool_calls=_fragments(delta["tool_calls"]), model=model, id=ident,
                                        choice=index)
                        if choice.get("finish_reason"):
                            yield Chunk(finish_reason=str(choice["finish_reason"]), model=model, id=ident,
                                        choice=index)
                    # Servers that repeat running usage on every chunk: keep the last.
                    if isinstance(data.get("usage"), Mapping):
                        usage = openai_usage(data["usage"])
                except SHAPE_ERRORS as exc:
                    raise self._malformed("a stream chunk", exc) from None
            raise self._interrupted()

    async def _native_stream(self, body: dict[str, Any]) -> AsyncIterator[Chunk]:
        """A streamed ``POST /responses``: its events as chunks (`EventReader`), to ``response.completed``.

        Raises:
            StreamInterrupted: the stream ended before ``response.completed`` (or ``.incomplete``).
        """
        reader = EventReader()
        async with self._open_stream("/responses", body) as events:
            async for event in events:
                data = self._event_json(event)
                kind = data.get("type")
                if kind == "error":
                    raise self._event_error({"error": data.get("error") or data})
                if kind == "response.failed":
                    failed = data.get("response") or {}
                    raise self._event_error({"error": failed.get("error") or {"message": "the response failed"}})
                try:
                    chunk = reader.take(data)
                except SHAPE_ERRORS as exc:
                    raise self._malformed("a stream event", exc) from None
                if chunk is not None:
                    yield chunk
                if reader.done:
                    return
            raise self._interrupted("no response.completed event came")

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Vectors from ``POST /embeddings``, in input order (``dimensions`` long when given)."""
        payload: dict[str, Any] = {"model": model, "input": inputs}
        if dimensions is not None:
            payload["dimensions"] = dimensions
        data = await self._request("POST", "/embeddings", payload=payload)
        try:
            rows = sorted(data["data"], key=lambda row: int(row.get("index", 0)))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
            raw_usage = data.get("usage") or {}
            usage = Usage(input_tokens=token_count(raw_usage.get("prompt_tokens") or raw_usage.get("total_tokens")))
        except SHAPE_ERRORS as exc:
            raise self._malformed("an embeddings answer", exc) from None
        if len(vectors) != len(inputs):
            raise MalformedResponse(
                f"provider {self.name!r} returned {len(vectors)} vectors for {len(inputs)} inputs",
                provider=self.name,
            )
        return EmbeddingResponse(vectors=vectors, model=str(data.get("model") or model), usage=usage)

    async def list_models(self) -> list[str]:
        """Model ids from ``GET /models``."""
        data = await self._request("GET", "/models")
        try:
            return [str(row["id"]) for row in data["data"]]
        except SHAPE_ERRORS as exc:
            raise self._malformed("a model list", exc) from None
