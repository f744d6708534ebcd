"""kind = "bedrock" against `ax sim serve`'s Bedrock emulation: SigV4 and event streams over real HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.cost.sheet import PriceSheet
from axtui.errors import (
    ConfigError,
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    StreamInterrupted,
)
from axtui.providers import create_provider
from axtui.providers._converse import converse_body
from axtui.providers._wire import UnsupportedParameter
from axtui.providers.bedrock import BedrockProvider
from axtui.providers.sim import SimProvider
from axtui.providers.sim.cloud_bedrock import event_frame, served_model
from axtui.types import ChatRequest, Chunk, Deployment, assemble_tool_calls

from ..support import use_sim_aws
from .clouds import assert_cost_matches_sheet, tool_request
from .helpers import ask

pytest.importorskip("botocore")

SEED = 3
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulated Bedrock's test credentials in the environment, and no other AWS configuration."""
    use_sim_aws(monkeypatch, tmp_path)


@pytest.fixture
async def bedrock(
    serve: Callable[..., Awaitable[str]], aws: None
) -> AsyncIterator[Callable[..., BedrockProvider]]:
    """Build a bedrock provider pointed at a fresh sim server's /bedrock."""
    url = await serve("fast", seed=SEED)
    made: list[BedrockProvider] = []

    def make(**config: Any) -> BedrockProvider:
        settings: dict[str, Any] = {"name": "br", "kind": "bedrock", "endpoint_url": url + "/bedrock",
                                    "region": "us-east-1", "max_retries": 0}
        provider = create_provider(ProviderConfig(**{**settings, **config}))
        assert isinstance(provider, BedrockProvider)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def dep(model: str) -> Deployment:
    return Deployment(provider="br", model=model, upstream_model=model)


def _local() -> SimProvider:
    return SimProvider(ProviderConfig(name="anthropic", kind="sim", profile="fast"), seed=SEED, clock=FakeClock())


def _bare(model: str) -> Deployment:
    return Deployment(provider="anthropic", model=served_model(model, ["claude-haiku-4-5", "claude-sonnet-4-5"]) or "",
                      upstream_model=served_model(model, ["claude-haiku-4-5", "claude-sonnet-4-5"]) or "")


@pytest.mark.parametrize("model", [HAIKU, SONNET])
async def test_plain_answers_usage_and_cost(bedrock: Callable[..., BedrockProvider], model: str) -> None:
    provider, local, sheet = bedrock(), _local(), PriceSheet.load(include_user=False)
    long = "Review this service agreement and list each party's duties, deadlines and penalties. " * 90
    for prompt in ["What makes a good API?", long, long]:
        got = await provider.chat(ask(prompt, model), dep(model))
        want = await local.chat(ask(prompt, _bare(model).model), _bare(model))
        assert got.content == want.content and got.content
        assert got.usage == want.usage, "Converse's usage (cache reads and writes included) read faithfully"
        assert got.finish_reason == "stop"
        assert_cost_matches_sheet(sheet, dep(model), got.usage)


async def test_streams_are_event_streams(bedrock: Callable[..., BedrockProvider]) -> None:
    provider, local = bedrock(), _local()
    chunks: list[Chunk] = [c async for c in provider.stream(ask("Why do cats purr?", HAIKU, stream=True), dep(HAIKU))]
    want = await local.chat(ask("Why do cats purr?", "claude-haiku-4-5"), _bare(HAIKU))
    assert "".join(c.delta for c in chunks) == want.content
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage] == [want.usage]


