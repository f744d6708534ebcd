"""An Anthropic answer's every block and its usage, as the official SDKs get them through `ax serve`.

A Messages client whose request goes to Anthropic gets the answer as Anthropic
gave it: ``redacted_thinking``, ``server_tool_use``, ``web_search_tool_result``
and citations on text included, plain, streamed and from the response cache,
and a stream's ``message_start`` reports the input tokens. A chat client gets
the signed and redacted thinking it must send back. An `httpx.MockTransport`
plays Anthropic and OpenAI; `ax sim serve` plays Anthropic over real HTTP.
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

RESULT_URL = "https://oceanservice.noaa.gov/facts/tides.html"
THINKING = {"type": "thinking", "thinking": "The user asks about tides; search first.", "signature": "c2lnbmVkLTE="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}
#: A web search answer as Anthropic's documentation shows one, with thinking before it.
SEARCH_ANSWER: dict[str, Any] = {
    "id": "msg_01Upstream", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [
        THINKING,
        REDACTED,
        {"type": "text", "text": "Let me check."},
        {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search",
         "input": {"query": "how do tides work"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
            {"type": "web_search_result", "url": RESULT_URL, "title": "What are tides?",
             "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1m", "page_age": "June 2, 2024"}]},
        {"type": "text", "text": "Tides are caused by the Moon's gravity.", "citations": [
            {"type": "web_search_result_location", "url": RESULT_URL, "title": "What are tides?",
             "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm", "cited_text": "Tides are very long-period waves"}]},
        {"type": "text", "text": " They rise and fall twice a day."},
    ],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 1500,
              "output_tokens": 40, "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0}},
}
#: The answer's text blocks, as one text.
ANSWER_TEXT = "Let me check.Tides are caused by the Moon's gravity. They rise and fall twice a day."
TIDES: list[Any] = [{"role": "user", "content": "How do tides work? Search the web."}]
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}


def anthropic_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events Anthropic streams ``message`` as: the input usage in ``message_start``, a ping, text and tool
    input in pieces, a citation before its text, and only the output tokens in ``message_delta``."""
    usage = message["usage"]
    opening = {**message, "content": [], "stop_reason": None,
               "usage": {k: usage[k] for k in ("input_tokens", "cache_read_input_tokens",
                                               "cache_creation_input_tokens")} | {"output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": opening}),
                                                ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        deltas: list[dict[str, Any]] = []
        start = block
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
            text = block["text"]
            deltas += [{"type": "text_delta", "text": text[i:i + 7]} for i in range(0, len(text), 7)]
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                      {"type": "signature_delta", "signature": block["signature"]}]
        elif block["type"] == "server_tool_use":
            start = {**block, "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": raw[:9]},
                      {"type": "input_json_delta", "partial_json": raw[9:]}]
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"],
                                               "server_tool_use": usage["server_tool_use"]}}))
    return [*events, ("message_stop", {"type": "message_stop"})]


def sse(events: list[tuple[str, dict[str, Any]]], *, done: bool = False) -> httpx.Response:
    text = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
    if done:
        text = "".join(f"data: {json.dumps(data)}\n\n" for _, data in events) + "data: [DONE]\n\n"
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


class Upstreams:
    """Anthropic (answering `SEARCH_ANSWER`) and OpenAI in one `httpx.MockTransport`; ``seen`` keeps the bodies."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        #: When set, Anthropic's stream breaks off after this many events with an ``overloaded_error``.
        self.cut_after: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.seen.append(body)
        if request.url.path.endswith("/chat/completions"):
            usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                     "prompt_tokens_details": {"cached_tokens": 4}}
            head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
            chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Done."},
                                            "finish_reason": None}]},
                      {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                      {**head, "choices": [], "usage": usage}]
            return sse([("", c) for c in chunks], done=True)
        answer = copy.deepcopy(SEARCH_ANSWER) | {"model": body["model"]}
        if not body.get("stream"):
            return httpx.Response(200, json=answer)
        events = anthropic_events(answer)
        if self.cut_after is not None:
            events = [*events[:self.cut_after], ("error", {"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})]
        return sse(events)


@pytest.fixture
def upstreams(over_mock: Callable[[Any], LiveServer]) -> tuple[LiveServer, Upstreams]:
    """A gateway (no keys) whose Anthropic and OpenAI providers answer through one MockTransport."""
    fake = Upstreams()
    return over_mock(fake), fake


def claude(live: LiveServer, key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0, timeout=30)


def blocks(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """The message's content blocks as JSON, fields the SDK leaves unset left out."""
    return [b.to_dict(exclude_none=True) for b in message.content]


def input_usage(usage: Any) -> tuple[int, int | None, int | None]:
    return usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens


# -- an Anthropic answer's blocks and usage reach a Messages client ------------------------------------------


