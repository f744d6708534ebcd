"""The Responses API passed through natively: the official OpenAI SDK against `ax serve`, whose OpenAI
providers speak ``POST /responses`` to `ax sim serve` (``responses = "native"``).

What the simulated upstream received is checked, as well as what the client got: the client's body goes
up as sent (hosted tools, ``include``, ``truncation``…), ax's conversation stands in for
``previous_response_id``, and the upstream's answer and events come back with ax's response id. The call is
recorded, priced, cached, budgeted and failed over like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from axtui.cache import stats
from axtui.config import Settings
from axtui.providers.sim import server_state
from axtui.server.key_limits import apply_key_limits
from axtui.server.keys import create_key
from axtui.store import Store

from ...support import free_port
from .._live import LiveServer
from ._sim_upstream import KEY_ENV, SimUpstream

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]},
}
#: A hosted tool: only an upstream that speaks the Responses API serves it.
WEB_SEARCH = {"type": "web_search", "search_context_size": "low"}
#: Per-million prices of the reasoning model, so the cost can be worked out by hand.
PRICES = {"input": "1", "output": "4", "cached_input": "0.25", "reasoning": "8"}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimUpstream]:
    upstream = SimUpstream().start()
    yield upstream
    upstream.stop()


def native_settings(sim_url: str) -> Settings:
    base = {"kind": "openai", "base_url": sim_url + "/v1", "api_key_env": KEY_ENV, "max_retries": 0}
    providers = [
        {**base, "name": "oai", "models": ["gpt-4o-mini", "gemini-2.5-flash"], "responses": "native"},
        # gpt-4o: a native deployment that always fails, then one served translated (the default off api.openai.com).
        {**base, "name": "broken", "models": ["gpt-4o"], "responses": "native", "headers": {"X-Sim-Fault": "500"}},
        {**base, "name": "chatonly", "models": ["gpt-4o"]},
    ]
    return Settings.model_validate({"providers": providers, "routing": {"strategy": "capability"},
                                    "prices": {"oai/gemini-2.5-flash": PRICES}, "server": {"key_cache_s": 0}})


@pytest.fixture
def live(sim: SimUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv(KEY_ENV, "sk-sim-upstream")
    server = LiveServer(native_settings(sim.url)).start()
    yield server
    server.stop()


def client(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def received(sim: SimUpstream) -> list[dict[str, Any]]:
    """The Responses bodies the simulated upstream was sent, oldest first."""
    return [r["body"] for r in server_state(sim.app).received]


def calls(live: LiveServer, where: str = "1 = 1") -> list[dict[str, Any]]:
    return live.calls(where)


def test_the_body_goes_upstream_as_sent_and_the_answer_comes_back_as_it_came(
        live: LiveServer, sim: SimUpstream, key: str) -> None:
    raw = client(live, key).responses.with_raw_response.create(
        model="gpt-4o-mini", input="Explain connection pooling briefly", instructions="Answer in one paragraph.",
        tools=[WEB_SEARCH], include=["web_search_call.action.sources"], truncation="auto",
        metadata={"ticket": "42"}, max_output_tokens=300)
    response = raw.parse()
    sent = received(sim)[-1]
    assert sent == {"model": "gpt-4o-mini", "input": "Explain connection pooling briefly",
                    "instructions": "Answer in one paragraph.", "tools": [WEB_SEARCH],
                    "include": ["web_search_call.action.sources"], "truncation": "auto",
                    "metadata": {"ticket": "42"}, "max_output_tokens": 300, "store": False}
    assert response.id == raw.headers["x-ax-request-id"] and response.id.startswith("resp_ax")
    # The upstream's own answer: it echoes what it was sent (ax's translation would say "disabled").
    assert response.truncation == "auto" and response.tools[0].type == "web_search"
    assert response.status == "completed" and response.output_text and response.store is True
    assert response.usage is not None and response.usage.input_tokens > 0
    (row,) = calls(live, f"request_id = '{response.id}'")
    assert row["endpoint"] == "responses" and row["provider"] == "oai" and row["status"] == "ok"
    assert (row["input_tokens"], row["output_tokens"]) == (response.usage.input_tokens,
                                                          response.usage.output_tokens)


def test_a_stream_is_the_upstreams_events_with_axs_response_id(live: LiveServer, sim: SimUpstream,
                                                                key: str) -> None:
    with client(live, key).responses.stream(model="gpt-4o-mini", input="Describe the water cycle",
                                            tools=[WEB_SEARCH]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert received(sim)[-1]["stream"] is True and received(sim)[-1]["tools"] == [WEB_SEARCH]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    assert final.id.startswith("resp_ax") and final.tools[0].type == "web_search"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas and final.output_text == deltas
    (row,) = calls(live, f"request_id = '{final.id}'")
    assert row["endpoint"] == "responses" and row["stream"] == 1 and row["status"] == "ok"
    assert final.usage is not None and row["output_tokens"] == final.usage.output_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_and_their_outputs_continue_through_previous_response_id(
        live: LiveServer, sim: SimUpstream, key: str, stream: bool) -> None:
    api = client(live, key)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "input": "What's the weather like in Lisbon?",
                           "tools": [WEATHER, WEB_SEARCH], "tool_choice": "required"}
    if stream:
        with api.responses.stream(**ask) as events:
            kinds = [e.type for e in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
    else:
        first = api.responses.create(**ask)
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and set(json.loads(call.arguments)) == {"city", "unit"}
    second = api.responses.create(
        model="gpt-4o-mini", previous_response_id=first.id, tools=[WEATHER, WEB_SEARCH],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}])
    sent = received(sim)[-1]
    assert "previous_response_id" not in sent and sent["store"] is False
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": "What's the weather like in Lisbon?"},
        {"type": "function_call", "call_id": call.call_id, "name": "get_weather", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
    ]
    assert second.previous_response_id == first.id and second.output_text
    assert not [o for o in second.output if o.type == "function_call"]


def test_cached_tokens_and_reasoning_are_priced_once_each(live: LiveServer, key: str) -> None:
    api = client(live, key)
    long = "Background for the question that follows, repeated so the prompt is long enough to cache. " * 60
    for attempt in range(8):  # the simulation finds a warm prompt cache on about 60 % of long prompts
        response = api.responses.create(model="gemini-2.5-flash", instructions=long,
                                        input=f"Question {attempt}: how do tides work?")
        assert response.usage is not None
        if response.usage.input_tokens_details.cached_tokens:
            break
    usage = response.usage
    assert usage is not None
    cached, reasoning = usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens
    assert 0 < cached < usage.input_tokens and 0 < reasoning < usage.output_tokens
    (row,) = calls(live, f"request_id = '{response.id}'")
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        usage.input_tokens, cached, usage.output_tokens, reasoning)
    # Nano-dollars per token from PRICES: fresh input 1000, cached 250, other output 4000, reasoning 8000.
    expected = (usage.input_tokens - cached) * 1000 + cached * 250 + (usage.output_tokens - reasoning) * 4000 \
        + reasoning * 8000
    assert row["cost_nanos"] == expected


def test_a_cache_hit_replays_the_native_answer_plain_and_streamed(live: LiveServer, sim: SimUpstream,
                                                                  key: str) -> None:
    api = client(live, key)
    ask: dict[str, Any] = {"model": "gpt-4o-mini", "input": "What is a B-tree?", "tools": [WEB_SEARCH],
                           "truncation": "auto"}
    first = api.responses.with_raw_response.create(**ask, metadata={"round": "1"})
    upstream_calls = len(received(sim))
    again = api.responses.with_raw_response.create(**ask, metadata={"round": "2"})
    with api.responses.stream(**ask) as stream:
        replayed = [e.type for e in stream]
        streamed = stream.get_final_response()
    assert len(received(sim)) == upstream_calls  # both were served from the cache
    assert (first.headers["x-ax-cache"], again.headers["x-ax-cache"]) == ("miss", "exact")
    one, two = first.parse(), again.parse()
    assert two.id != one.id and two.metadata == {"round": "2"}
    assert [o.model_dump() for o in two.output] == [o.model_dump() for o in one.output]
    assert two.truncation == "auto" and two.tools[0].type == "web_search"
    assert streamed.output_text == one.output_text and streamed.id not in (one.id, two.id)
    assert replayed[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                            "response.content_part.added"] and replayed[-1] == "response.completed"
    # A chat request that reads the same is not served the Responses answer.
    chat = httpx.post(f"{live.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is a B-tree?"}]})
    assert chat.status_code == 200 and chat.headers["x-ax-cache"] == "miss"
    assert [r["cache"] for r in calls(live, "endpoint = 'responses'")] == ["miss", "exact", "exact"]
    # `ax cache stats` counts them with the chat calls.
    assert live.gateway.store is not None
    figures = stats(live.gateway.store)
    assert (figures.exact_hits, figures.misses) == (2, 2)


def test_a_failing_native_deployment_falls_back_to_one_served_translated(live: LiveServer, sim: SimUpstream,
                                                                        key: str) -> None:
    api = client(live, key)
    before = len(received(sim))
    raw = api.responses.with_raw_response.create(model="gpt-4o", input="Name three rivers", metadata={"n": "1"})
    assert raw.headers["x-ax-provider"] == "chatonly"
    response = raw.parse()
    assert response.output_text and response.truncation == "disabled"  # ax's translation answered
    assert len(received(sim)) == before + 1  # the native deployment was tried first
    (row,) = calls(live, f"request_id = '{response.id}'")
    assert row["attempts"] == 2 and row["provider"] == "chatonly" and row["endpoint"] == "responses"
    with api.responses.stream(model="gpt-4o", input="Name three lakes") as stream:
        kinds = [e.type for e in stream]
        streamed = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed" and streamed.output_text
    (row,) = calls(live, f"request_id = '{streamed.id}'")
    assert row["attempts"] == 2 and row["provider"] == "chatonly" and row["stream"] == 1
    # A hosted tool is refused by the translated deployment: the caller learns which field, and why.
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.create(model="gpt-4o", input="Search the news", tools=[WEB_SEARCH])
    assert "tools.0" in str(info.value) and "translated" in str(info.value)


def test_a_hard_budget_refuses_before_the_upstream_is_asked(live: LiveServer, sim: SimUpstream,
                                                            store: Store) -> None:
    raw, info = create_key(store, "frugal", budget_nanos=1)
    apply_key_limits(store, info)
    before = len(received(sim))
    with pytest.raises(openai.APIStatusError) as refused:
        client(live, raw).responses.create(model="gpt-4o-mini", input="Write a long essay on budgets")
    assert refused.value.status_code == 402
    assert len(received(sim)) == before
    (row,) = calls(live, "user = 'frugal'")
    assert row["status"] == "budget_refused" and row["endpoint"] == "responses"


def test_the_callers_trace_goes_upstream_with_the_body(sim: SimUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-sim-upstream")
    data = native_settings(sim.url).model_dump()
    data["telemetry"] = {"otlp_endpoint": f"http://127.0.0.1:{free_port()}"}  # nobody listens: spans are dropped
    live = LiveServer(Settings.model_validate(data), no_auth=True).start()
    trace = "0af7651916cd43dd8448eb211c80319c"
    try:
        client(live, "unused").responses.create(model="gpt-4o-mini", input="Trace me", extra_headers={
            "traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    finally:
        live.stop()
    sent = server_state(sim.app).received[-1]
    assert sent["body"]["input"] == "Trace me"
    assert sent["traceparent"] is not None and sent["traceparent"].split("-")[1] == trace


def test_an_azure_resource_speaks_it_on_its_v1_api(sim: SimUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-sim-upstream")
    provider = {"name": "az", "kind": "azure", "base_url": sim.url + "/azure", "api_key_env": KEY_ENV,
                "models": ["gpt-4o-mini"], "deployments": {"gpt-4o-mini": "gpt-4o-mini-eu"}, "responses": "native",
                "max_retries": 0}
    live = LiveServer(Settings.model_validate({"providers": [provider]}), no_auth=True).start()
    try:
        api = client(live, "unused")
        response = api.responses.create(model="gpt-4o-mini", input="Plan a picnic", tools=[WEB_SEARCH],
                                        truncation="auto")
        with api.responses.stream(model="gpt-4o-mini", input="Plan a hike", tools=[WEB_SEARCH]) as stream:
            streamed = stream.get_final_response()
    finally:
        live.stop()
    plain, streaming = received(sim)[-2:]
    assert plain["model"] == "gpt-4o-mini-eu" and plain["tools"] == [WEB_SEARCH] and plain["truncation"] == "auto"
    assert streaming["stream"] is True and streaming["model"] == "gpt-4o-mini-eu"
    assert response.truncation == "auto" and response.output_text and response.id.startswith("resp_ax")
    assert streamed.output_text and streamed.tools[0].type == "web_search"


def test_input_only_a_native_upstream_reads_goes_up_whole(live: LiveServer, sim: SimUpstream, key: str) -> None:
    item = {"type": "web_search_call", "id": "ws_1", "status": "completed",
            "action": {"type": "search", "query": "tides today"}}
    response = client(live, key).responses.create(model="gpt-4o-mini", input=[item])  # type: ignore[list-item]
    assert received(sim)[-1]["input"] == [item] and response.output_text


def test_reasoning_summary_goes_upstream_as_sent_and_a_replay_streams_the_summary(
        live: LiveServer, sim: SimUpstream, key: str) -> None:
    api = client(live, key)
    ask: dict[str, Any] = {"model": "gemini-2.5-flash", "input": "Why do cats purr?",
                           "reasoning": {"effort": "low", "summary": "detailed"}}
    # Served natively, the request is not refused for a summary ax could not give translated.
    made = api.responses.create(**ask)
    assert received(sim)[-1]["reasoning"] == {"effort": "low", "summary": "detailed"}
    reasoning = made.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary and reasoning.summary[0].text
    assert made.reasoning is not None and made.reasoning.summary == "detailed"
    # A cache hit played back as a stream sends the summary with its own events, as the upstream would.
    upstream_calls = len(received(sim))
    with api.responses.stream(**ask) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    assert len(received(sim)) == upstream_calls
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_part.added") < kinds.index(
        "response.reasoning_summary_text.delta") < kinds.index("response.reasoning_summary_text.done") < kinds.index(
        "response.reasoning_summary_part.done") < kinds.index("response.output_item.done")
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert deltas == reasoning.summary[0].text
    assert streamed.output[0].type == "reasoning" and streamed.output[0].summary[0].text == deltas


def test_a_native_upstream_summarises_only_when_asked_and_streams_the_summary(
        live: LiveServer, sim: SimUpstream, key: str) -> None:
    api = client(live, key)
    ask: dict[str, Any] = {"model": "gemini-2.5-flash", "input": "Why is the sea salty?",
                           "reasoning": {"effort": "low"}}
    plain = api.responses.create(**ask)
    assert plain.output[0].type == "reasoning" and plain.output[0].summary == [], "no summary unless asked"
    fresh = {**ask, "reasoning": {"effort": "low", "summary": "auto"}, "extra_headers": {"X-Ax-Cache": "no-cache"}}
    with api.responses.stream(**fresh) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert deltas and streamed.output[0].summary[0].text == deltas  # type: ignore[union-attr]
    (done,) = [e for e in events if e.type == "response.reasoning_summary_part.done"]
    assert done.part.text == deltas
