"""Tool calls, thinking, token counting and sampling options through `ax serve` over `ax sim serve`.

The official SDKs talk to the gateway; the gateway's OpenAI, Anthropic and
Gemini adapters talk to the simulated fleet in each one's wire format.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from axtui.server.key_limits import apply_key_limits
from axtui.server.keys import create_key
from axtui.store import Store

from .._live import LiveServer
from ._sim_upstream import KEY_ENV, UPSTREAMS, upstream_settings

MODELS = list(UPSTREAMS)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "required": ["city", "unit"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}},
    },
}
CLAUDE_WEATHER = {"name": "get_weather", "description": "The weather in a city",
                  "input_schema": WEATHER["function"]["parameters"]}  # type: ignore[index]
THINKING = {"type": "enabled", "budget_tokens": 2048}


def oai(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def claude(live: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0, timeout=30)


def _streamed_calls(api: openai.OpenAI, **ask: Any) -> tuple[list[dict[str, Any]], str, int]:
    """The tool calls of a streamed chat answer, assembled by index as a client does; finish reason; deltas."""
    calls: dict[int, dict[str, Any]] = {}
    finish, pieces = "", 0
    for chunk in api.chat.completions.create(stream=True, **ask):
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] = delta.function.name or call["name"]
                    call["arguments"] += delta.function.arguments or ""
                pieces += 1
            finish = choice.finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish, pieces


def _plain_calls(api: openai.OpenAI, **ask: Any) -> tuple[list[dict[str, Any]], str, str]:
    raw = api.chat.completions.with_raw_response.create(**ask)
    completion = raw.parse()
    message = completion.choices[0].message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}  # type: ignore[union-attr]
             for c in message.tool_calls or ()]
    return calls, completion.choices[0].finish_reason, raw.headers["x-ax-cache"]


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_calls_arrive_in_fragments_and_hit_the_cache_whole(over_sim: LiveServer, key: str,
                                                                         model: str) -> None:
    api = oai(over_sim, key)
    ask = {"model": model, "tools": [WEATHER], "messages": [
        {"role": "user", "content": "Use get_weather for Madrid and Quito"}]}
    streamed, finish, pieces = _streamed_calls(api, **ask)
    assert finish == "tool_calls" and [c["name"] for c in streamed] == ["get_weather"]
    assert set(json.loads(streamed[0]["arguments"])) == {"city", "unit"}
    if UPSTREAMS[model][1] != "gemini":  # Gemini sends each call whole; the others in pieces
        assert pieces > 2
    # stream -> plain: the cached answer is one well-formed call, not its fragments.
    plain, plain_finish, cache = _plain_calls(api, **ask)
    assert cache == "exact" and plain_finish == "tool_calls"
    assert plain == streamed
    # ... and stream -> stream replays it whole.
    again, _, _ = _streamed_calls(api, **ask)
    assert again == streamed


@pytest.mark.parametrize("model", MODELS)
def test_plain_tool_calls_replay_as_a_well_formed_stream(over_sim: LiveServer, key: str, model: str) -> None:
    api = oai(over_sim, key)
    ask = {"model": model, "tools": [WEATHER], "tool_choice": "required",
           "messages": [{"role": "user", "content": "Is it cold in Reykjavik today?"}]}
    plain, finish, cache = _plain_calls(api, **ask)
    assert cache == "miss" and finish == "tool_calls" and len(plain) == 1
    streamed, stream_finish, _ = _streamed_calls(api, **ask)
    assert streamed == plain and stream_finish == "tool_calls"


@pytest.mark.parametrize("model", MODELS)
def test_tool_result_gets_a_text_answer(over_sim: LiveServer, key: str, model: str) -> None:
    api = oai(over_sim, key)
    messages: list[Any] = [{"role": "user", "content": "Use get_weather for Cairo"}]
    first = api.chat.completions.create(model=model, tools=[WEATHER], messages=messages)
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 31}'}]
    second = api.chat.completions.create(model=model, tools=[WEATHER], messages=messages)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_anthropic_sdk_tool_use_streamed_and_plain(over_sim: LiveServer, key: str) -> None:
    api = claude(over_sim, key)
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 500, "tools": [CLAUDE_WEATHER],
                           "tool_choice": {"type": "any"},
                           "messages": [{"role": "user", "content": "Weather in Perth please"}]}
    with api.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    plain = api.messages.create(**ask)
    for message in (streamed, plain):
        assert message.stop_reason == "tool_use"
        block = message.content[-1]
        assert block.type == "tool_use" and block.name == "get_weather"
        assert set(block.input) == {"city", "unit"}  # type: ignore[arg-type]
    assert streamed.content[-1].input == plain.content[-1].input  # type: ignore[union-attr]


# -- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_round_trip_on_a_tool_turn(over_sim: LiveServer, key: str, stream: bool) -> None:
    api = claude(over_sim, key)
    messages: list[Any] = [{"role": "user", "content": "Check get_weather for Nairobi"}]
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 4000, "thinking": THINKING,
                           "tools": [CLAUDE_WEATHER], "messages": messages}
    if stream:
        with api.messages.stream(**ask) as events:
            first = events.get_final_message()
    else:
        first = api.messages.create(**ask)
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "tool_use"]
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    tool_use = first.content[1]
    assert tool_use.type == "tool_use"
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "22C"}]}
    # The sim checks the signature as Anthropic does: the blocks went through ax untouched.
    second = api.messages.create(**{**ask, "messages": [
        *messages, {"role": "assistant", "content": [b.model_dump() for b in first.content]}, result]})
    assert second.stop_reason == "end_turn" and any(b.type == "text" for b in second.content)
    # An altered signature, or a tool turn without its thinking, is refused upstream with a 400.
    forged = [{**first.content[0].model_dump(), "signature": "Zm9yZ2Vk"}, tool_use.model_dump()]
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        api.messages.create(**{**ask, "messages": [*messages, {"role": "assistant", "content": forged}, result]})
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        api.messages.create(**{**ask, "messages": [
            *messages, {"role": "assistant", "content": [tool_use.model_dump()]}, result]})


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gemini-2.5-flash"])
@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_effort_returns_reasoning_content(over_sim: LiveServer, key: str, model: str,
                                                   stream: bool) -> None:
    api = oai(over_sim, key)
    ask: dict[str, Any] = {"model": model, "reasoning_effort": "low",
                           "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    if stream:
        thought = text = ""
        for chunk in api.chat.completions.create(stream=True, **ask):
            for choice in chunk.choices:
                thought += getattr(choice.delta, "reasoning_content", None) or ""
                text += choice.delta.content or ""
    else:
        message = api.chat.completions.create(**ask).choices[0].message
        thought, text = getattr(message, "reasoning_content", "") or "", message.content or ""
    assert thought.startswith("Let me think") and text and thought not in text
    plain = api.chat.completions.create(model=model, messages=[{"role": "user", "content": "Why is grass green?"}])
    assert getattr(plain.choices[0].message, "reasoning_content", None) is None


def test_gemini_reports_reasoning_tokens(over_sim: LiveServer, key: str) -> None:
    completion = oai(over_sim, key).chat.completions.create(
        model="gemini-2.5-flash", reasoning_effort="medium", messages=[{"role": "user", "content": "Why do cats purr?"}])
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens > 0


# -- count_tokens -------------------------------------------------------------------------------


def test_count_tokens_is_anthropics_own_count(over_sim: LiveServer, key: str) -> None:
    api = claude(over_sim, key)
    raw = api.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5", system="Be brief.", tools=[CLAUDE_WEATHER],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "How many tokens is this sentence?"}])
    counted = raw.parse()
    assert counted.input_tokens > 10 and raw.headers["x-ax-tokens-estimated"] == "false"
    bigger = api.messages.count_tokens(model="claude-haiku-4-5", messages=[
        {"role": "user", "content": "How many tokens is this sentence? " * 20}])
    assert bigger.input_tokens > counted.input_tokens


def test_count_tokens_elsewhere_is_marked_estimated(over_sim: LiveServer, key: str) -> None:
    raw = claude(over_sim, key).messages.with_raw_response.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count me"}])
    assert raw.headers["x-ax-tokens-estimated"] == "true"
    assert raw.parse().input_tokens > 0 and raw.http_response.json()["estimated"] is True


def test_count_tokens_refusals(over_sim: LiveServer, key: str) -> None:
    api = claude(over_sim, key)
    with pytest.raises(anthropic.NotFoundError):
        api.messages.count_tokens(model="claude-9", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError):
        api.messages.count_tokens(model="claude-haiku-4-5", messages=[])
    with pytest.raises(anthropic.AuthenticationError):
        claude(over_sim, "wrong").messages.count_tokens(model="claude-haiku-4-5",
                                                        messages=[{"role": "user", "content": "x"}])
    assert httpx.get(f"{over_sim.url}/v1/messages/count_tokens").status_code == 401, "the key comes first"
    wrong_method = httpx.get(f"{over_sim.url}/v1/messages/count_tokens", headers={"x-api-key": key})
    assert wrong_method.status_code == 405


def test_count_tokens_passes_the_keys_rate_limit_but_not_its_budget(
        sim_upstream: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, info = create_key(store, "counter", rpm=3, budget_nanos=1)
    apply_key_limits(store, info)
    monkeypatch.setenv(KEY_ENV, "sk-sim-upstream")
    live = LiveServer(upstream_settings(sim_upstream)).start()
    try:
        api = claude(live, raw)
        ask: dict[str, Any] = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Count me"}]}
        # A count costs nothing, so a key with no budget left may still count ...
        first = api.messages.with_raw_response.count_tokens(**ask)
        assert first.parse().input_tokens > 0 and first.headers["x-ratelimit-remaining-requests"] == "2"
        with pytest.raises(anthropic.APIStatusError) as spent:
            api.messages.create(max_tokens=50, **ask)
        assert spent.value.status_code == 402
        api.messages.count_tokens(**ask)
        # ... but each count is a request: the key's requests per minute hold it like any other call.
        with pytest.raises(anthropic.RateLimitError) as limited:
            api.messages.count_tokens(**ask)
        assert int(limited.value.response.headers["retry-after"]) >= 1 and info.id in limited.value.message
    finally:
        live.stop()


# -- n, logprobs, embeddings --------------------------------------------------------------------


def test_n_and_logprobs_pass_through_to_openai_compatible_upstreams(over_sim: LiveServer, key: str) -> None:
    api = oai(over_sim, key)
    hello = [{"role": "user", "content": "Say hello"}]
    two = api.chat.completions.create(model="gpt-4o-mini", n=2, messages=hello)  # type: ignore[arg-type]
    assert [c.index for c in two.choices] == [0, 1] and all(c.message.content for c in two.choices)
    probs = api.chat.completions.with_raw_response.create(model="gpt-4o-mini", logprobs=True, top_logprobs=2,
                                                          messages=hello)  # type: ignore[arg-type]
    choice = probs.parse().choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert probs.headers["x-ax-cache"] == "miss"


def test_streamed_n_and_logprobs_keep_their_choices(over_sim: LiveServer, key: str) -> None:
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    roles: list[int] = []
    tokens = 0
    for chunk in oai(over_sim, key).chat.completions.create(
            model="gpt-4o-mini", n=2, logprobs=True, stream=True,
            messages=[{"role": "user", "content": "Say hello twice"}]):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.delta.role:
                roles.append(choice.index)
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
            tokens += len(choice.logprobs.content or []) if choice.logprobs else 0
    assert set(texts) == {0, 1} and texts[0] and texts[0] == texts[1]
    assert finishes == {0: "stop", 1: "stop"} and sorted(roles) == [0, 1] and tokens > 0


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gemini-2.5-flash"])
@pytest.mark.parametrize(("extra", "param"), [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
                                              ({"top_logprobs": 3}, "top_logprobs")])
def test_other_providers_refuse_n_and_logprobs_naming_the_parameter(over_sim: LiveServer, key: str, model: str,
                                                                    extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(over_sim, key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                   **extra)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and param in body["message"]



@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-004"])
def test_embeddings_pass_dimensions(over_sim: LiveServer, key: str, model: str) -> None:
    api = oai(over_sim, key)
    full = api.embeddings.create(model=model, input=["a cat", "a dog"])
    short = api.embeddings.create(model=model, input=["a cat", "a dog"], dimensions=64)
    assert len(full.data[0].embedding) == 256
    assert [len(d.embedding) for d in short.data] == [64, 64]


async def test_concurrent_streams_and_plain_calls_agree_on_tool_calls(over_sim: LiveServer, key: str) -> None:
    import asyncio

    api = openai.AsyncOpenAI(base_url=f"{over_sim.url}/v1", api_key=key, max_retries=0, timeout=30)
    ask: dict[str, Any] = {"tools": [WEATHER], "messages": [{"role": "user", "content": "Use get_weather for Baku"}]}

    async def streamed(model: str) -> list[tuple[str, Any]]:
        calls: dict[int, list[str]] = {}
        async for chunk in await api.chat.completions.create(model=model, stream=True, **ask):
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    call = calls.setdefault(delta.index, ["", ""])
                    if delta.function is not None:
                        call[0] = delta.function.name or call[0]
                        call[1] += delta.function.arguments or ""
        return [(name, json.loads(arguments)) for name, arguments in (calls[i] for i in sorted(calls))]

    async def plain(model: str) -> list[tuple[str, Any]]:
        message = (await api.chat.completions.create(model=model, **ask)).choices[0].message
        return [(c.function.name, json.loads(c.function.arguments))  # type: ignore[union-attr]
                for c in message.tool_calls or ()]

    for model in MODELS:
        answers = await asyncio.gather(*[streamed(model) if i % 2 else plain(model) for i in range(16)])
        assert all(answer == answers[0] for answer in answers), (model, answers)
        ((name, arguments),) = answers[0]
        assert name == "get_weather" and set(arguments) == {"city", "unit"}
    await api.close()


def test_chat_clients_send_anthropic_thinking_back_with_the_message(over_sim: LiveServer, key: str) -> None:
    api = oai(over_sim, key)
    messages: list[Any] = [{"role": "user", "content": "Use get_weather for Hobart"}]
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "reasoning_effort": "low", "tools": [WEATHER]}
    first = api.chat.completions.create(messages=messages, **ask).choices[0].message
    sent_back = first.model_dump(exclude_none=True)
    assert sent_back["thinking_blocks"][0]["signature"] and first.tool_calls
    result = {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "18C"}
    second = api.chat.completions.create(messages=[*messages, sent_back, result], **ask)
    assert second.choices[0].message.content
    # A client that keeps only role, content and tool_calls is served too: without thinking for that turn
    # (the sim, as Anthropic, refuses thinking after a tool turn that lost its own).
    without = {k: v for k, v in sent_back.items() if k in ("role", "content", "tool_calls")}
    plain = api.chat.completions.create(messages=[*messages, without, result], **ask).choices[0].message
    assert plain.content and getattr(plain, "reasoning_content", None) is None


def test_a_streamed_chat_answer_carries_its_signed_thinking_for_the_next_turn(over_sim: LiveServer, key: str) -> None:
    api = oai(over_sim, key)
    messages: list[Any] = [{"role": "user", "content": "Use get_weather for Tromso, streaming"}]
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "reasoning_effort": "low", "tools": [WEATHER]}
    # The SDK's stream helper puts the message together as the client sends it back.
    with api.chat.completions.stream(messages=messages, **ask) as events:
        first = events.get_final_completion().choices[0].message
    sent_back = first.model_dump(exclude_none=True)
    (block,) = sent_back["thinking_blocks"]
    assert block["type"] == "thinking" and block["signature"] and block["thinking"] == sent_back["reasoning_content"]
    assert first.tool_calls
    result = {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "-3C"}
    second = api.chat.completions.create(messages=[*messages, sent_back, result], **ask)
    assert second.choices[0].message.content


def test_thinking_survives_the_cache_whichever_way_the_answer_was_served(over_sim: LiveServer, key: str) -> None:
    api = claude(over_sim, key)
    for first_streamed, then_streamed in [(True, False), (False, True), (True, True)]:
        messages: list[Any] = [{"role": "user", "content": f"Check get_weather for Lima ({first_streamed}, "
                                                           f"{then_streamed})"}]
        ask: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 4000, "thinking": THINKING,
                               "tools": [CLAUDE_WEATHER], "messages": messages}
        answers = []
        for streamed in (first_streamed, then_streamed):
            if streamed:
                with api.messages.stream(**ask) as events:
                    answers.append(events.get_final_message())
            else:
                answers.append(api.messages.create(**ask))
        miss, hit = answers
        assert [b.type for b in hit.content] == ["thinking", "tool_use"], (first_streamed, then_streamed, hit)
        assert hit.content[0].model_dump() == miss.content[0].model_dump()
        # The cached thinking is still signed: the tool turn after it is taken upstream.
        result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": hit.content[1].id,
                                               "content": "19C"}]}
        after = api.messages.create(**{**ask, "messages": [
            *messages, {"role": "assistant", "content": [b.model_dump() for b in hit.content]}, result]})
        assert after.stop_reason == "end_turn"


def test_a_stream_that_begins_with_thinking_names_its_deployment(over_sim: LiveServer, key: str) -> None:
    body = {"model": "claude-haiku-4-5", "stream": True, "reasoning_effort": "low",
            "messages": [{"role": "user", "content": "Why is the sea salty? (headers)"}]}
    with httpx.stream("POST", f"{over_sim.url}/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {key}", "x-ax-cache": "no-store"}, timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["x-ax-provider"] and answer.headers["x-ax-model"], dict(answer.headers)
        answer.read()