async def test_tools_plain_and_streamed_and_a_tool_result_round_trip(bedrock: Callable[..., BedrockProvider]) -> None:
    provider = bedrock()
    answer = await provider.chat(tool_request(HAIKU), dep(HAIKU))
    assert answer.finish_reason == "tool_calls" and answer.tool_calls
    call = answer.tool_calls[0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"])["city"]
    streamed = [c async for c in provider.stream(tool_request(HAIKU, stream=True), dep(HAIKU))]
    calls = assemble_tool_calls([d for c in streamed for d in c.tool_calls or []])
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert json.loads(calls[0]["function"]["arguments"])["city"]
    first = tool_request(HAIKU).model_dump(exclude_none=True)
    followup = ChatRequest.model_validate({**first, "tool_choice": "auto", "messages": [
        *first["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'}]})
    assert (await provider.chat(followup, dep(HAIKU))).content


async def test_images_travel_inline(bedrock: Callable[..., BedrockProvider]) -> None:
    picture = ChatRequest.model_validate({"model": HAIKU, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}}]}]})
    provider = bedrock()
    answer = await provider.chat(picture, dep(HAIKU))
    words_only = await provider.chat(ask("What is in this picture?", HAIKU), dep(HAIKU))
    assert answer.content
    assert answer.usage.input_tokens > words_only.usage.input_tokens, "the image reached the model and was counted"


async def test_thinking_comes_back_signed_and_goes_back_first(bedrock: Callable[..., BedrockProvider]) -> None:
    provider = bedrock()
    thoughtful = tool_request(HAIKU, reasoning_effort="low", temperature=0.5)
    answer = await provider.chat(thoughtful, dep(HAIKU))
    assert answer.reasoning and answer.thinking_blocks and answer.thinking_blocks[0]["signature"]
    assert answer.tool_calls
    streamed = [c async for c in provider.stream(tool_request(HAIKU, reasoning_effort="low", stream=True),
                                                 dep(HAIKU))]
    assert "".join(c.reasoning for c in streamed) and any(c.reasoning_signature for c in streamed)

    first = thoughtful.model_dump(exclude_none=True)
    turn = {"role": "assistant", "content": None, "tool_calls": answer.tool_calls,
            "thinking_blocks": answer.thinking_blocks}
    result = {"role": "tool", "tool_call_id": answer.tool_calls[0]["id"], "content": '{"temp_c": 21}'}
    followup = ChatRequest.model_validate({**first, "tool_choice": "auto", "messages": [
        *first["messages"], turn, result]})
    assert (await provider.chat(followup, dep(HAIKU))).content, "the thinking went back as it came and was accepted"

    forged = [{**answer.thinking_blocks[0], "thinking": "something else"}]
    with pytest.raises(ProviderBadRequest, match="signature"):
        await provider.chat(ChatRequest.model_validate({**first, "tool_choice": "auto", "messages": [
            *first["messages"], {**turn, "thinking_blocks": forged}, result]}), dep(HAIKU))
    with pytest.raises(ProviderBadRequest, match="must start with a thinking block"):
        await provider.chat(ChatRequest.model_validate({**first, "tool_choice": "auto", "messages": [
            *first["messages"], {**turn, "thinking_blocks": []}, result]}), dep(HAIKU))


def test_reasoning_effort_becomes_claudes_thinking_budget() -> None:
    request = ask("hi", "m", reasoning_effort="medium", temperature=0.3, max_tokens=1000)
    body = converse_body(request, model="us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 8192}}
    assert body["inferenceConfig"] == {"maxTokens": 9192}, "thinking counts inside maxTokens; no temperature"
    assert "additionalModelRequestFields" not in converse_body(request, model="amazon.nova-pro-v1:0")


def test_the_converse_body() -> None:
    request = ChatRequest.model_validate({
        "model": "m", "max_tokens": 300, "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "top_k": 40,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "look", "arguments": '{"x": 1}'}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "a cat"},
            {"role": "user", "content": "and now?"}],
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}}})
    body = converse_body(request)
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
    assert body["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t1", "name": "look", "input": {"x": 1}}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "a cat"}]}}, {"text": "and now?"}]}, \
        "a tool result and the next question are one user turn: Converse wants turns to alternate"
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "look"}}
    assert body["additionalModelRequestFields"] == {"top_k": 40}
    by_url = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
    with pytest.raises(ProviderBadRequest, match="data: URL"):
        converse_body(by_url)


