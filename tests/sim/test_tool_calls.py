"""The simulated fleet's tool calls: when it calls, which function, with what arguments, and how each wire streams them."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.providers import Provider, create_provider
from axtui.providers.sim import SimProvider
from axtui.providers.sim.tools import argument_fragments, plan_tool_calls
from axtui.types import ChatRequest, Chunk, assemble_tool_calls

from .helpers import ask, deployment

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1},
        "hourly": {"type": "boolean"},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}, "note": {"type": "string"}},
                  "required": ["lat"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "optional": {"type": "string"},
    },
    "required": ["city", "unit", "days", "hourly", "where", "tags"],
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}


def request(prompt: str, **fields: Any) -> ChatRequest:
    return ask(prompt, tools=[WEATHER, TIME], **fields)


def names(req: ChatRequest) -> list[str]:
    return [c.name for c in plan_tool_calls(req, random.Random(1), "abc")]


def test_when_the_model_calls_a_tool() -> None:
    assert names(request("Write a poem about rain")) == []
    assert names(request("Write a poem about rain", tool_choice="required")) == ["get_weather"]
    assert names(request("Write a poem", tool_choice={"type": "function", "function": {"name": "get_time"}})) == [
        "get_time"]
    assert names(request("Use get_weather please", tool_choice="none")) == []
    assert names(request("What is the time? Use get time for Paris")) == ["get_time"]
    assert names(request("Call a tool for this")) == ["get_weather"]
    assert names(request("Use get_weather and get_time")) == ["get_weather", "get_time"]
    assert names(request("Use get_weather and get_time", parallel_tool_calls=False)) == ["get_weather"]
    # Anthropic's shapes: any, a named tool, disable_parallel_tool_use.
    assert names(request("Hello", tool_choice={"type": "any"})) == ["get_weather"]
    assert names(request("Use get_weather and get_time",
                         tool_choice={"type": "auto", "disable_parallel_tool_use": True})) == ["get_weather"]


def test_a_tool_result_is_answered_in_words() -> None:
    messages: list[Any] = [
        {"role": "user", "content": "Use get_weather for Oslo"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    req = ChatRequest(model="gpt-4o", messages=messages, tools=[WEATHER])
    assert plan_tool_calls(req, random.Random(1), "abc") == []


def test_arguments_are_json_with_every_required_field_of_its_type() -> None:
    for seed in range(20):
        (call,) = plan_tool_calls(request("Forecast for Bergen", tool_choice="required"), random.Random(seed), "x")
        args = json.loads(call.arguments)
        assert set(args) == set(SCHEMA["required"])
        assert args["unit"] == "celsius" and isinstance(args["city"], str) and args["city"]
        assert isinstance(args["days"], int) and args["days"] >= 1 and args["hourly"] is True
        assert set(args["where"]) == {"lat"} and isinstance(args["where"]["lat"], float)
        assert isinstance(args["tags"], list) and len(args["tags"]) == 1


def test_hostile_schemas_still_give_json() -> None:
    weird = [{"type": "function", "function": {"name": "f", "parameters": schema}} for schema in (
        {"type": "object", "required": ["a"], "properties": {"a": {"anyOf": [{"type": "null"}, {"type": "string"}]}}},
        {"type": "object", "required": ["a", 3, None], "properties": "not a dict"},
        {"type": "object", "required": ["deep"], "properties": {"deep": {"$ref": "#/x"}}},
        {"required": ["r"], "properties": {"r": {"type": ["null", "integer"]}}},
        "not a schema",
    )]
    for tool in weird:
        req = ask("Call f", tools=[tool], tool_choice="required")
        (call,) = plan_tool_calls(req, random.Random(0), "x")
        assert isinstance(json.loads(call.arguments), dict)


def test_fragments_rejoin_to_the_arguments() -> None:
    arguments = json.dumps({"city": "Lisbon", "nested": {"a": [1, 2, 3]}})
    pieces = argument_fragments(arguments, random.Random(3))
    assert len(pieces) > 2 and "".join(pieces) == arguments


async def test_in_process_stream_assembles_to_the_plain_answer() -> None:
    sim = SimProvider(ProviderConfig(name="openai", kind="sim"), profile="fast", clock=FakeClock())
    dep = deployment("openai", "gpt-4o-mini")
    req = ask("Use get_weather and get_time for Lima", "gpt-4o-mini", tools=[WEATHER, TIME])
    plain = await sim.chat(req, dep)
    chunks = [c async for c in sim.stream(req, dep)]
    fragments = [f for c in chunks for f in c.tool_calls or ()]
    assert len(fragments) > 4 and plain.finish_reason == "tool_calls"
    assert assemble_tool_calls(fragments) == plain.tool_calls
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


ADAPTERS = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}


@pytest.fixture
async def adapter(serve: Callable[..., Awaitable[str]],
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[[str], Provider]]:
    monkeypatch.setenv("AX_SIM_TEST_KEY", "sk-sim-test")
    url = await serve("fast")
    made: list[Provider] = []

    def make(kind: str) -> Provider:
        provider = create_provider(ProviderConfig(name=f"sim-{kind}", kind=kind, base_url=url + ADAPTERS[kind],
                                                  api_key_env="AX_SIM_TEST_KEY", max_retries=0))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.mark.parametrize(("kind", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"),
                                             ("gemini", "gemini-2.5-flash")])
async def test_each_wire_streams_calls_that_assemble_to_its_plain_answer(adapter: Callable[[str], Provider],
                                                                         kind: str, model: str) -> None:
    provider = adapter(kind)
    dep = deployment(provider.name, model)
    req = ask("Use get_weather and get_time for Hanoi", model, tools=[WEATHER, TIME])
    plain = await provider.chat(req, dep)
    chunks: list[Chunk] = [c async for c in provider.stream(req, dep)]
    calls = assemble_tool_calls([f for c in chunks for f in c.tool_calls or ()])
    assert plain.tool_calls is not None and len(plain.tool_calls) == 2
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in plain.tool_calls]
    assert plain.finish_reason == "tool_calls"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_a_collected_stream_has_whole_tool_calls() -> None:
    from axtui.config import Settings
    from axtui.engine.gateway import Gateway

    settings = Settings.model_validate({"providers": [
        {"name": "openai", "kind": "sim", "profile": "fast", "models": ["gpt-4o-mini"]}]})
    async with await Gateway.open(settings, record=False) as gateway:
        req = ask("Use get_weather for Kyiv", "gpt-4o-mini", tools=[WEATHER], stream=True)
        answer = await gateway.stream(req).collect()
    assert answer.tool_calls is not None and len(answer.tool_calls) == 1
    assert "index" not in answer.tool_calls[0]
    assert set(json.loads(answer.tool_calls[0]["function"]["arguments"])) == set(SCHEMA["required"])
