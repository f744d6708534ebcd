"""Anthropic's Messages API through `ax serve`: what reaches an Anthropic upstream, and what others refuse.

A Messages client's request goes to an Anthropic deployment as it was sent;
the simulated fleet (`ax sim serve`) or an `httpx.MockTransport` plays the
upstreams, and the latter shows what ax sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .._live import LiveServer

TIDES = [{"role": "user", "content": "Explain how tides work"}]
RUN = {"name": "run", "description": "Run a shell command", "input_schema": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
#: A Claude Code turn: text and tool calls interleaved; an image and cache_control in one result, an error in the other.
CLAUDE_CODE = [
    {"role": "user", "content": "Take a screenshot, then run false"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "A"},
        {"type": "tool_use", "id": "toolu_1", "name": "run", "input": {"cmd": "screenshot"}},
        {"type": "text", "text": "B"},
        {"type": "tool_use", "id": "toolu_2", "name": "run", "input": {"cmd": "false"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "cache_control": {"type": "ephemeral"},
         "content": [{"type": "text", "text": "the screen"}, {"type": "image", "source": PNG}]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": "exit status 1"}]},
]
BETAS = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]


def claude(live: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0, timeout=30)


# -- 1. the stop sequence ---------------------------------------------------------------------------------


def test_the_stop_sequence_reaches_the_client_plain_streamed_and_from_the_cache(over_sim: LiveServer,
                                                                                key: str) -> None:
    api = claude(over_sim, key)
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 300, "stop_sequences": ["to"],
                           "messages": TIDES}
    with api.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    raw = api.messages.with_raw_response.create(**ask, extra_headers={"X-Ax-Cache": "no-cache"})
    plain = raw.parse()
    again = api.messages.with_raw_response.create(**ask)  # the plain answer, kept by the cache
    with api.messages.stream(**ask) as stream:  # ... and replayed from it as a stream
        replayed = stream.get_final_message()
    assert raw.headers["x-ax-cache"] == "miss" and again.headers["x-ax-cache"] == "exact"
    for message in (streamed, plain, again.parse(), replayed):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "to")
    assert plain.content[0].text == streamed.content[0].text  # type: ignore[union-attr]
    # An answer first streamed is kept with its stop sequence too.
    first = {**ask, "system": "Answer plainly."}
    with api.messages.stream(**first) as stream:
        stream.get_final_message()
    kept = api.messages.with_raw_response.create(**first)
    assert kept.headers["x-ax-cache"] == "exact"
    assert (kept.parse().stop_reason, kept.parse().stop_sequence) == ("stop_sequence", "to")
    # An OpenAI-compatible upstream says "stop" for both: nothing tells which, so the turn ended.
    other = api.messages.create(**{**ask, "model": "gpt-4o-mini"})
    assert (other.stop_reason, other.stop_sequence) == ("end_turn", None)


# -- 2. a Claude Code request at an Anthropic upstream (a MockTransport that keeps what it got) -------------


class Upstreams:
    """An Anthropic and an OpenAI upstream in one `httpx.MockTransport`; ``seen`` keeps every request."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        body = json.loads(request.content)
        if request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json={
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
        message = {"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 9, "output_tokens": 2}}
        if not body.get("stream"):
            return httpx.Response(200, json=message)
        events = [("message_start", {"type": "message_start", "message": {**message, "content": [],
                                                                          "stop_reason": None}}),
                  ("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
                  ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": "Done."}}),
                  ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                  ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                        "stop_sequence": None},
                                     "usage": {"output_tokens": 2}}),
                  ("message_stop", {"type": "message_stop"})]
        sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    def messages(self) -> list[dict[str, Any]]:
        """The bodies the Anthropic upstream got."""
        return [json.loads(r.content) for r in self.seen if r.url.path.endswith("/messages")]


@pytest.fixture
def upstreams(over_mock: Callable[[Any], LiveServer]) -> tuple[LiveServer, Upstreams]:
    """A gateway (no keys) whose Anthropic and OpenAI providers answer through one MockTransport."""
    fake = Upstreams()
    return over_mock(fake), fake


@pytest.mark.parametrize("stream", [False, True])
def test_a_claude_code_request_reaches_anthropic_as_the_client_sent_it(
        upstreams: tuple[LiveServer, Upstreams], stream: bool) -> None:
    live, fake = upstreams
    system = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1000, "system": system,
                           "tools": [RUN, WEB_SEARCH], "messages": copy.deepcopy(CLAUDE_CODE), "betas": BETAS}
    api = claude(live, "unused")
    if stream:
        with api.beta.messages.stream(**ask) as events:
            answer = events.get_final_message()
    else:
        answer = api.beta.messages.create(**ask)
    assert answer.content[0].text == "Done."  # type: ignore[union-attr]
    (sent,) = fake.messages()
    assert sent["messages"] == CLAUDE_CODE  # blocks in order, the image, is_error, cache_control
    assert sent["system"] == system and sent["tools"] == [RUN, WEB_SEARCH]
    assert fake.seen[-1].headers["anthropic-beta"] == ",".join(BETAS)


