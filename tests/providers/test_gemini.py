"""The Gemini adapter, against payloads shaped like Google's documentation."""

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
from axtui.providers.gemini import GeminiProvider
from axtui.types import ChatRequest, Chunk, Deployment

from .fake_upstream import Upstream, collect, json_answer, payload, raising, raw_answer, sse_answer, sse_text

KEY = "AIzaSyD-test-key-0123456789abcdefghijk"
DEPLOYMENT = Deployment(provider="google", model="fast", upstream_model="gemini-2.5-flash")
BASE = "https://generativelanguage.googleapis.com/v1beta"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def _request(messages: list[dict[str, Any]] | None = None, **fields: Any) -> ChatRequest:
    messages = messages or [{"role": "user", "content": "Hello"}]
    return ChatRequest.model_validate({"model": "fast", "messages": messages} | fields)


# --- answers ------------------------------------------------------------------------


async def test_chat_answer_and_usage_with_cached_and_thought_tokens(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("gemini_generate.json")))
    provider = make_provider(GeminiProvider, upstream, name="google")

    response = await provider.chat(_request(), DEPLOYMENT)

    assert response.content == "Hello! How can I help you today?"
    assert response.finish_reason == "stop"
    assert (response.model, response.id, response.provider) == ("gemini-2.5-flash", "mAitaLmkHPPlz7IPvtfUqQ4", "google")
    usage = response.usage
    # promptTokenCount already includes the cached part; thoughts are billed as output.
    assert (usage.input_tokens, usage.cached_input_tokens) == (4120, 4096)
    assert (usage.output_tokens, usage.reasoning_tokens) == (9 + 341, 341)
    request = upstream.last
    assert str(request.url) == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert "key=" not in str(request.url)


async def test_chat_request_conversion(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("gemini_generate.json")))
    provider = make_provider(GeminiProvider, upstream)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather in a city", "parameters": schema},
    }
    messages = [
        {"role": "system", "content": "Answer in JSON."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": '{"temp_c": -3}'},
        {"role": "tool", "tool_call_id": "call_9", "content": "plain words"},
    ]
    request = _request(
        messages,
        temperature=0.3,
        top_p=0.9,
        max_tokens=256,
        stop=["END"],
        seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        tools=[tool],
        tool_choice="required",
        top_k=20,
        logit_bias={"50256": -100},
    )

    await provider.chat(request, DEPLOYMENT)

    body = upstream.body
    assert body["systemInstruction"] == {"parts": [{"text": "Answer in JSON."}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "What is in this picture?"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            ],
        },
        {
            "role": "model",
            "parts": [{"text": "Let me check."}, {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": -3}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "plain words"}}},
            ],
        },
    ]
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "seed": 7,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "topK": 20,
    }
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather in a city", "parametersJsonSchema": schema}
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert "logit_bias" not in body


async def test_json_object_asks_for_json_without_a_schema(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("gemini_generate.json")))
    provider = make_provider(GeminiProvider, upstream)

    await provider.chat(_request(response_format={"type": "json_object"}), DEPLOYMENT)

    assert upstream.body["generationConfig"] == {"responseMimeType": "application/json"}


async def test_function_call_answer_and_its_thought_signature_round_trip(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("gemini_function_call.json")))
    provider = make_provider(GeminiProvider, upstream)

    response = await provider.chat(_request(), DEPLOYMENT)

    assert response.finish_reason == "tool_calls"
    assert response.tool_calls is not None
    [call] = response.tool_calls
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert call["id"].startswith("call_")

    # The caller sends the call back with its result; the signature must go with it.
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    await provider.chat(_request(history), DEPLOYMENT)

    model_turn = upstream.body["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == "CiQB0e2Kb7sig"
    assert upstream.body["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("reason", "finish"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter")]
)
async def test_finish_reasons(make_provider: Callable[..., Any], reason: str, finish: str) -> None:
    answer = payload("gemini_generate.json")
    answer["candidates"][0]["finishReason"] = reason
    provider = make_provider(GeminiProvider, Upstream(json_answer(200, answer)))

    assert (await provider.chat(_request(), DEPLOYMENT)).finish_reason == finish


async def test_blocked_prompt_is_a_content_filter_with_no_text(make_provider: Callable[..., Any]) -> None:
    answer = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    provider = make_provider(GeminiProvider, Upstream(json_answer(200, answer)))

    response = await provider.chat(_request(), DEPLOYMENT)

    assert (response.content, response.finish_reason) == ("", "content_filter")
    assert response.usage.input_tokens == 7


# --- streams ------------------------------------------------------------------------------


async def test_stream_text_without_thoughts_finish_and_usage(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("gemini_stream.sse")))
    provider = make_provider(GeminiProvider, upstream)

    chunks = await collect(provider.stream(_request(), DEPLOYMENT))

    assert "".join(c.delta for c in chunks) == "The sky is blue."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        8,
        4,
        32,
        27,
    )
    request = upstream.last
    assert request.url.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.url.params["alt"] == "sse"


