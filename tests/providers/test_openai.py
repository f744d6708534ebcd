"""The OpenAI-compatible adapter, against payloads shaped like OpenAI's documentation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from axtui.errors import (
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers.openai import OpenAIProvider
from axtui.providers.registry import create_provider
from axtui.types import ChatRequest, Chunk, Deployment

from .fake_upstream import (
    PiecewiseStream,
    Upstream,
    collect,
    json_answer,
    payload,
    raising,
    raw_answer,
    sse_answer,
    sse_text,
)

KEY = "sk-test-0123456789abcdef"
DEPLOYMENT = Deployment(provider="acme", model="smart", upstream_model="gpt-4.1-2025-04-14")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "smart", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
        | fields
    )


def _tool_arguments(chunks: list[Chunk]) -> dict[int, dict[str, str]]:
    """Tool calls assembled from streamed deltas, the way a client does."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls or ():
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.get("id") or call["id"]
            call["name"] = delta.get("function", {}).get("name") or call["name"]
            call["arguments"] += delta.get("function", {}).get("arguments", "")
    return calls


# --- answers ------------------------------------------------------------------------


async def test_chat_answer_and_usage_with_cached_and_reasoning_tokens(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("openai_chat.json")))
    provider = make_provider(OpenAIProvider, upstream)

    response = await provider.chat(_request(), DEPLOYMENT)

    assert response.content == "Hello! How can I assist you today?"
    assert response.finish_reason == "stop"
    assert response.model == "o4-mini-2025-04-16"
    assert response.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert response.provider == "acme"
    assert response.created == 1741569952
    usage = response.usage
    # prompt_tokens already counts the cached ones; completion_tokens the reasoning ones.
    assert (usage.input_tokens, usage.cached_input_tokens) == (2006, 1920)
    assert (usage.output_tokens, usage.reasoning_tokens) == (300, 192)
    assert not usage.estimated


async def test_chat_request_sent_is_the_callers_with_the_upstream_model(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("openai_chat.json")))
    provider = make_provider(OpenAIProvider, upstream)

    await provider.chat(_request(temperature=0.2, logprobs=True, max_completion_tokens=50), DEPLOYMENT)

    request = upstream.last
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert upstream.body == {
        "model": "gpt-4.1-2025-04-14",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "max_completion_tokens": 50,
        "logprobs": True,  # a parameter ax does not name passes through
    }


async def test_chat_with_tool_calls(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("openai_chat_tools.json")))
    provider = make_provider(OpenAIProvider, upstream)
    tools = [{"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}]

    response = await provider.chat(_request(tools=tools, tool_choice="auto"), DEPLOYMENT)

    assert response.finish_reason == "tool_calls"
    assert response.content == ""
    assert response.tool_calls is not None
    [call] = response.tool_calls
    assert call["id"] == "call_abc123"
    assert json.loads(call["function"]["arguments"]) == {"location": "Boston, MA"}
    assert upstream.body["tools"] == tools and upstream.body["tool_choice"] == "auto"


async def test_chat_without_usage_from_a_compatible_server_is_estimated(make_provider: Callable[..., Any]) -> None:
    answer = {"id": "x", "model": "llama3", "choices": [{"message": {"content": "Hi there"}, "finish_reason": "stop"}]}
    upstream = Upstream(json_answer(200, answer))
    provider = make_provider(OpenAIProvider, upstream, base_url="http://localhost:11434/v1")

    response = await provider.chat(_request(), DEPLOYMENT)

    assert response.usage.estimated
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


# --- streams ------------------------------------------------------------------------------


async def test_stream_text_then_finish_then_usage(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("openai_stream.sse")))
    provider = make_provider(OpenAIProvider, upstream)

    chunks = await collect(provider.stream(_request(stream_options={"continuous_usage_stats": False}), DEPLOYMENT))

    assert "".join(c.delta for c in chunks) == "Hello there, ça va?"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].delta == ""
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.cached_input_tokens) == (1200, 1024)
    assert chunks[-1].usage.output_tokens == 4
    assert chunks[-2].finish_reason == "stop"
    assert all(c.model == "gpt-4o-mini" and c.id == "chatcmpl-123" for c in chunks)
    body = upstream.body
    assert body["stream"] is True
    assert body["stream_options"] == {"continuous_usage_stats": False, "include_usage": True}
    assert body["model"] == "gpt-4.1-2025-04-14"