_FAULTS: list[tuple[str, type[ProviderError], int | None]] = [
    ("401", ProviderAuthError, 403),
    ("403", ProviderAuthError, 403),
    ("429", ProviderRateLimited, 429),
    ("throttling", ProviderRateLimited, 429),
    ("500", ProviderServerError, 500),
    ("503", ProviderServerError, 503),
    ("cut", ProviderConnectionError, None),
    ("malformed", MalformedResponse, None),
]


@pytest.mark.parametrize(("fault", "error", "status"), _FAULTS)
async def test_faults_map_to_error_classes(
    bedrock: Callable[..., BedrockProvider], fault: str, error: type[ProviderError], status: int | None
) -> None:
    provider = bedrock(headers={"X-Sim-Fault": fault})
    with pytest.raises(error) as caught:
        await provider.chat(ask("hi", HAIKU), dep(HAIKU))
    assert type(caught.value) is error
    if status is not None:
        assert caught.value.http_status == status
    if error is ProviderRateLimited:
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after
    if status == 503:
        assert "ServiceUnavailableException" in str(caught.value)


@pytest.mark.parametrize(("fault", "error"), [("cut", StreamInterrupted), ("throttling", ProviderRateLimited),
                                              ("malformed", MalformedResponse), ("429", ProviderRateLimited)])
async def test_stream_faults(bedrock: Callable[..., BedrockProvider], fault: str, error: type[ProviderError]) -> None:
    provider = bedrock(headers={"X-Sim-Fault": fault})
    got: list[Chunk] = []
    with pytest.raises(error):
        async for chunk in provider.stream(ask("Tell me about rivers", HAIKU, stream=True), dep(HAIKU)):
            got.append(chunk)
    if fault in ("cut", "throttling"):
        assert any(c.delta for c in got) and not any(c.usage for c in got)