async def test_stream_function_call(make_provider: Callable[..., Any]) -> None:
    event = payload("gemini_function_call.json")
    provider = make_provider(GeminiProvider, Upstream(sse_answer(f"data: {json.dumps(event)}\r\n\r\n")))

    chunks = await collect(provider.stream(_request(), DEPLOYMENT))

    deltas = [d for c in chunks for d in c.tool_calls or ()]
    assert len(deltas) == 1 and deltas[0]["index"] == 0
    assert json.loads(deltas[0]["function"]["arguments"]) == {"location": "Paris"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_stream_cut_before_finish_reason(make_provider: Callable[..., Any]) -> None:
    events = sse_text("gemini_stream.sse").strip().split("\n\n")
    cut = "\n\n".join(events[:-1]) + "\n\n"
    provider = make_provider(GeminiProvider, Upstream(sse_answer(cut)))
    received: list[Chunk] = []

    with pytest.raises(StreamInterrupted, match="finishReason"):
        async for chunk in provider.stream(_request(), DEPLOYMENT):
            received.append(chunk)
    assert "".join(c.delta for c in received) == "The sky"


async def test_error_event_mid_stream(make_provider: Callable[..., Any]) -> None:
    error = {
        "error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
    }
    provider = make_provider(GeminiProvider, Upstream(sse_answer(f"data: {json.dumps(error)}\n\n")))

    with pytest.raises(ProviderServerError, match="overloaded") as caught:
        await collect(provider.stream(_request(), DEPLOYMENT))
    assert caught.value.http_status == 503


# --- errors -------------------------------------------------------------------------------------


def _err(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


RETRY_DETAILS = [
    {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}],
    },
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "46s"},
]
KEY_DETAILS = [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
]

ERRORS: list[tuple[int, dict[str, Any], type[ProviderError]]] = [
    (
        400,
        _err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", KEY_DETAILS),
        ProviderAuthError,
    ),
    (403, _err(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."), ProviderAuthError),
    (400, _err(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo".'), ProviderBadRequest),
    (
        400,
        _err(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
        ContextTooLong,
    ),
    (
        429,
        _err(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan.", RETRY_DETAILS),
        ProviderRateLimited,
    ),
    (500, _err(500, "INTERNAL", "An internal error has occurred."), ProviderServerError),
    (503, _err(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), ProviderServerError),
]


@pytest.mark.parametrize(("status", "body", "expected"), ERRORS, ids=[f"{e[0]}-{e[2].__name__}" for e in ERRORS])
async def test_error_answers(
    make_provider: Callable[..., Any], status: int, body: dict[str, Any], expected: type[ProviderError]
) -> None:
    provider = make_provider(GeminiProvider, Upstream(json_answer(status, body)), name="google")

    with pytest.raises(expected) as caught:
        await provider.chat(_request(), DEPLOYMENT)

    error = caught.value
    assert type(error) is expected
    assert "'google'" in error.message and f"HTTP {status}" in error.message
    assert body["error"]["message"] in error.message
    assert KEY not in error.message
    if expected is ProviderRateLimited:
        assert isinstance(error, ProviderRateLimited) and error.retry_after == 46.0


async def test_malformed_body_timeout_and_connection(make_provider: Callable[..., Any]) -> None:
    garbage = make_provider(GeminiProvider, Upstream(raw_answer(200, "not json at all")))
    with pytest.raises(MalformedResponse):
        await garbage.chat(_request(), DEPLOYMENT)

    slow = make_provider(GeminiProvider, Upstream(raising(httpx.ReadTimeout)))
    with pytest.raises(ProviderTimeout):
        await collect(slow.stream(_request(), DEPLOYMENT))

    down = make_provider(GeminiProvider, Upstream(raising(httpx.ConnectError, "Connection reset by peer")))
    with pytest.raises(ProviderConnectionError, match="Connection reset by peer"):
        await down.chat(_request(), DEPLOYMENT)


async def test_missing_key_is_an_auth_error_naming_the_variable(
    make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    upstream = Upstream(json_answer(200, payload("gemini_generate.json")))
    provider = make_provider(GeminiProvider, upstream)

    with pytest.raises(ProviderAuthError, match="GEMINI_API_KEY"):
        await provider.chat(_request(), DEPLOYMENT)
    assert upstream.requests == []


# --- embeddings, models -------------------------------------------------------------------------


async def test_embeddings_by_batch_embed_contents(make_provider: Callable[..., Any]) -> None:
    answer = {"embeddings": [{"values": [0.1, 0.2, 0.3]}, {"values": [0.4, 0.5, 0.6]}]}
    upstream = Upstream(json_answer(200, answer))
    provider = make_provider(GeminiProvider, upstream)

    result = await provider.embed(["first text", "second"], "gemini-embedding-001")

    assert result.vectors == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    assert result.usage.estimated and result.usage.input_tokens > 0
    assert upstream.last.url.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert upstream.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}},
        ]
    }


async def test_list_models_strips_prefix_and_follows_pages(make_provider: Callable[..., Any]) -> None:
    first = {"models": [{"name": "models/gemini-2.5-pro"}], "nextPageToken": "page-2"}
    second = {"models": [{"name": "models/gemini-2.5-flash"}]}
    upstream = Upstream(json_answer(200, first), json_answer(200, second))
    provider = make_provider(GeminiProvider, upstream)

    assert await provider.list_models() == ["gemini-2.5-pro", "gemini-2.5-flash"]
    assert upstream.requests[1].url.params["pageToken"] == "page-2"