async def test_stream_tool_call_deltas(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("openai_stream_tools.sse")))
    provider = make_provider(OpenAIProvider, upstream)

    chunks = await collect(provider.stream(_request(), DEPLOYMENT))

    calls = _tool_arguments(chunks)
    assert calls[0]["id"] == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris, France"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.input_tokens == 74


async def test_stream_cut_before_done_yields_what_came_then_raises(make_provider: Callable[..., Any]) -> None:
    cut = sse_text("openai_stream.sse").split("data: [DONE]")[0]
    upstream = Upstream(sse_answer(cut))
    provider = make_provider(OpenAIProvider, upstream)
    received: list[Chunk] = []

    with pytest.raises(StreamInterrupted) as caught:
        async for chunk in provider.stream(_request(), DEPLOYMENT):
            received.append(chunk)

    assert "".join(c.delta for c in received) == "Hello there, ça va?"
    assert "'acme'" in caught.value.message and "[DONE]" in caught.value.message


async def test_stream_whose_connection_breaks_is_interrupted(make_provider: Callable[..., Any]) -> None:
    text = sse_text("openai_stream.sse")[:300]
    upstream = Upstream(sse_answer(text, error=httpx.RemoteProtocolError("peer closed connection")))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(StreamInterrupted, match="peer closed connection"):
        await collect(provider.stream(_request(), DEPLOYMENT))


async def test_stream_that_stalls_is_a_timeout(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("openai_stream.sse")[:300], error=httpx.ReadTimeout("read timed out")))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderTimeout):
        await collect(provider.stream(_request(), DEPLOYMENT))


async def test_error_event_inside_a_stream(make_provider: Callable[..., Any]) -> None:
    text = 'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    upstream = Upstream(sse_answer(text))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderServerError, match="The server had an error"):
        await collect(provider.stream(_request(), DEPLOYMENT))


async def test_stream_event_that_is_not_json_is_malformed(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer("data: {not json\n\ndata: [DONE]\n\n"))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(MalformedResponse, match="not a JSON object"):
        await collect(provider.stream(_request(), DEPLOYMENT))


async def test_consumer_that_stops_early_closes_the_upstream_response(make_provider: Callable[..., Any]) -> None:
    body = PiecewiseStream(sse_text("openai_stream.sse").encode(), piece=64)
    upstream = Upstream(sse_answer("", stream=body))
    provider = make_provider(OpenAIProvider, upstream)

    stream = provider.stream(_request(), DEPLOYMENT)
    first = await anext(stream)
    assert first.delta == "Hello"
    assert not body.closed
    await stream.aclose()

    assert body.closed
    assert body.sent < len(body.body)


async def test_error_status_on_a_stream_request(make_provider: Callable[..., Any]) -> None:
    error = {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "code": "rate_limit_exceeded"}}
    upstream = Upstream(json_answer(429, error, headers={"retry-after": "3"}))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderRateLimited) as caught:
        await collect(provider.stream(_request(), DEPLOYMENT))
    assert caught.value.retry_after == 3.0


# --- errors -------------------------------------------------------------------------------------