async def test_a_wrong_secret_or_key_is_refused(
    bedrock: Callable[..., BedrockProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(ProviderAuthError, match="InvalidSignatureException") as caught:
        await bedrock().chat(ask("hi", HAIKU), dep(HAIKU))
    assert caught.value.http_status == 403 and "not-the-secret" not in str(caught.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASOMEONEELSE00000")
    with pytest.raises(ProviderAuthError, match="UnrecognizedClientException"):
        await bedrock().chat(ask("hi", HAIKU), dep(HAIKU))


async def test_session_tokens_are_signed_and_model_errors(
    bedrock: Callable[..., BedrockProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEBYaDSIMULATED")
    provider = bedrock()
    assert (await provider.chat(ask("hi", HAIKU), dep(HAIKU))).content
    with pytest.raises(ProviderBadRequest, match="model identifier is invalid"):
        await provider.chat(ask("hi", "cohere.command-r-v1:0"), dep("cohere.command-r-v1:0"))
    with pytest.raises(ContextTooLong):
        await provider.chat(ask("word " * 140_000, HAIKU, max_tokens=64_000), dep(HAIKU))


async def test_unsigned_requests_are_refused(serve: Callable[..., Awaitable[str]]) -> None:
    url = await serve("fast") + f"/bedrock/model/{HAIKU}/converse"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(url, json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")


def test_event_frames_decode_with_botocore() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    frame = event_frame({":event-type": "messageStop", ":message-type": "event"}, b'{"stopReason":"end_turn"}')
    buffer.add_data(frame[:7])
    assert list(buffer) == []
    buffer.add_data(frame[7:])
    (message,) = list(buffer)
    assert message.headers[":event-type"] == "messageStop"
    assert json.loads(message.payload) == {"stopReason": "end_turn"}


def test_model_ids_and_regions(aws: None) -> None:
    assert served_model("us.anthropic.claude-haiku-4-5-20251001-v1:0", ["claude-haiku-4-5"]) == "claude-haiku-4-5"
    assert served_model("meta.llama3-1-70b-instruct-v1:0", ["claude-haiku-4-5"]) is None
    provider = BedrockProvider(ProviderConfig(name="b", kind="bedrock", region="eu-west-3"))
    assert provider.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert provider._model_path("arn:aws:bedrock:us-east-1:1:inference-profile/us.x", "converse") == (
        "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.x/converse")
    with pytest.raises(ConfigError, match="region"):
        _ = BedrockProvider(ProviderConfig(name="b", kind="bedrock")).base_url


async def test_without_botocore_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    provider = BedrockProvider(ProviderConfig(name="b", kind="bedrock", region="us-east-1",
                                              endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match=r"pip install 'axtui\[bedrock\]'"):
        await provider.chat(ask("hi", HAIKU), dep(HAIKU))
    await provider.aclose()


_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
           "required": ["city", "days"], "additionalProperties": False}


def test_a_json_schema_becomes_converse_structured_output_and_json_mode_is_refused() -> None:
    request = ask("Plan a trip.", HAIKU, response_format={
        "type": "json_schema", "json_schema": {"name": "trip", "description": "A trip", "schema": _SCHEMA}})
    config = converse_body(request)["outputConfig"]["textFormat"]
    assert config["type"] == "json_schema"
    definition = config["structure"]["jsonSchema"]
    assert json.loads(definition["schema"]) == _SCHEMA, "the schema travels as a JSON string"
    assert (definition["name"], definition["description"]) == ("trip", "A trip")
    with pytest.raises(UnsupportedParameter, match="json_object") as refused:
        converse_body(ask("Plan a trip.", HAIKU, response_format={"type": "json_object"}))
    assert refused.value.param == "response_format"
    assert "outputConfig" not in converse_body(ask("Plan a trip.", HAIKU))


async def test_structured_output_answers_match_the_schema_plain_and_streamed(
    bedrock: Callable[..., BedrockProvider],
) -> None:
    provider = bedrock()
    request = ask("Plan a trip to Lisbon.", HAIKU, response_format={
        "type": "json_schema", "json_schema": {"name": "trip", "schema": _SCHEMA}})
    answer = json.loads((await provider.chat(request, dep(HAIKU))).content or "")
    assert set(answer) == {"city", "days"} and isinstance(answer["city"], str) and isinstance(answer["days"], int)
    streamed = "".join([c.delta async for c in provider.stream(request.model_copy(update={"stream": True}),
                                                                dep(HAIKU))])
    assert set(json.loads(streamed)) == {"city", "days"}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_without_structured_output_moves_the_call_on_and_says_to_mark_it(aws: None, stream: bool) -> None:
    """Bedrock serves structured output on some models only; another's 400 must not end a call others could serve."""
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"x-amzn-ErrorType": "ValidationException"}, json={
            "message": "This model doesn't support the outputConfig.textFormat field."})

    provider = create_provider(ProviderConfig(name="br", kind="bedrock", region="us-east-1", max_retries=0),
                               transport=httpx.MockTransport(refuse))
    model = "meta.llama3-70b-instruct-v1:0"
    request = ask("Plan a trip.", model, response_format={
        "type": "json_schema", "json_schema": {"name": "trip", "schema": _SCHEMA}}, stream=stream)
    with pytest.raises(UnsupportedParameter, match="json_mode = false") as refused:
        if stream:
            [c async for c in provider.stream(request, dep(model))]
        else:
            await provider.chat(request, dep(model))
    assert refused.value.param == "response_format" and "outputConfig" in str(refused.value)
    # Any other 400 stays what it is: the call does not move on for a request no model could take.
    with pytest.raises(ProviderBadRequest) as other:
        await provider.chat(ask("Plan a trip.", model), dep(model))
    assert not isinstance(other.value, UnsupportedParameter)
    await provider.aclose()