@pytest.mark.parametrize("stream", [False, True])
def test_what_chat_cannot_carry_is_refused_at_openai_naming_the_field(
        upstreams: tuple[LiveServer, Upstreams], stream: bool) -> None:
    live, fake = upstreams
    with pytest.raises(anthropic.BadRequestError) as info:
        claude(live, "unused").messages.create(model="gpt-4o-mini", max_tokens=100, messages=CLAUDE_CODE,
                                               tools=[RUN], stream=stream)  # type: ignore[call-overload]
    error = info.value.body["error"]  # type: ignore[index]
    assert error["param"] == "messages.2.content.0.content.1.type" and error["param"] in error["message"]
    assert fake.seen == [], "nothing went upstream"
    # What the translation can carry is served there: an is_error result becomes words, the texts join.
    texts_only = copy.deepcopy(CLAUDE_CODE)
    texts_only[2]["content"][0]["content"] = "the screen"
    answer = claude(live, "unused").messages.create(model="gpt-4o-mini", max_tokens=100, messages=texts_only,
                                                    tools=[RUN])  # type: ignore[list-item]
    assert answer.content[0].text == "Done."  # type: ignore[union-attr]
    sent = json.loads(fake.seen[-1].content)["messages"]
    assert sent[1]["content"] == "AB" and [c["id"] for c in sent[1]["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert sent[3] == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: exit status 1"}


# -- 3. thinking with a forced tool choice ------------------------------------------------------------------


FUNCTION = {"type": "function", "function": {"name": "run", "parameters": RUN["input_schema"]}}


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "run"}}])
def test_chat_reasoning_with_a_forced_tool_is_a_400_naming_both(over_sim: LiveServer, key: str,
                                                                choice: Any) -> None:
    api = openai.OpenAI(base_url=f"{over_sim.url}/v1", api_key=key, max_retries=0, timeout=30)
    ask: dict[str, Any] = {"messages": [{"role": "user", "content": "Run ls"}], "tools": [FUNCTION],
                           "tool_choice": choice, "reasoning_effort": "low"}
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="claude-haiku-4-5", **ask)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "tool_choice"
    assert "reasoning_effort" in body["message"] and '"auto"' in body["message"]
    # OpenAI takes both; Anthropic takes thinking with "auto".
    assert api.chat.completions.create(model="gpt-4o-mini", **ask).choices[0].message.tool_calls
    api.chat.completions.create(model="claude-haiku-4-5", **{**ask, "tool_choice": "auto"})


def test_responses_reasoning_with_a_forced_tool_is_a_400_naming_both(over_sim: LiveServer, key: str) -> None:
    api = openai.OpenAI(base_url=f"{over_sim.url}/v1", api_key=key, max_retries=0, timeout=30)
    tool = {"type": "function", "name": "run", "parameters": RUN["input_schema"]}
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.create(model="claude-haiku-4-5", input="Run ls", tools=[tool],  # type: ignore[list-item]
                             tool_choice="required", reasoning={"effort": "low"})
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "tool_choice" and "reasoning.effort" in body["message"]


def test_a_messages_client_asking_thinking_with_a_forced_tool_gets_anthropics_refusal(over_sim: LiveServer,
                                                                                      key: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match="Thinking may not be enabled when tool_choice forces"):
        claude(over_sim, key).messages.create(
            model="claude-haiku-4-5", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048},
            tools=[RUN], tool_choice={"type": "any"}, messages=[{"role": "user", "content": "Run ls"}])  # type: ignore[list-item]


# -- 5. what only Anthropic takes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("ask", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "bogus_block"}]}]},
     "messages.0.content.1.type"),
    ({"messages": [{"role": "user", "content": "Search the web for tides"}], "tools": [WEB_SEARCH]}, "tools.0.type"),
])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gemini-2.5-flash"])
def test_blocks_and_server_tools_only_anthropic_takes_are_refused_elsewhere(
        over_sim: LiveServer, key: str, model: str, ask: dict[str, Any], param: str) -> None:
    api = claude(over_sim, key)
    with pytest.raises(anthropic.BadRequestError) as info:
        api.messages.create(model=model, max_tokens=100, **ask)
    error = info.value.body["error"]  # type: ignore[index]
    assert error["param"] == param and error["message"].startswith(param)
    # ... and pass through to Anthropic.
    assert api.messages.create(model="claude-haiku-4-5", max_tokens=100, **ask).content