ERRORS: list[tuple[int, dict[str, Any], dict[str, str], type[ProviderError]]] = [
    (
        401,
        {
            "error": {
                "message": f"Incorrect API key provided: {KEY}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
        {},
        ProviderAuthError,
    ),
    (
        400,
        {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "code": None}},
        {},
        ProviderBadRequest,
    ),
    (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130512 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        {},
        ContextTooLong,
    ),
    (
        429,
        {"error": {"message": "Rate limit reached for gpt-4o on tokens per min (TPM)", "type": "tokens"}},
        {"retry-after": "7"},
        ProviderRateLimited,
    ),
    (
        500,
        {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}},
        {},
        ProviderServerError,
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"), ERRORS, ids=[str(e[0]) + e[3].__name__ for e in ERRORS]
)
async def test_error_answers(
    make_provider: Callable[..., Any],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: type[ProviderError],
) -> None:
    upstream = Upstream(json_answer(status, body, headers=headers))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(expected) as caught:
        await provider.chat(_request(), DEPLOYMENT)

    error = caught.value
    assert type(error) is expected
    assert error.http_status == status and error.provider == "acme"
    assert "'acme'" in error.message and f"HTTP {status}" in error.message
    assert body["error"]["message"].split(":")[0] in error.message
    assert KEY not in error.message


async def test_rate_limited_with_retry_after_ms(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(429, {"error": {"message": "slow"}}, headers={"retry-after-ms": "1500"}))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderRateLimited) as caught:
        await provider.chat(_request(), DEPLOYMENT)
    assert caught.value.retry_after == 1.5


async def test_auth_error_names_the_key_variable(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(401, {"error": {"message": "Incorrect API key provided"}}))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        await provider.chat(_request(), DEPLOYMENT)


