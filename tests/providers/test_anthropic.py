"""The Anthropic Messages adapter, against payloads shaped like Anthropic's documentation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from axtui.errors import (
    ContextTooLong,
    InvalidRequest,
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
from axtui.providers._wire import UnsupportedParameter
from axtui.providers.anthropic import AnthropicProvider
from axtui.types import ChatRequest, Chunk, Deployment

from .fake_upstream import Upstream, collect, json_answer, payload, raising, raw_answer, sse_answer, sse_text

KEY = "sk-ant-api03-secretsecretsecret"
DEPLOYMENT = Deployment(provider="claude", model="smart", upstream_model="claude-sonnet-4-5-20250929")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def _request(messages: list[dict[str, Any]] | None = None, **fields: Any) -> ChatRequest:
    messages = messages or [{"role": "user", "content": "Hello"}]
    return ChatRequest.model_validate({"model": "smart", "messages": messages} | fields)


# --- answers ------------------------------------------------------------------------


async def test_chat_usage_counts_cache_reads_and_writes_as_input(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream, name="claude")

    response = await provider.chat(_request(), DEPLOYMENT)

    assert response.content == "Hello! How can I help?"
    assert response.finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.provider == "claude"
    usage = response.usage
    # 12 fresh + 3000 read from the cache + 1500 written to it.
    assert usage.input_tokens == 4512
    assert (usage.cached_input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (3000, 1500, 1000)
    assert usage.output_tokens == 6


async def test_chat_headers_path_and_minimal_body(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)

    await provider.chat(_request(), DEPLOYMENT)

    request = upstream.last
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert upstream.body == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 4096,  # required by Anthropic; the default when the caller set none
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }


async def test_chat_request_conversion(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)
    png = "data:image/png;base64,iVBORw0KGgo="
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here and there?"},
                {"type": "image_url", "image_url": {"url": png}},
                {"type": "image_url", "image_url": {"url": "https://example.com/map.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "24C"},
    ]
    request = _request(
        messages,
        max_tokens=300,
        temperature=0.5,
        stop="END",
        tools=[WEATHER_TOOL],
        tool_choice="required",
        user="alice",
        service_tier="auto",  # OpenAI-only: dropped, Anthropic would refuse it
        top_k=40,  # Anthropic's own: passed through
    )

    await provider.chat(request, DEPLOYMENT)

    body = upstream.body
    assert body["system"] == "You are terse.\n\nUse metric units."
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.5
    assert body["stop_sequences"] == ["END"]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["metadata"] == {"user_id": "alice"}
    assert body["top_k"] == 40 and "service_tier" not in body
    user, assistant, results = body["messages"]
    assert user["role"] == "user"
    assert user["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert user["content"][2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/map.jpg"}}
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome"}},
        ],
    }
    # Both results in the one user turn that follows the tool calls.
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
async def test_tool_choice_mapping(
    make_provider: Callable[..., Any], choice: Any, parallel: bool | None, expected: dict[str, Any]
) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}

    await provider.chat(_request(tools=[WEATHER_TOOL], tool_choice=choice, **extra), DEPLOYMENT)

    assert upstream.body["tool_choice"] == expected
    assert "parallel_tool_calls" not in upstream.body


async def test_cache_control_on_system_keeps_the_block_form(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)
    system = {
        "role": "system",
        "content": [{"type": "text", "text": "Long manual…", "cache_control": {"type": "ephemeral"}}],
    }

    await provider.chat(_request([system, {"role": "user", "content": "Q"}]), DEPLOYMENT)

    assert upstream.body["system"] == [{"type": "text", "text": "Long manual…", "cache_control": {"type": "ephemeral"}}]


async def test_json_schema_response_format_becomes_output_config(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}

    await provider.chat(
        _request(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}), DEPLOYMENT
    )

    assert upstream.body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


async def test_json_object_is_refused_before_sending_not_answered_in_prose(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream, name="claude")

    with pytest.raises(UnsupportedParameter, match="json_schema") as refused:
        await provider.chat(_request(response_format={"type": "json_object"}), DEPLOYMENT)
    with pytest.raises(UnsupportedParameter):
        await collect(provider.stream(_request(response_format={"type": "json_object"}), DEPLOYMENT))

    assert refused.value.param == "response_format" and refused.value.http_status == 400
    assert "'claude'" in refused.value.message and upstream.requests == []


async def test_tool_call_arguments_that_are_not_json_are_refused_before_sending(
    make_provider: Callable[..., Any],
) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]

    with pytest.raises(InvalidRequest, match="'t1'"):
        await provider.chat(_request(messages), DEPLOYMENT)
    assert upstream.requests == []


async def test_chat_tool_use_becomes_openai_tool_calls(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_tool_use.json")))
    provider = make_provider(AnthropicProvider, upstream)

    response = await provider.chat(_request(tools=[WEATHER_TOOL]), DEPLOYMENT)

    assert response.finish_reason == "tool_calls"
    assert response.content == "I'll check the current weather in San Francisco for you."
    assert response.tool_calls is not None
    [call] = response.tool_calls
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert response.usage.reasoning_tokens == 20


@pytest.mark.parametrize(
    ("stop_reason", "finish"), [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")]
)
async def test_stop_reasons(make_provider: Callable[..., Any], stop_reason: str, finish: str) -> None:
    answer = payload("anthropic_message.json") | {"stop_reason": stop_reason}
    provider = make_provider(AnthropicProvider, Upstream(json_answer(200, answer)))

    assert (await provider.chat(_request(), DEPLOYMENT)).finish_reason == finish


async def test_the_matched_stop_sequence_is_kept_plain_and_streamed(make_provider: Callable[..., Any]) -> None:
    answer = payload("anthropic_message.json") | {"stop_reason": "stop_sequence", "stop_sequence": "to"}
    stopped = sse_text("anthropic_stream.sse").replace(
        '"stop_reason": "end_turn", "stop_sequence":null', '"stop_reason": "stop_sequence", "stop_sequence": "to"')
    provider = make_provider(AnthropicProvider, Upstream(json_answer(200, answer), sse_answer(stopped),
                                                         json_answer(200, payload("anthropic_message.json"))))

    plain = await provider.chat(_request(stop=["to"]), DEPLOYMENT)
    chunks = await collect(provider.stream(_request(stop=["to"]), DEPLOYMENT))

    assert (plain.finish_reason, plain.stop_sequence) == ("stop", "to")
    (finish,) = [c for c in chunks if c.finish_reason]
    assert (finish.finish_reason, finish.stop_sequence) == ("stop", "to")
    ended = await provider.chat(_request(), DEPLOYMENT)  # end_turn: no sequence
    assert ended.stop_sequence is None


# --- a /v1/messages client's own request ----------------------------------------------------


def _messages_client_request(body: dict[str, Any], beta: str | None = None) -> ChatRequest:
    from axtui.server import anthropic_wire as aw

    return aw.to_chat_request(aw.AnthropicRequest.model_validate(body), beta=beta)


CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "smart", "max_tokens": 2000, "stream": False,
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "run", "description": "Run a command", "input_schema": {"type": "object"}},
              {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    "messages": [
        {"role": "user", "content": "Take a screenshot, then run false"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "A"},
            {"type": "tool_use", "id": "toolu_1", "name": "run", "input": {"cmd": "screenshot"}},
            {"type": "text", "text": "B"},
            {"type": "tool_use", "id": "toolu_2", "name": "run", "input": {"cmd": "false"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "cache_control": {"type": "ephemeral"}, "content": [
                {"type": "text", "text": "the screen"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": "exit status 1"},
            {"type": "bogus_block", "note": "whatever Anthropic adds next"}]},
    ],
}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_messages_clients_request_goes_upstream_as_it_was_sent(make_provider: Callable[..., Any],
                                                                       stream: bool) -> None:
    upstream = Upstream(sse_answer(sse_text("anthropic_stream.sse")) if stream
                        else json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream, headers={"anthropic-beta": "token-efficient-tools-2025-02-19"})
    request = _messages_client_request(CLAUDE_CODE_BODY, beta="context-1m-2025-08-07,interleaved-thinking-2025-05-14")

    if stream:
        await collect(provider.stream(request, DEPLOYMENT))
    else:
        await provider.chat(request, DEPLOYMENT)

    # Blocks in their order, the image in a tool result, is_error, cache_control, server tools, unknown blocks.
    expected = {k: v for k, v in CLAUDE_CODE_BODY.items() if k != "stream"} | {"model": DEPLOYMENT.upstream_model}
    assert upstream.body == (expected | {"stream": True} if stream else expected)
    # The client's betas, after the provider's own.
    assert upstream.last.headers["anthropic-beta"] == (
        "token-efficient-tools-2025-02-19,context-1m-2025-08-07,interleaved-thinking-2025-05-14")


async def test_count_tokens_counts_a_messages_clients_own_body(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, {"input_tokens": 321}))
    provider = make_provider(AnthropicProvider, upstream)

    count = await provider.count_tokens(_messages_client_request(CLAUDE_CODE_BODY, beta="b-1"), DEPLOYMENT)

    assert count == 321 and upstream.last.headers["anthropic-beta"] == "b-1"
    assert upstream.body["messages"] == CLAUDE_CODE_BODY["messages"] and upstream.body["tools"] == CLAUDE_CODE_BODY[
        "tools"] and "max_tokens" not in upstream.body


@pytest.mark.parametrize(("ask", "named"), [
    ({"reasoning_effort": "low", "tool_choice": "required"}, '"required"'),
    ({"reasoning_effort": "high", "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     "'get_weather'"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}, "tool_choice": "required"}, '"required"'),
])
async def test_a_forced_tool_choice_beside_thinking_is_refused_before_sending(
        make_provider: Callable[..., Any], ask: dict[str, Any], named: str) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)

    with pytest.raises(UnsupportedParameter) as info:
        await provider.chat(_request(tools=[WEATHER_TOOL], **ask), DEPLOYMENT)

    assert info.value.param == "tool_choice" and info.value.status_code == 400
    thinking = "reasoning_effort" if "reasoning_effort" in ask else "thinking"
    assert named in info.value.message and thinking in info.value.message and '"auto"' in info.value.message
    assert upstream.requests == []
    # Thinking with tool_choice "auto" is what Anthropic takes.
    await provider.chat(_request(tools=[WEATHER_TOOL], **{**ask, "tool_choice": "auto"}), DEPLOYMENT)
    assert upstream.body["tool_choice"] == {"type": "auto"} and "thinking" in upstream.body


# --- streams ------------------------------------------------------------------------------


async def test_stream_text_finish_and_usage(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("anthropic_stream.sse")))
    provider = make_provider(AnthropicProvider, upstream)

    chunks = await collect(provider.stream(_request(), DEPLOYMENT))

    assert "".join(c.delta for c in chunks) == "Hello!"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (25 + 2048, 2048, 15)
    assert all(c.model == "claude-sonnet-4-5-20250929" for c in chunks)
    assert upstream.body["stream"] is True


async def test_stream_tool_use_deltas_and_thinking_left_out(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(sse_text("anthropic_stream_tools.sse")))
    provider = make_provider(AnthropicProvider, upstream)

    chunks = await collect(provider.stream(_request(tools=[WEATHER_TOOL]), DEPLOYMENT))

    assert "".join(c.delta for c in chunks) == "Okay, let's check the weather for San Francisco, CA:"
    deltas = [d for c in chunks for d in c.tool_calls or ()]
    assert deltas[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(d["index"] == 0 for d in deltas)
    arguments = "".join(d["function"]["arguments"] for d in deltas)
    assert json.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (572, 100, 100)
    assert usage.output_tokens == 89


async def test_overloaded_error_event_mid_stream(make_provider: Callable[..., Any]) -> None:
    text = sse_text("anthropic_stream.sse").split("event: content_block_stop")[0] + (
        'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    provider = make_provider(AnthropicProvider, Upstream(sse_answer(text)))
    received: list[Chunk] = []

    with pytest.raises(ProviderServerError) as caught:
        async for chunk in provider.stream(_request(), DEPLOYMENT):
            received.append(chunk)

    assert "".join(c.delta for c in received) == "Hello!"
    assert "Overloaded" in caught.value.message and "overloaded_error" in caught.value.message
    assert caught.value.http_status == 529


async def test_stream_cut_before_message_stop(make_provider: Callable[..., Any]) -> None:
    cut = sse_text("anthropic_stream.sse").split("event: message_delta")[0]
    provider = make_provider(AnthropicProvider, Upstream(sse_answer(cut)))
    received: list[Chunk] = []

    with pytest.raises(StreamInterrupted, match="message_stop"):
        async for chunk in provider.stream(_request(), DEPLOYMENT):
            received.append(chunk)
    assert "".join(c.delta for c in received) == "Hello!"


# --- errors -------------------------------------------------------------------------------------


def _err(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


ERRORS: list[tuple[int, dict[str, Any], dict[str, str], type[ProviderError]]] = [
    (401, _err("authentication_error", "invalid x-api-key"), {}, ProviderAuthError),
    (
        403,
        _err("permission_error", "Your API key does not have permission to use the specified resource."),
        {},
        ProviderAuthError,
    ),
    (400, _err("invalid_request_error", "max_tokens: Field required"), {}, ProviderBadRequest),
    (400, _err("invalid_request_error", "prompt is too long: 215432 tokens > 200000 maximum"), {}, ContextTooLong),
    (404, _err("not_found_error", "model: claude-nope"), {}, ProviderBadRequest),
    (
        429,
        _err("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        {"retry-after": "17"},
        ProviderRateLimited,
    ),
    (500, _err("api_error", "Internal server error"), {}, ProviderServerError),
    (529, _err("overloaded_error", "Overloaded"), {}, ProviderServerError),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"), ERRORS, ids=[f"{e[0]}-{e[3].__name__}" for e in ERRORS]
)
async def test_error_answers(
    make_provider: Callable[..., Any],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: type[ProviderError],
) -> None:
    provider = make_provider(AnthropicProvider, Upstream(json_answer(status, body, headers=headers)), name="claude")

    with pytest.raises(expected) as caught:
        await provider.chat(_request(), DEPLOYMENT)

    error = caught.value
    assert type(error) is expected
    assert error.http_status == status
    assert "'claude'" in error.message and f"HTTP {status}" in error.message
    assert body["error"]["message"] in error.message
    assert KEY not in error.message
    if expected is ProviderRateLimited:
        assert isinstance(error, ProviderRateLimited) and error.retry_after == 17.0
    if expected is ProviderAuthError:
        assert "ANTHROPIC_API_KEY" in error.message


async def test_malformed_body(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AnthropicProvider, Upstream(raw_answer(200, '{"id": "msg_1", "content": [')))

    with pytest.raises(MalformedResponse, match="not a JSON object"):
        await provider.chat(_request(), DEPLOYMENT)


async def test_message_without_content_is_malformed(make_provider: Callable[..., Any]) -> None:
    provider = make_provider(AnthropicProvider, Upstream(json_answer(200, {"id": "msg_1", "type": "message"})))

    with pytest.raises(MalformedResponse, match="a message"):
        await provider.chat(_request(), DEPLOYMENT)


async def test_timeout_and_connection_errors(make_provider: Callable[..., Any]) -> None:
    timing_out = make_provider(AnthropicProvider, Upstream(raising(httpx.ConnectTimeout, "connect timed out")))
    with pytest.raises(ProviderTimeout):
        await timing_out.chat(_request(), DEPLOYMENT)

    refused = make_provider(AnthropicProvider, Upstream(raising(httpx.ConnectError, "Name or service not known")))
    with pytest.raises(ProviderConnectionError, match="Name or service not known"):
        await collect(refused.stream(_request(), DEPLOYMENT))


async def test_missing_key_is_an_auth_error_naming_the_variable(
    make_provider: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream)

    with pytest.raises(ProviderAuthError, match="ANTHROPIC_API_KEY"):
        await provider.chat(_request(), DEPLOYMENT)
    assert upstream.requests == []


# --- embeddings, models, limits ---------------------------------------------------------------


async def test_embeddings_are_refused_with_what_to_do_instead(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, {}))
    provider = make_provider(AnthropicProvider, upstream)

    with pytest.raises(ProviderBadRequest, match=r"no embeddings endpoint.*OpenAI-compatible"):
        await provider.embed(["hello"], "voyage-3")
    assert upstream.requests == []


async def test_list_models_follows_pages(make_provider: Callable[..., Any]) -> None:
    first = {
        "data": [{"type": "model", "id": "claude-opus-4-1"}],
        "has_more": True,
        "first_id": "a",
        "last_id": "claude-opus-4-1",
    }
    second = {
        "data": [{"type": "model", "id": "claude-haiku-4-5"}],
        "has_more": False,
        "first_id": "b",
        "last_id": "claude-haiku-4-5",
    }
    upstream = Upstream(json_answer(200, first), json_answer(200, second))
    provider = make_provider(AnthropicProvider, upstream)

    assert await provider.list_models() == ["claude-opus-4-1", "claude-haiku-4-5"]
    assert upstream.requests[1].url.params["after_id"] == "claude-opus-4-1"


async def test_anthropic_rate_limit_headers_are_learned(make_provider: Callable[..., Any]) -> None:
    headers = {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "12"}
    provider = make_provider(
        AnthropicProvider, Upstream(json_answer(200, payload("anthropic_message.json"), headers=headers))
    )

    await provider.chat(_request(), DEPLOYMENT)

    assert (provider.upstream_limits.limit_requests, provider.upstream_limits.remaining_requests) == (50, 12)


async def test_configured_version_header_is_not_overridden(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, payload("anthropic_message.json")))
    provider = make_provider(AnthropicProvider, upstream, headers={"anthropic-version": "2099-01-01"})

    await provider.chat(_request(), DEPLOYMENT)

    assert upstream.last.headers["anthropic-version"] == "2099-01-01"