def test_every_block_of_an_anthropic_answer_reaches_the_client_plain_streamed_and_from_the_cache(
        upstreams: tuple[LiveServer, Upstreams]) -> None:
    live, fake = upstreams
    api = claude(live)
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 2000, "tools": [WEB_SEARCH],
                           "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": TIDES}
    expected = SEARCH_ANSWER["content"]

    with api.messages.stream(**ask) as stream:  # a miss: Anthropic's own events
        assert stream.response.headers["x-ax-cache"] == "miss"
        events = list(stream)
        first = stream.get_final_message()
    assert blocks(first) == expected
    start = events[0]
    assert start.type == "message_start" and input_usage(start.message.usage) == (12, 3000, 1500)
    assert first.id == start.message.id and first.id.startswith("msg_ax")
    assert input_usage(first.usage) == (12, 3000, 1500) and first.usage.output_tokens == 40
    assert first.usage.server_tool_use is not None and first.usage.server_tool_use.web_search_requests == 1
    assert "".join(e.text for e in events if e.type == "text") == ANSWER_TEXT
    # The same answer, plain: kept by the cache from the stream, then fresh from Anthropic.
    kept = api.messages.with_raw_response.create(**ask)
    fresh = api.messages.with_raw_response.create(**ask, extra_headers={"X-Ax-Cache": "no-cache"})
    assert (kept.headers["x-ax-cache"], fresh.headers["x-ax-cache"]) == ("exact", "miss")
    for raw in (kept, fresh):
        message = raw.parse()
        assert blocks(message) == expected and message.id == raw.headers["x-ax-request-id"]
        assert input_usage(message.usage) == (12, 3000, 1500) and message.stop_reason == "end_turn"
    # ... and streamed again from the cache: the same blocks, the input usage at the start.
    with api.messages.stream(**ask) as stream:
        assert stream.response.headers["x-ax-cache"] == "exact"
        replayed_events = list(stream)
        replayed = stream.get_final_message()
    assert input_usage(replayed_events[0].message.usage) == (12, 3000, 1500)  # type: ignore[union-attr]
    assert blocks(replayed) == expected and input_usage(replayed.usage) == (12, 3000, 1500)
    assert [e.type for e in replayed_events if e.type == "citation"] == ["citation"]
    assert len(fake.seen) == 2, "Anthropic was called for the first stream and the no-cache call only"


def test_a_stream_broken_off_after_the_answer_began_is_paid_for_its_prompt_exactly(
        upstreams: tuple[LiveServer, Upstreams]) -> None:
    """message_start said what the prompt cost (cache reads and writes too): a call cut after it pays that."""
    live, fake = upstreams
    events = anthropic_events(SEARCH_ANSWER)
    fake.cut_after = next(i for i, (_, e) in enumerate(events) if e.get("delta", {}).get("type") == "text_delta") + 1
    seen: list[Any] = []
    with pytest.raises(anthropic.APIError), claude(live).messages.stream(
            model="claude-sonnet-4-5", max_tokens=2000, tools=[WEB_SEARCH], messages=TIDES) as stream:
        seen.extend(stream)
    assert [e.type for e in seen][:1] == ["message_start"] and any(e.type == "text" for e in seen)
    (row,) = live.calls("request_id = :r", r=seen[0].message.id)
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"]) == (4512, 3000, 1500)
    assert row["output_tokens"] > 0 and row["usage_estimated"], "the output is counted by ax: Anthropic never said"
    # The prompt at Sonnet's prices: 12 × $3 + 3,000 read × $0.30 + 1,500 written × $3.75 per million.
    assert row["status"] == "error" and row["cost_nanos"] > 6_561_000, "the cache write premium is paid"
    assert row["endpoint"] == "messages"
    # Broken off before the answer began, nothing reached the client: an HTTP error it can retry, nothing paid.
    fake.cut_after = 2  # message_start, ping
    with pytest.raises(anthropic.APIStatusError):
        claude(live).messages.create(model="claude-sonnet-4-5", max_tokens=2000, messages=TIDES, stream=True)
    assert not live.calls("cost_nanos > 0 AND id > :id", id=row["id"])


def test_a_stream_from_another_provider_ends_with_its_exact_input_usage(
        upstreams: tuple[LiveServer, Upstreams]) -> None:
    live, _ = upstreams
    with claude(live).messages.stream(model="gpt-4o-mini", max_tokens=100, messages=TIDES) as stream:
        events = list(stream)
        final = stream.get_final_message()
    # OpenAI counts the prompt at the end: message_start has no figure to give, message_delta has the exact one.
    assert input_usage(events[0].message.usage)[0] == 0  # type: ignore[union-attr]
    (delta,) = [e for e in events if e.type == "message_delta"]
    assert input_usage(delta.usage) == (5, 4, 0)
    assert input_usage(final.usage) == (5, 4, 0) and final.usage.output_tokens == 2


def test_message_start_reports_the_simulated_anthropics_input_tokens(over_sim: LiveServer, key: str) -> None:
    with claude(over_sim, key).messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=TIDES) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert events[0].type == "message_start"
    assert events[0].message.usage.input_tokens == final.usage.input_tokens > 0


# -- a chat client gets the thinking it must send back -----------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_client_gets_signed_and_redacted_thinking_and_anthropic_gets_them_back(
        upstreams: tuple[LiveServer, Upstreams], stream: bool) -> None:
    live, fake = upstreams
    api = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=30)
    ask: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": TIDES, "reasoning_effort": "low"}
    if stream:
        chunks = list(api.chat.completions.create(**ask, stream=True))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        thinking = [b for c in chunks if c.choices for b in (c.choices[0].delta.model_extra or {}).get(
            "thinking_blocks") or ()]
    else:
        message = api.chat.completions.create(**ask).choices[0].message
        content, thinking = message.content or "", (message.model_extra or {})["thinking_blocks"]
    assert thinking == [THINKING, REDACTED]
    assert content == ANSWER_TEXT
    turn = {"role": "assistant", "content": content, "thinking_blocks": thinking}
    api.chat.completions.create(**{**ask, "messages": [*TIDES, turn, {"role": "user", "content": "And neap tides?"}]})
    assistant = fake.seen[-1]["messages"][1]
    assert assistant["content"][:2] == [THINKING, REDACTED]
