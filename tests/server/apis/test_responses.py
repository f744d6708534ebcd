"""The Responses API with the official OpenAI SDK, through `ax serve` over `ax sim serve`.

Every provider kind serves it (OpenAI, Anthropic and Gemini adapters,
each speaking its own wire format to the simulated fleet): plain and
streamed answers, function tools, ``previous_response_id`` and the stored
responses of one user.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from .._live import LiveServer
from ._sim_upstream import UPSTREAMS

MODELS = list(UPSTREAMS)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "days": {"type": "integer"}},
        "required": ["city", "unit"],
    },
}
TIME = {"type": "function", "name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}


def client(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def recorded(live: LiveServer, request_id: str) -> dict[str, Any]:
    (row,) = live.calls("request_id = :r", r=request_id)
    return row


@pytest.mark.parametrize("model", MODELS)
def test_plain_response_on_every_provider_kind(over_sim: LiveServer, key: str, model: str) -> None:
    raw = client(over_sim, key).responses.with_raw_response.create(
        model=model, input="Explain connection pooling briefly", instructions="Answer in one paragraph.",
        max_output_tokens=300, temperature=0.3, metadata={"ticket": "42"})
    response = raw.parse()
    assert response.status == "completed" and response.object == "response"
    assert response.output_text and response.output[0].type == "message"
    assert response.usage is not None and response.usage.output_tokens > 0 and response.usage.input_tokens > 0
    assert response.metadata == {"ticket": "42"} and response.max_output_tokens == 300
    assert response.id == raw.headers["x-ax-request-id"] and response.id.startswith("resp_")
    assert raw.headers["x-ax-provider"] == UPSTREAMS[model][0]
    row = recorded(over_sim, response.id)
    assert row["endpoint"] == "responses" and row["status"] == "ok" and row["user"] == "alice"
    assert row["output_tokens"] == response.usage.output_tokens and row["cost_nanos"] is not None


@pytest.mark.parametrize("model", MODELS)
def test_streamed_response_follows_the_documented_event_sequence(over_sim: LiveServer, key: str,
                                                                 model: str) -> None:
    with client(over_sim, key).responses.stream(model=model, input="Describe the water cycle") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas and final.output_text == deltas
    assert final.usage is not None and final.usage.output_tokens > 0
    row = recorded(over_sim, final.id)
    assert row["endpoint"] == "responses" and row["stream"] == 1 and row["status"] == "ok"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_call_with_required_arguments(over_sim: LiveServer, key: str, model: str, stream: bool) -> None:
    api = client(over_sim, key)
    ask = {"model": model, "input": "What's the weather like in Lisbon?", "tools": [WEATHER],
           "tool_choice": "required"}
    if stream:
        with api.responses.stream(**ask) as events:  # type: ignore[arg-type]
            kinds = [e.type for e in events]
            response = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        response = api.responses.create(**ask)  # type: ignore[arg-type]
    calls = [o for o in response.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id
    arguments = json.loads(calls[0].arguments)
    assert set(arguments) == {"city", "unit"} and arguments["unit"] == "celsius"
    assert isinstance(arguments["city"], str)


@pytest.mark.parametrize("model", MODELS)
def test_parallel_calls_when_allowed_and_one_when_not(over_sim: LiveServer, key: str, model: str) -> None:
    api = client(over_sim, key)
    ask = "Use get_weather and get_time for Tokyo"
    both = api.responses.create(model=model, input=ask, tools=[WEATHER, TIME])
    assert [o.name for o in both.output if o.type == "function_call"] == ["get_weather", "get_time"]
    with api.responses.stream(model=model, input=ask + " now", tools=[WEATHER, TIME]) as stream:
        streamed = stream.get_final_response()
    calls = [o for o in streamed.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert all(json.loads(c.arguments) for c in calls) and len({c.call_id for c in calls}) == 2
    one = api.responses.create(model=model, input=ask, tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert [o.name for o in one.output if o.type == "function_call"] == ["get_weather"]


def test_no_tool_call_when_tool_choice_is_none_or_prompt_does_not_ask(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    named = api.responses.create(model="gpt-4o-mini", input="Use get_weather for Oslo", tools=[WEATHER],
                                 tool_choice="none")
    assert [o.type for o in named.output] == ["message"]
    plain = api.responses.create(model="gpt-4o-mini", input="Write a haiku about autumn", tools=[WEATHER])
    assert [o.type for o in plain.output] == ["message"]


@pytest.mark.parametrize("model", MODELS)
def test_previous_response_id_continues_a_tool_conversation(over_sim: LiveServer, key: str, model: str) -> None:
    api = client(over_sim, key)
    first = api.responses.create(model=model, input="Check get_weather for Rome", tools=[WEATHER],
                                 instructions="You are a weather bot.")
    call = next(o for o in first.output if o.type == "function_call")
    second = api.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'}])
    assert second.previous_response_id == first.id
    assert second.output_text and [o.type for o in second.output] == ["message"]
    # The whole conversation reached the provider: the prompt grew by the first turn.
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
    third = api.responses.create(model=model, previous_response_id=second.id, input="And tomorrow?")
    assert third.output_text


def test_stored_responses_belong_to_the_keys_user(over_sim: LiveServer, key: str, bob_key: str) -> None:
    alice, bob = client(over_sim, key), client(over_sim, bob_key)
    made = alice.responses.create(model="gpt-4o-mini", input="Name three rivers")
    again = alice.responses.retrieve(made.id)
    assert again.id == made.id and again.output_text == made.output_text
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as info:
        bob.responses.create(model="gpt-4o-mini", previous_response_id=made.id, input="More")
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "previous_response_id"
    alice.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)


def test_store_false_keeps_nothing(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    made = api.responses.create(model="gpt-4o-mini", input="Name three lakes", store=False)
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.create(model="gpt-4o-mini", previous_response_id=made.id, input="More")


def test_json_schema_text_format(over_sim: LiveServer, key: str) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
              "additionalProperties": False}
    response = client(over_sim, key).responses.create(
        model="gpt-4o-mini", input="Summarise TCP in a sentence",
        text={"format": {"type": "json_schema", "name": "summary", "schema": schema, "strict": True}})
    assert set(json.loads(response.output_text)) == {"answer"}
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


def test_item_list_input_and_reasoning_effort(over_sim: LiveServer, key: str) -> None:
    response = client(over_sim, key).responses.create(
        model="claude-haiku-4-5", reasoning={"effort": "low"}, input=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "input_text", "text": "What is a monad?"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "A design pattern."}]},
            {"role": "user", "content": "Say more about monads"},
        ])
    kinds = [o.type for o in response.output]
    assert kinds == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.content and reasoning.content[0].text
    # Anthropic's signed thinking rides along, so it can go back on the next turn.
    assert reasoning.encrypted_content
    assert response.reasoning is not None and response.reasoning.effort == "low"
    # Anthropic counts thinking inside output_tokens without a breakdown; it is priced as output either way.
    assert response.usage is not None and response.usage.output_tokens > 0


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools.0.type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0.type"),
    ({"input": [{"role": "robot", "content": "hi"}]}, "input.0.role"),
    ({"input": "hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"input": "hi", "background": True}, "background"),
    ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": []}, "input"),
    ({"input": "hi", "top_logprobs": 2}, "top_logprobs"),
    ({"input": "hi", "conversation": "conv_123"}, "conversation"),
    ({"input": "hi", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input.0"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input.0.content.0"),
])
def test_requests_ax_cannot_serve_are_400_naming_the_field(over_sim: LiveServer, key: str, body: dict[str, Any],
                                                          param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(over_sim, key).responses.create(model="gpt-4o-mini", **body)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param


def test_responses_need_a_key_and_the_right_method(over_sim: LiveServer, key: str) -> None:
    import httpx

    with pytest.raises(openai.AuthenticationError):
        client(over_sim, "wrong").responses.create(model="gpt-4o-mini", input="hi")
    with pytest.raises(openai.AuthenticationError):
        client(over_sim, "wrong").responses.retrieve("resp_x")
    assert httpx.get(f"{over_sim.url}/v1/responses").status_code == 401, "the key is checked before anything else"
    answer = httpx.get(f"{over_sim.url}/v1/responses", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
    broken = httpx.post(f"{over_sim.url}/v1/responses", content=b"{not json", headers={
        "content-type": "application/json", "authorization": "Bearer x"})
    assert broken.status_code in (400, 401)


def test_streamed_reasoning_and_anthropic_thinking_round_trip(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "reasoning": {"effort": "low"}, "tools": [WEATHER]}
    with api.responses.stream(input="Use get_weather for Accra", **ask) as stream:
        kinds = [e.type for e in stream]
        first = stream.get_final_response()
    assert "response.reasoning_text.delta" in kinds and "response.reasoning_text.done" in kinds
    assert [o.type for o in first.output] == ["reasoning", "function_call"]
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content and call.type == "function_call"
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "31C"}
    # The stored conversation carries Anthropic's signed thinking into the next turn (the sim checks it) ...
    second = api.responses.create(previous_response_id=first.id, input=[result], **ask)
    assert second.output_text
    # ... and so do the items themselves, sent back the way the Agents SDK does.
    items = [o.model_dump(exclude_none=True) for o in first.output]
    again = api.responses.create(input=[{"role": "user", "content": "Use get_weather for Accra"}, *items, result],
                                 **ask)
    assert again.output_text
    # The proof the thinking above really went back: it thought again. Without it (a tool turn the sim, as
    # Anthropic, takes thinking after only with its own), the call is answered without thinking.
    assert second.output[0].type == "reasoning" and again.output[0].type == "reasoning"
    bare = api.responses.create(input=[{"role": "user", "content": "Use get_weather for Accra"}, items[1], result],
                                **ask)
    assert bare.output_text and "reasoning" not in [o.type for o in bare.output]


async def test_concurrent_branches_from_one_stored_response(over_sim: LiveServer, key: str) -> None:
    import asyncio

    api = openai.AsyncOpenAI(base_url=f"{over_sim.url}/v1", api_key=key, max_retries=0, timeout=30)
    root = await api.responses.create(model="gemini-2.5-flash", input="Name a sea")
    branches = await asyncio.gather(*[
        api.responses.create(model="gemini-2.5-flash", previous_response_id=root.id, input=f"Tell me about {topic}")
        for topic in ("its fish", "its ports", "its storms", "its islands", "its history", "its depth")])
    assert len({b.id for b in branches}) == 6 and all(b.previous_response_id == root.id for b in branches)
    for branch in branches:
        again = await api.responses.retrieve(branch.id)
        assert again.output_text == branch.output_text
    await api.close()


@pytest.mark.parametrize("path", ["/v1/responses/" + "x" * 5000, "/v1/responses/%00", "/v1/responses/a%2Fb",
                                  "/v1/responses/resp_ax'--"])
def test_odd_ids_are_404_not_errors(over_sim: LiveServer, key: str, path: str) -> None:
    import httpx

    answer = httpx.get(over_sim.url + path, headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_a_streamed_response_is_stored_before_its_last_event(over_sim: LiveServer, key: str) -> None:
    # Agents chain turns the moment response.completed arrives; the stored response must be there by then.
    api = client(over_sim, key)
    for i in range(25):
        with api.responses.stream(model="claude-haiku-4-5", input=f"Name a colour ({i})") as events:
            first = events.get_final_response()
        after = api.responses.create(model="claude-haiku-4-5", previous_response_id=first.id, input="And another?")
        assert after.status == "completed" and after.previous_response_id == first.id


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_cut_at_max_output_tokens_is_incomplete_down_to_its_message(over_sim: LiveServer, key: str,
                                                                             stream: bool) -> None:
    api = client(over_sim, key)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "input": f"Tell me a long story about queues ({stream})",
                           "max_output_tokens": 16}
    if stream:
        # The SDK's final response is a completed one's: an incomplete one is read from its own event.
        with api.responses.stream(**ask) as events:
            (response,) = [e.response for e in events if e.type == "response.incomplete"]
    else:
        response = api.responses.create(**ask)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    (message,) = [item for item in response.output if item.type == "message"]
    assert message.status == "incomplete"
    # Every usage field the SDK's types require is there.
    assert response.usage is not None
    details = response.usage.input_tokens_details.model_dump()
    assert details["cache_write_tokens"] == 0 and details["cached_tokens"] == 0