async def test_body_that_is_not_json_is_malformed(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(raw_answer(200, "<html>gateway hiccup</html>"))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(MalformedResponse, match="not a JSON object") as caught:
        await provider.chat(_request(), DEPLOYMENT)
    assert "'acme'" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_a_key_the_upstream_echoes_never_reaches_the_message_even_in_part(
        make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    key = "plainleakysecretvalue42"  # not shaped like any known key: only knowing it finds it
    monkeypatch.setenv("OPENAI_API_KEY", key)
    # The key sits across the point where the excerpt of the body is cut.
    text = "<html>" + "x" * 58 + " key=" + key
    upstream = Upstream(sse_answer(f"data: {text}\n\n") if stream else raw_answer(200, text))
    provider = make_provider(OpenAIProvider, upstream)
    with pytest.raises(MalformedResponse, match="not a JSON object") as caught:
        if stream:
            await collect(provider.stream(_request(), DEPLOYMENT))
        else:
            await provider.chat(_request(), DEPLOYMENT)
    message = caught.value.message
    assert "xxxx" in message  # the excerpt is there, without the key
    assert not any(key[:n] in message for n in range(6, len(key) + 1)), message


@pytest.mark.parametrize(("kind", "body"), [("application/json", '{"id": "x", "choices": []}'),
                                           ("text/html", "<html>maintenance</html>")])
async def test_a_stream_answered_with_a_body_that_is_not_an_event_stream_says_so(
        make_provider: Callable[..., Any], kind: str, body: str) -> None:
    upstream = Upstream(lambda request: httpx.Response(200, headers={"content-type": kind}, text=body))
    provider = make_provider(OpenAIProvider, upstream)
    with pytest.raises(MalformedResponse, match=f"answered a stream request with {kind} instead of an event stream"):
        await collect(provider.stream(_request(), DEPLOYMENT))


async def test_json_without_choices_is_malformed(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, {"id": "x", "object": "chat.completion"}))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(MalformedResponse, match="without choices"):
        await provider.chat(_request(), DEPLOYMENT)


async def test_timeout_raised_by_the_transport(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(raising(httpx.ReadTimeout, "timed out"))
    provider = make_provider(OpenAIProvider, upstream, timeout_s=12)

    with pytest.raises(ProviderTimeout, match="within 12s"):
        await provider.chat(_request(), DEPLOYMENT)


async def test_connection_refused(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(raising(httpx.ConnectError, "[Errno 111] Connection refused"))
    provider = make_provider(OpenAIProvider, upstream, base_url="http://localhost:11434/v1")

    with pytest.raises(ProviderConnectionError, match="Connection refused") as caught:
        await provider.chat(_request(), DEPLOYMENT)
    assert "http://localhost:11434/v1" in caught.value.message


async def test_connection_that_breaks_mid_answer(make_provider: Callable[..., Any]) -> None:
    body = PiecewiseStream(b'{"id": "chatcmpl-1", "choices": [', error=httpx.ReadError("payload is not completed"))
    upstream = Upstream(lambda request: httpx.Response(200, stream=body))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderConnectionError, match="broke before the answer was complete"):
        await provider.chat(_request(), DEPLOYMENT)


# --- keys ----------------------------------------------------------------------------------------


async def test_missing_key_is_an_auth_error_naming_the_variable(
    make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    upstream = Upstream(json_answer(200, payload("openai_chat.json")))
    provider = make_provider(OpenAIProvider, upstream)

    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        await provider.chat(_request(), DEPLOYMENT)
    assert upstream.requests == []


async def test_configured_key_variable_is_the_one_used(
    make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-groq")
    upstream = Upstream(json_answer(200, payload("openai_chat.json")))
    provider = make_provider(
        OpenAIProvider, upstream, base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"
    )

    await provider.chat(_request(), DEPLOYMENT)

    assert str(upstream.last.url) == "https://api.groq.com/openai/v1/chat/completions"
    assert upstream.last.headers["authorization"] == "Bearer gsk-groq"


async def test_local_server_without_key_variable_needs_no_key(
    make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    upstream = Upstream(json_answer(200, payload("openai_chat.json")))
    provider = make_provider(OpenAIProvider, upstream, base_url="http://localhost:11434/v1")

    await provider.chat(_request(), DEPLOYMENT)

    assert "authorization" not in upstream.last.headers


async def test_local_server_refusing_says_no_key_was_sent(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(401, {"error": "unauthorized"}))
    provider = make_provider(OpenAIProvider, upstream, base_url="http://localhost:8000/v1")

    with pytest.raises(ProviderAuthError, match="no key was sent"):
        await provider.chat(_request(), DEPLOYMENT)


# --- embeddings, models, limits ----------------------------------------------------------------


async def test_embeddings_in_input_order(make_provider: Callable[..., Any]) -> None:
    answer = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    upstream = Upstream(json_answer(200, answer))
    provider = make_provider(OpenAIProvider, upstream)

    result = await provider.embed(["first", "second"], "text-embedding-3-small")

    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.usage.input_tokens == 8
    assert str(upstream.last.url).endswith("/v1/embeddings")
    assert upstream.body == {"model": "text-embedding-3-small", "input": ["first", "second"]}


async def test_embeddings_with_missing_vectors_are_malformed(make_provider: Callable[..., Any]) -> None:
    answer = {"data": [{"index": 0, "embedding": [0.1]}], "model": "m", "usage": {"prompt_tokens": 2}}
    provider = make_provider(OpenAIProvider, Upstream(json_answer(200, answer)))

    with pytest.raises(MalformedResponse, match="1 vectors for 2 inputs"):
        await provider.embed(["a", "b"], "m")


async def test_list_models(make_provider: Callable[..., Any]) -> None:
    answer = {"object": "list", "data": [{"id": "gpt-4.1", "object": "model"}, {"id": "o4-mini", "object": "model"}]}
    upstream = Upstream(json_answer(200, answer))
    provider = make_provider(OpenAIProvider, upstream)

    assert await provider.list_models() == ["gpt-4.1", "o4-mini"]
    assert upstream.last.method == "GET" and str(upstream.last.url).endswith("/v1/models")


async def test_rate_limit_headers_are_learned_from_answers(make_provider: Callable[..., Any]) -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
    }
    provider = make_provider(OpenAIProvider, Upstream(json_answer(200, payload("openai_chat.json"), headers=headers)))

    await provider.chat(_request(), DEPLOYMENT)

    assert provider.upstream_limits.remaining_requests == 499
    assert provider.upstream_limits.reset_requests_s == pytest.approx(0.12)


def test_registry_builds_this_adapter_for_kind_openai() -> None:
    from axtui.config import ProviderConfig

    provider = create_provider(
        ProviderConfig(name="oa", kind="openai"), transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    assert isinstance(provider, OpenAIProvider)
