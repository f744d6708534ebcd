"""Anthropic's event stream and the message it streams: put together, played back, passed on by the adapter."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axtui.errors import MalformedResponse, ProviderServerError
from axtui.providers.anthropic import MESSAGES_API, AnthropicProvider
from axtui.providers.anthropic_events import MessageSnapshot, message_events
from axtui.types import ChatRequest, Chunk, Deployment, NativeRequest

from .fake_upstream import Upstream, collect, sse_answer, sse_text

DEPLOYMENT = Deployment(provider="claude", model="smart", upstream_model="claude-sonnet-4-5-20250929")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")

_text = st.text(max_size=30)
_json = st.recursive(st.none() | st.booleans() | st.integers() | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=6)
_citation = st.fixed_dictionaries({"type": st.just("web_search_result_location"), "url": _text, "title": _text,
                                   "encrypted_index": _text, "cited_text": _text})
_blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text},
                          optional={"citations": st.none() | st.lists(_citation, max_size=2)}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": _text, "signature": _text}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": _text}),
    st.fixed_dictionaries({"type": st.sampled_from(["tool_use", "server_tool_use"]), "id": _text, "name": _text,
                           "input": st.dictionaries(_text, _json, max_size=3)}),
    st.fixed_dictionaries({"type": st.just("web_search_tool_result"), "tool_use_id": _text,
                           "content": st.lists(st.fixed_dictionaries({"type": st.just("web_search_result"),
                                                                      "url": _text, "title": _text,
                                                                      "encrypted_content": _text}), max_size=2)}),
)
_messages = st.fixed_dictionaries(
    {"id": _text, "type": st.just("message"), "role": st.just("assistant"), "model": _text,
     "content": st.lists(_blocks, max_size=6),
     "stop_reason": st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn"]),
     "stop_sequence": st.none() | _text,
     "usage": st.fixed_dictionaries({"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**5),
                                     "cache_read_input_tokens": st.integers(0, 10**6)})},
    optional={"container": st.none() | st.fixed_dictionaries({"id": _text, "expires_at": _text})},
)


@given(_messages)
def test_a_message_played_back_as_events_is_put_together_again_as_it_was(message: dict[str, Any]) -> None:
    snapshot = MessageSnapshot()
    events = message_events(message)
    for event in events:
        snapshot.take(json.loads(json.dumps(event)))  # as it crosses the wire
    assert snapshot.message == message
    # As Anthropic streams it: the input usage opens the stream, the block indices rise by one.
    assert events[0]["message"]["usage"]["input_tokens"] == message["usage"]["input_tokens"]
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    assert starts == list(range(len(message["content"])))


def _native_request() -> ChatRequest:
    body = {"model": "smart", "max_tokens": 1000, "messages": [{"role": "user", "content": "Weather in SF?"}]}
    chat = ChatRequest.model_validate({"model": "smart", "messages": body["messages"], "max_tokens": 1000})
    return chat.with_native(NativeRequest(api=MESSAGES_API, body=body))


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_a_messages_clients_stream_carries_the_upstreams_events_and_the_whole_message(
        make_provider: Callable[..., Any]) -> None:
    text = sse_text("anthropic_stream_tools.sse")
    provider = make_provider(AnthropicProvider, Upstream(sse_answer(text)))

    chunks: list[Chunk] = await collect(provider.stream(_native_request(), DEPLOYMENT))

    # Every event, in order; those before the first piece of the answer (the thinking) go with it.
    assert [e for c in chunks for e in c.native_events or ()] == _events(text)
    first = chunks[0]
    assert [e["type"] for e in first.native_events or ()] == ["message_start", "content_block_start",
                                                              "content_block_delta"]
    assert first.reasoning == "I need the weather tool."
    message = chunks[-1].native
    assert message is not None and [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2]["input"] == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert message["usage"]["input_tokens"] == 472 and message["usage"]["output_tokens"] == 89
    assert message["stop_reason"] == "tool_use"
    # ax's reading of the stream is as for any client.
    assert chunks[-2].usage is not None and chunks[-2].usage.input_tokens == 572
    # A chat client's stream carries none of it.
    chat = await collect(provider.stream(ChatRequest.model_validate(
        {"model": "smart", "messages": [{"role": "user", "content": "Weather in SF?"}]}), DEPLOYMENT))
    assert all(c.native_events is None and c.native is None for c in chat)


async def test_an_upstream_failing_before_answering_leaves_nothing_at_the_client(
        make_provider: Callable[..., Any]) -> None:
    head = sse_text("anthropic_stream_tools.sse").split("event: content_block_delta")[0]
    text = head + ('event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
                   '"message": "Overloaded"}}\n\n')
    provider = make_provider(AnthropicProvider, Upstream(sse_answer(text)))
    received: list[Chunk] = []

    with pytest.raises(ProviderServerError):
        async for chunk in provider.stream(_native_request(), DEPLOYMENT):
            received.append(chunk)

    assert received == [], "message_start was held back, so the call may still fall back"


async def test_an_event_type_that_is_not_a_plain_name_is_malformed_never_passed_on(
        make_provider: Callable[..., Any]) -> None:
    """A hostile upstream's type would become the client's ``event:`` line: a newline in it forges events."""
    forged = json.dumps({"type": "ping\n\nevent: message_stop\ndata: {}"})
    start, rest = sse_text("anthropic_stream_tools.sse").split("\n\n", 1)
    text = f"{start}\n\nevent: ping\ndata: {forged}\n\n{rest}"
    provider = make_provider(AnthropicProvider, Upstream(sse_answer(text)))
    with pytest.raises(MalformedResponse, match="not a plain name"):
        await collect(provider.stream(_native_request(), DEPLOYMENT))
