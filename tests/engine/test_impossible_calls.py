"""Calls no deployment can serve and answers no client could read: clean errors, recorded, never cached."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from axtui.bus import CallRecorded
from axtui.engine.compose import build_gateway
from axtui.errors import MalformedResponse
from axtui.types import Caller, CallRecord, ChatRequest, ChatResponse, Chunk, Deployment, Usage
from tests.cache.helpers import CountingProvider, request, settings_for

ALICE = Caller(user="alice")


class GarbledTools(CountingProvider):
    """Answers with the tool calls it is given, whatever their shape."""

    def __init__(self, calls: Any) -> None:
        super().__init__()
        self.garbled = calls

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        self.calls += 1
        return ChatResponse(content="", model="m", usage=Usage(input_tokens=5, output_tokens=5),
                            tool_calls=self.garbled, finish_reason="tool_calls")

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        self.calls += 1
        yield Chunk(tool_calls=self.garbled)
        yield Chunk(finish_reason="tool_calls")
        yield Chunk(usage=Usage(input_tokens=5, output_tokens=5))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("calls", [
    "garbage",
    [1, 2],
    [{"id": "c", "type": "function", "function": "notadict"}],
    [{"index": "zz", "id": "c", "function": {"name": "f", "arguments": "{}"}}],
    [{"id": "c", "type": "function", "function": {"name": 7, "arguments": "{}"}}],
], ids=["a-string", "numbers", "function-a-string", "index-not-a-number", "name-a-number"])
async def test_garbled_tool_calls_are_a_malformed_answer_recorded_and_never_cached(calls: Any, stream: bool) -> None:
    up = GarbledTools(list(calls) if stream and isinstance(calls, str) else calls)
    records: list[CallRecord] = []
    async with await build_gateway(settings_for(up), providers={up.name: up}) as gw:
        gw.bus.subscribe(lambda ev: records.append(ev.record) if isinstance(ev, CallRecorded) else None)
        for _ in range(2):
            with pytest.raises(MalformedResponse, match="tool calls ax cannot read"):
                if stream:
                    await gw.stream(request("call a tool"), ALICE).collect()
                else:
                    await gw.call(request("call a tool"), ALICE)
        await gw.cache.drain()  # type: ignore[attr-defined]
    assert up.calls == 2  # the second call was not answered from the cache
    assert [(r.status, r.error_class, r.cache) for r in records] == [("error", "MalformedResponse", "miss")] * 2


async def test_well_formed_tool_calls_and_fragments_pass() -> None:
    whole = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]
    for calls, stream in ((whole, False), ([{"index": 0, "id": "c1", "function": {"name": "get_weather"}},
                                            {"index": 0, "function": {"arguments": "{}"}}], True)):
        up = GarbledTools(calls)
        async with await build_gateway(settings_for(up), providers={up.name: up}) as gw:
            if stream:
                answer = await gw.stream(request("weather?"), ALICE).collect()
            else:
                answer = (await gw.call(request("weather?"), ALICE)).response
            assert answer.tool_calls and answer.tool_calls[0]["function"]["name"] == "get_weather"


async def test_an_output_limit_no_deployment_can_write_is_a_400_not_a_wait_or_a_budget_refusal() -> None:
    from axtui.config import Settings
    from axtui.errors import InvalidRequest

    up = CountingProvider()
    settings = Settings.model_validate({
        "providers": [{"name": up.name, "kind": "openai", "models": [], "max_retries": 0}],
        "deployments": [{"model": "m", "provider": up.name, "max_output": 16_384}],
    })
    async with await build_gateway(settings, providers={up.name: up}) as gw:
        big = ChatRequest.model_validate({"model": "m", "max_tokens": 100_000_000,
                                          "messages": [{"role": "user", "content": "hi"}]})
        with pytest.raises(InvalidRequest, match=r"max_tokens is 100,000,000, .*at most 16,384") as caught:
            await gw.call(big, ALICE)
        assert caught.value.param == "max_tokens" and up.calls == 0
        ok = ChatRequest.model_validate({"model": "m", "max_tokens": 16_384,
                                         "messages": [{"role": "user", "content": "hi"}]})
        assert (await gw.call(ok, ALICE)).response.content


async def test_a_tool_call_of_another_kind_passes_as_the_upstream_sent_it() -> None:
    custom = [{"id": "c1", "type": "custom", "custom": {"name": "shell", "input": "ls"}}]
    up = GarbledTools(custom)
    async with await build_gateway(settings_for(up), providers={up.name: up}) as gw:
        answer = (await gw.call(request("list the files"), ALICE)).response
    assert answer.tool_calls == custom
