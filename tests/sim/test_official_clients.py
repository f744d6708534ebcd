"""The official OpenAI and Anthropic SDKs work against the sim server unchanged."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest


async def test_the_openai_sdk(sim_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=sim_url + "/v1", api_key="sk-test", max_retries=0) as client:
        plain = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me about owls"}]
        )
        text = plain.choices[0].message.content or ""
        assert "owls" in text.lower() and plain.usage is not None and plain.usage.completion_tokens > 0

        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me about owls"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        async for chunk in stream:
            pieces += [c.delta.content or "" for c in chunk.choices]
            usage = chunk.usage or usage
        assert "".join(pieces) == text and usage == plain.usage

        vectors = await client.embeddings.create(model="text-embedding-3-small", input=["owls", "eagles"])
        assert [len(d.embedding) for d in vectors.data] == [256, 256]
        assert "gpt-4o" in {m.id async for m in client.models.list()}

        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Sim-Fault": "429"}
            )
        with pytest.raises(openai.BadRequestError, match="maximum context length is 8192") as too_long:
            await client.chat.completions.create(
                model="llama3.1:8b", messages=[{"role": "user", "content": "word " * 9_000}]
            )
        assert too_long.value.code == "context_length_exceeded"


async def test_the_anthropic_sdk(sim_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=sim_url, api_key="sk-ant-test", max_retries=0) as client:
        message = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=2_000, messages=[{"role": "user", "content": "Tell me about owls"}]
        )
        text = "".join(b.text for b in message.content if b.type == "text")
        assert "owls" in text.lower() and message.stop_reason == "end_turn"

        async with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=2_000, messages=[{"role": "user", "content": "Tell me about owls"}]
        ) as stream:
            streamed = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        assert streamed == text and final.usage.output_tokens == message.usage.output_tokens

        assert "claude-haiku-4-5" in {m.id async for m in client.models.list()}
        with pytest.raises(anthropic.InternalServerError) as overloaded:
            await client.messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}],
                extra_headers={"X-Sim-Fault": "503"},
            )
        assert overloaded.value.status_code == 529


async def test_the_openai_sdk_reads_every_choice_and_top_logprobs(sim_url: str) -> None:
    hello: list[Any] = [{"role": "user", "content": "Say hello"}]
    async with openai.AsyncOpenAI(base_url=sim_url + "/v1", api_key="sk-test", max_retries=0) as client:
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=hello, n=2, logprobs=True,
                                                     top_logprobs=2)
        assert [c.index for c in plain.choices] == [0, 1]
        for choice in plain.choices:
            assert choice.logprobs is not None and choice.logprobs.content
            tokens = choice.logprobs.content
            assert "".join(t.token for t in tokens) == choice.message.content
            assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in tokens)

        weather: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=hello, n=2, stream=True,
                                                      tools=[weather], tool_choice="required")
        named: dict[int, str] = {}
        async for chunk in stream:
            for c in chunk.choices:
                for call in c.delta.tool_calls or ():
                    named[c.index] = named.get(c.index, "") + (call.function.name or "" if call.function else "")
        assert named == {0: "get_weather", 1: "get_weather"}, "each choice streams its tool call"
