"""The OpenAI adapter speaking the Responses API natively, against payloads shaped like OpenAI's documentation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from axtui.config import ProviderConfig
from axtui.errors import ProviderRateLimited, ProviderServerError, StreamInterrupted
from axtui.providers.azure import AzureProvider
from axtui.providers.openai import OpenAIProvider
from axtui.types import ChatRequest, Deployment, NativeRequest

from .fake_upstream import Upstream, collect, json_answer, sse_answer

DEPLOYMENT = Deployment(provider="acme", model="smart", upstream_model="gpt-5-2025-08-07")
BODY = {"model": "smart", "input": "Find today's news", "tools": [{"type": "web_search"}],
        "include": ["web_search_call.action.sources"], "store": False}
ANSWER: dict[str, Any] = {
    "id": "resp_upstream1", "object": "response", "created_at": 1741476542, "status": "completed",
    "model": "gpt-5-2025-08-07",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Looking it up."}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Rain in Lisbon.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "save", "arguments": "{\"a\":1}",
         "status": "completed"},
    ],
    "usage": {"input_tokens": 2006, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 300,
              "output_tokens_details": {"reasoning_tokens": 192}, "total_tokens": 2306},
}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")


def _native(**body: Any) -> ChatRequest:
    request = ChatRequest.model_validate({"model": "smart", "messages": [{"role": "user", "content": "news"}]})
    return request.with_native(NativeRequest(api="responses", body={**BODY, **body}))


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


@pytest.mark.parametrize(("base_url", "setting", "native"), [
    (None, None, True), ("https://api.openai.com/v1/", None, True), ("http://127.0.0.1:11434/v1", None, False),
    ("http://127.0.0.1:8000/v1", "native", True), (None, "translate", False)])
def test_who_speaks_the_responses_api_natively(base_url: str | None, setting: str | None, native: bool) -> None:
    provider = OpenAIProvider(ProviderConfig(name="o", kind="openai", base_url=base_url, responses=setting))
    assert provider.speaks("responses") is native
    assert not provider.speaks("messages")
    azure = AzureProvider(ProviderConfig(name="a", kind="azure", base_url="https://r.openai.azure.com"))
    assert not azure.speaks("responses"), "Azure serves it in some regions only: native when configured so"


async def test_azure_speaks_it_on_the_v1_api_by_deployment(make_provider: Callable[..., Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_KEY", "azure-key-0123456789")
    upstream = Upstream(json_answer(200, ANSWER))
    provider = make_provider(AzureProvider, upstream, base_url="https://r.openai.azure.com", responses="native",
                             deployments={"gpt-5-2025-08-07": "gpt5-eu"})
    assert provider.speaks("responses")
    response = await provider.chat(_native(), DEPLOYMENT)
    request = upstream.last
    assert request.url.path == "/openai/v1/responses" and "api-version" not in request.url.params
    assert request.headers["api-key"] == "azure-key-0123456789"
    assert upstream.body == {**BODY, "model": "gpt5-eu"} and response.native == ANSWER


async def test_the_body_goes_to_responses_as_sent_and_the_answer_is_read(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, ANSWER))
    provider = make_provider(OpenAIProvider, upstream)
    response = await provider.chat(_native(), DEPLOYMENT)
    assert upstream.last.url.path == "/v1/responses"
    assert upstream.body == {**BODY, "model": "gpt-5-2025-08-07"}
    assert response.content == "Rain in Lisbon." and response.reasoning == "Looking it up."
    assert response.tool_calls == [{"id": "call_1", "type": "function",
                                    "function": {"name": "save", "arguments": "{\"a\":1}"}}]
    assert response.finish_reason == "tool_calls" and response.native == ANSWER
    usage = response.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        2006, 1920, 300, 192)


async def test_a_request_without_a_native_body_is_chat(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(json_answer(200, {"choices": [{"message": {"content": "hi"}}]}))
    provider = make_provider(OpenAIProvider, upstream)
    plain = ChatRequest.model_validate({"model": "smart", "messages": [{"role": "user", "content": "hi"}]})
    assert (await provider.chat(plain, DEPLOYMENT)).native is None
    assert upstream.last.url.path == "/v1/chat/completions"
    translated = make_provider(OpenAIProvider, upstream, name="other", responses="translate")
    await translated.chat(_native(), DEPLOYMENT)
    assert upstream.last.url.path == "/v1/chat/completions" and "tools" not in upstream.body


async def test_failures_map_like_any_other(make_provider: Callable[..., Any]) -> None:
    limited = Upstream(json_answer(429, {"error": {"message": "Rate limit reached", "type": "requests",
                                                   "code": "rate_limit_exceeded"}}, {"retry-after": "3"}))
    with pytest.raises(ProviderRateLimited) as info:
        await make_provider(OpenAIProvider, limited).chat(_native(), DEPLOYMENT)
    assert info.value.retry_after == 3
    failed = Upstream(json_answer(200, {**ANSWER, "status": "failed", "output": [],
                                        "error": {"code": "server_error", "message": "The model failed"}}))
    with pytest.raises(ProviderServerError, match="The model failed"):
        await make_provider(OpenAIProvider, failed).chat(_native(), DEPLOYMENT)


CREATED = {"type": "response.created", "sequence_number": 0, "response": {**ANSWER, "status": "in_progress",
                                                                         "output": [], "usage": None}}
SEARCH = {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
          "item": {"type": "web_search_call", "id": "ws_1", "status": "in_progress"}}
DELTA = {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1", "output_index": 1,
         "content_index": 0, "delta": "Rain"}
CALL = {"type": "response.output_item.added", "sequence_number": 3, "output_index": 2,
        "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "save", "arguments": ""}}
ARGS = {"type": "response.function_call_arguments.delta", "sequence_number": 4, "item_id": "fc_1",
        "output_index": 2, "delta": "{\"a\":1}"}
DONE = {"type": "response.completed", "sequence_number": 5, "response": ANSWER}


async def test_a_stream_holds_back_what_comes_before_the_answer(make_provider: Callable[..., Any]) -> None:
    upstream = Upstream(sse_answer(_sse(CREATED, SEARCH, DELTA, CALL, ARGS, DONE)))
    chunks = await collect(make_provider(OpenAIProvider, upstream).stream(_native(), DEPLOYMENT))
    assert upstream.body["stream"] is True
    # Nothing reaches the caller before the first output, so a failure until then can still fall back.
    assert chunks[0].native_events == [CREATED, SEARCH, DELTA] and chunks[0].delta == "Rain"
    assert [c.native_events for c in chunks[1:]] == [[CALL], [ARGS], [DONE]]
    assert chunks[1].tool_calls == [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "save", "arguments": ""}}]
    assert chunks[2].tool_calls == [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls" and last.native == ANSWER
    assert last.usage is not None and (last.usage.cached_input_tokens, last.usage.reasoning_tokens) == (1920, 192)


async def test_a_stream_that_fails_or_stops_short_raises(make_provider: Callable[..., Any]) -> None:
    cut = Upstream(sse_answer(_sse(CREATED, DELTA)))
    with pytest.raises(StreamInterrupted, match=r"response\.completed"):
        await collect(make_provider(OpenAIProvider, cut).stream(_native(), DEPLOYMENT))
    failed_event = {"type": "response.failed", "sequence_number": 3, "response": {
        **ANSWER, "status": "failed", "error": {"code": "server_error", "message": "The model crashed"}}}
    failed = Upstream(sse_answer(_sse(CREATED, DELTA, failed_event)))
    with pytest.raises(ProviderServerError, match="The model crashed"):
        await collect(make_provider(OpenAIProvider, failed).stream(_native(), DEPLOYMENT))
