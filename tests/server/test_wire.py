"""Wire shapes without a server: OpenAI chunks and answers, Anthropic conversions, errors, auth."""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from axtui.errors import (
    BudgetExceeded,
    InvalidRequest,
    ProviderServerError,
    ProviderTimeout,
    RateLimited,
    RouteUnavailable,
)
from axtui.server import anthropic_wire as aw
from axtui.server import wire
from axtui.server.anthropic_stream import MessageStreamEncoder
from axtui.server.auth import Authenticator, bearer_token
from axtui.server.errors import error_payload, invalid_from_validation
from axtui.server.keys import KeyInfo
from axtui.types import ChatRequest, ChatResponse, Chunk, Usage


def _events(blob: bytes) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in blob.decode().split("\n") if line.startswith("data: {")]


@given(st.lists(st.text(min_size=1, max_size=20), max_size=30), st.booleans())
def test_stream_deltas_rebuild_the_text(pieces: list[str], include_usage: bool) -> None:
    enc = wire.StreamEncoder("chatcmpl-ax1", "m", 1, include_usage=include_usage)
    blob = b"".join(enc.encode(Chunk(delta=p)) for p in pieces)
    blob += enc.encode(Chunk(finish_reason="stop")) + enc.encode(Chunk(usage=Usage(5, 7))) + enc.finish()
    events = _events(blob)
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])  # type: ignore[index]
    assert text == "".join(pieces)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"  # type: ignore[index]
    assert blob.endswith(b"data: [DONE]\n\n")
    if include_usage:
        assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 7  # type: ignore[index]
    else:
        assert all("usage" not in e for e in events)


def test_replayed_tool_calls_get_an_index() -> None:
    enc = wire.StreamEncoder("id", "m", 1, include_usage=False)
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    (event,) = _events(enc.encode(Chunk(tool_calls=[call])))
    assert event["choices"][0]["delta"]["tool_calls"][0]["index"] == 0  # type: ignore[index]


def test_completion_with_tool_calls_has_null_content() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = wire.completion_body(ChatResponse("", "m", Usage(1, 1), "tool_calls", [call]), "id")
    message = body["choices"][0]["message"]
    assert message["content"] is None and "index" not in message["tool_calls"][0]


def test_base64_embeddings_are_little_endian_float32() -> None:
    body = wire.embedding_body([[0.25, -1.5]], "e", 2, "base64")
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.25, -1.5)


def test_embedding_request_validation() -> None:
    with pytest.raises(ValidationError):
        wire.EmbeddingRequest.model_validate({"model": "e", "input": []})
    with pytest.raises(ValidationError):
        wire.EmbeddingRequest.model_validate({"model": "e", "input": ["ok", ""]})
    # Token ids (LangChain's OpenAIEmbeddings sends them): one array, or several.
    assert wire.EmbeddingRequest.model_validate({"model": "e", "input": [1, 2, 3]}).inputs() == [[1, 2, 3]]
    assert wire.EmbeddingRequest.model_validate({"model": "e", "input": [[1, 2], [3]]}).inputs() == [[1, 2], [3]]
    assert wire.EmbeddingRequest.model_validate({"model": "e", "input": ["a", "b"]}).inputs() == ["a", "b"]
    assert wire.EmbeddingRequest.model_validate({"model": "e", "input": [[7.0, 8]]}).inputs() == [[7, 8]]
    for bad, says in ((["a", 1], "mixes kinds"), ([[1], []], "at least one token id"), ([[1, -2]], "from 0"),
                      ([True], "texts only, or token ids only"), ([[1.5]], "whole number"), ([[2**31]], "to 2147483647")):
        with pytest.raises(ValidationError, match=says):
            wire.EmbeddingRequest.model_validate({"model": "e", "input": bad})
    assert wire.EmbeddingRequest.model_validate({"model": "e", "input": "x", "dimensions": 8}).dimensions == 8


def test_anthropic_request_becomes_openai_shape() -> None:
    native = aw.AnthropicRequest.model_validate({
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": "Be terse.",
        "top_k": 5,
        "metadata": {"user_id": "erin"},
        "stop_sequences": ["END"],
        "tools": [{"name": "weather", "description": "w", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": "sunny"},
                {"type": "text", "text": "thanks"},
            ]},
        ],
    })
    req = aw.to_chat_request(native)
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool", "user"]
    assert req.user == "erin" and req.max_tokens == 100 and req.stop == ["END"]
    assert req.passthrough()["top_k"] == 5 and req.passthrough()["parallel_tool_calls"] is False
    assert req.tool_choice == "required"
    assert req.tools == [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"},
                                                           "description": "w"}}]
    image = req.messages[1].content[1]  # type: ignore[index]
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    call = req.messages[2].tool_calls[0]  # type: ignore[index]
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert req.messages[3].tool_call_id == "tu_1" and req.messages[3].content == "sunny"


def test_anthropic_tool_result_without_id_names_where() -> None:
    native = aw.AnthropicRequest.model_validate({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]})
    with pytest.raises(InvalidRequest) as info:
        aw.to_chat_request(native)
    assert info.value.param == "messages.0.content.0"


def test_a_responses_tool_is_named_where_the_client_sent_it_after_hosted_tools_left_out() -> None:
    from axtui.server import responses_wire as rw

    native = rw.ResponsesRequest.model_validate({"model": "m", "input": "hi", "tools": [
        {"type": "web_search"}, {"type": "function", "name": "f", "parameters": {}},
        {"type": "function", "name": "g", "strict": "yes"}]})
    with pytest.raises(InvalidRequest) as info:
        rw.to_chat_request(native, [], problems=[])  # served natively: the hosted tool is left out of the translation
    assert info.value.param == "tools.2.strict"
    assert "tools.2.strict: must be true or false" in info.value.message


def test_a_messages_tool_sent_in_chat_shape_keeps_its_own_path() -> None:
    native = aw.AnthropicRequest.model_validate({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"}], "tools": [
        {"name": "a", "input_schema": {}}, {"type": "function", "function": {"name": "b c"}}]})
    with pytest.raises(InvalidRequest) as info:
        aw.to_chat_request(native)
    assert info.value.param == "tools.1.function.name"


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_anthropic_usage_takes_cache_tokens_out_of_input(fresh: int, read: int, written: int, out: int) -> None:
    usage = Usage(fresh + read + written, out, cached_input_tokens=read, cache_write_tokens=written)
    body = aw.usage_body(usage)
    assert body == {"input_tokens": fresh, "output_tokens": out, "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": written}


def test_anthropic_stream_events_in_order() -> None:
    enc = MessageStreamEncoder("msg_1", "m")
    blob = enc.start() + enc.encode(Chunk(delta="Hel")) + enc.encode(Chunk(delta="lo"))
    blob += enc.encode(Chunk(tool_calls=[{"index": 0, "id": "tu", "function": {"name": "f", "arguments": ""}}]))
    blob += enc.encode(Chunk(tool_calls=[{"index": 0, "function": {"arguments": "{\"a\":1}"}}]))
    blob += enc.encode(Chunk(finish_reason="tool_calls")) + enc.encode(Chunk(usage=Usage(9, 4))) + enc.finish()
    kinds = [line[7:] for line in blob.decode().splitlines() if line.startswith("event: ")]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    delta = next(json.loads(line[6:]) for line in blob.decode().split("\n") if '"message_delta"' in line)
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == 4


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RateLimited("slow down", retry_after=0.2, limit=5, remaining=0, scope="user:a"), 429, "rate_limit_exceeded"),
        (BudgetExceeded("no money"), 402, "budget_exceeded"),
        (ProviderServerError("boom", provider="p", http_status=503), 502, "upstream_error"),
        (ProviderTimeout("slow", provider="p"), 504, "upstream_timeout"),
        (RuntimeError("bug"), 500, "internal_error"),
        # Every deployment's circuit open: the gateway says when one may take calls again.
        (RouteUnavailable("no deployment can take the call now", retry_after=29), 503, "upstream_error"),
    ],
)
def test_error_payloads(exc: BaseException, status: int, code: str) -> None:
    got, body, headers = error_payload(exc)
    assert got == status and body["error"]["code"] == code
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if status == 429:
        assert dict(headers)[b"retry-after"] == b"1" and dict(headers)[b"retry-after-ms"] == b"200"
    if status == 500:
        assert "bug" not in body["error"]["message"]  # internals stay in the log
    if status == 503:
        assert dict(headers)[b"retry-after"] == b"29"


def test_validation_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 3})
    err = invalid_from_validation(info.value)
    assert err.param == "top_p" and "top_p" in err.message


def test_bearer_token_sources() -> None:
    assert bearer_token({b"authorization": b"Bearer axk_1"}) == "axk_1"
    assert bearer_token({b"x-api-key": b"axk_2"}) == "axk_2"
    assert bearer_token({b"authorization": b"Basic xyz"}) is None
    assert bearer_token({}) is None


async def test_concurrent_requests_share_one_key_lookup() -> None:
    auth = Authenticator(store=None, cache_s=60)  # type: ignore[arg-type]
    calls = 0

    async def slow_lookup(token: str) -> KeyInfo | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return KeyInfo(id="abc", user="u")

    auth._lookup = slow_lookup  # type: ignore[method-assign]
    infos = await asyncio.gather(*(auth.key("axk_token") for _ in range(20)))
    assert calls == 1 and {i.user for i in infos} == {"u"}
    await auth.key("axk_token")
    assert calls == 1  # cached


@pytest.mark.parametrize(("field", "value"), [
    ("stream", "yes"), ("stream", 1), ("max_tokens", True), ("max_tokens", "10"), ("n", "2"),
    ("temperature", "0.5"), ("temperature", True), ("seed", 1.5),
])
def test_a_value_of_the_wrong_json_type_is_refused_not_read_as_another(field: str, value: object) -> None:
    from axtui.server.anthropic_wire import AnthropicRequest
    from axtui.server.responses_wire import ResponsesRequest

    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    with pytest.raises(ValidationError) as info:
        ChatRequest.model_validate_json(json.dumps(chat))
    assert invalid_from_validation(info.value).param == field
    # The Messages and Responses APIs' own fields alike.
    messages = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    for model, body, name in [(AnthropicRequest, messages, {"max_tokens": "max_tokens"}.get(field, field)),
                              (ResponsesRequest, {"model": "m", "input": "x"},
                               {"max_tokens": "max_output_tokens"}.get(field, field))]:
        if name in model.model_fields:
            with pytest.raises(ValidationError):
                model.model_validate_json(json.dumps({**body, name: value}))
    assert ChatRequest.model_validate_json(json.dumps({**chat, field: {"stream": True, "max_tokens": 10, "n": 2,
                                                                        "temperature": 1, "seed": 3}[field]}))


@pytest.mark.parametrize("dimensions", [True, 0, -3, "8"])
def test_embedding_dimensions_are_a_positive_json_integer(dimensions: object) -> None:
    with pytest.raises(ValidationError) as info:
        wire.EmbeddingRequest.model_validate_json(json.dumps({"model": "m", "input": "x", "dimensions": dimensions}))
    assert invalid_from_validation(info.value).param == "dimensions"


# -- /v1/messages: stop sequences, the client's own body, Anthropic's error types ----------------------------


def test_a_matched_stop_sequence_is_the_answers_stop_reason_plain_and_streamed() -> None:
    stopped = ChatResponse("Hello, nice ", "m", Usage(3, 4), "stop", stop_sequence="to")
    body = aw.message_body(stopped, "msg_1")
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "to")
    enc = MessageStreamEncoder("msg_1", "m")
    blob = enc.start() + enc.encode(Chunk(delta="Hello, nice ")) + enc.encode(
        Chunk(finish_reason="stop", stop_sequence="to")) + enc.finish()
    (delta,) = [e for e in _events(blob) if e["type"] == "message_delta"]
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "to"}
    # An OpenAI-compatible upstream's "stop" says no sequence: the end of the turn, as before.
    plain = aw.message_body(ChatResponse("Hi", "m", Usage(1, 1), "stop"), "msg_2")
    assert (plain["stop_reason"], plain["stop_sequence"]) == ("end_turn", None)


CLAUDE_CODE_TURNS = [
    {"role": "user", "content": "Look at the screenshot tool"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "A"},
        {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}},
        {"type": "text", "text": "B"},
        {"type": "tool_use", "id": "toolu_2", "name": "run", "input": {"cmd": "false"}},
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "cache_control": {"type": "ephemeral"}, "content": [
            {"type": "text", "text": "the screen"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": "exit status 1"},
    ]},
]


def test_a_messages_request_carries_the_clients_body_and_beta_header_for_anthropic() -> None:
    sent = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": CLAUDE_CODE_TURNS,
            "metadata": {"user_id": "erin", "ax_cache": "no-store"}, "context_management": {"edits": []}}
    request = aw.to_chat_request(aw.AnthropicRequest.model_validate(sent), beta="context-management-2025-06-27")
    native = request.native
    assert native is not None and native.api == "messages"
    assert native.body["messages"] == CLAUDE_CODE_TURNS  # blocks, order, image, is_error, cache_control
    assert native.body["metadata"] == {"user_id": "erin"} and native.body["context_management"] == {"edits": []}
    assert native.headers == {"anthropic-beta": "context-management-2025-06-27"}
    # The translation others are sent cannot carry the image in the tool result: they refuse it, naming it.
    assert native.param == "messages.2.content.0.content.1.type" and native.param in (native.problem or "")
    # What the translation loses (the order, is_error, the image, the beta) keys the cache.
    assert native.keyed["messages"] == CLAUDE_CODE_TURNS and native.keyed["anthropic-beta"]
    # The chat translation stays what OpenAI and Gemini can take.
    assistant, error = request.messages[1], request.messages[3]
    assert assistant.content == "AB" and [c["id"] for c in assistant.tool_calls or ()] == ["toolu_1", "toolu_2"]
    assert error.role == "tool" and error.content == "Error: exit status 1"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "bogus_block"}]}]},
     "messages.0.content.1.type"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [
        {"name": "f", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}, "tools.1.type"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}}]}]},
     "messages.1.content.0.type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]}, "messages.0.content.0.source.type"),
])
def test_what_only_anthropic_takes_is_a_problem_naming_the_field(body: dict[str, object], param: str) -> None:
    request = aw.to_chat_request(aw.AnthropicRequest.model_validate({"model": "m", "max_tokens": 5, **body}))
    assert request.native is not None and request.native.param == param
    plain = aw.to_chat_request(aw.AnthropicRequest.model_validate(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}))
    assert plain.native is not None and plain.native.problem is None and "messages" not in plain.native.keyed


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
    (403, "permission_error"), (404, "not_found_error"), (405, "invalid_request_error"),
    (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"),
    (503, "overloaded_error"), (504, "timeout_error"),
])
def test_anthropic_errors_use_anthropics_error_types(status: int, kind: str) -> None:
    from axtui.errors import AuthenticationError, ModelNotAllowed, UnknownModel
    from axtui.server.errors import HTTPProblem

    exc: BaseException = {
        400: InvalidRequest("bad", param="x"), 401: AuthenticationError("no key"), 402: BudgetExceeded("spent"),
        403: ModelNotAllowed("not yours", model="m", allowed=[]), 404: UnknownModel("m", ["n"]),
        405: HTTPProblem(405, "POST", error_type="invalid_request_error", code="method_not_allowed"),
        413: HTTPProblem(413, "big", error_type="invalid_request_error", code="request_too_large"),
        429: RateLimited("slow", retry_after=1), 500: RuntimeError("bug"),
        502: ProviderServerError("boom", provider="p"), 503: RouteUnavailable("none"),
        504: ProviderTimeout("slow", provider="p"),
    }[status]
    got, body, _ = error_payload(exc, anthropic=True)
    assert got == status and body["type"] == "error" and body["error"]["type"] == kind
    # OpenAI's shape keeps ax's own types.
    _, openai_body, _ = error_payload(exc)
    assert "type" not in openai_body and openai_body["error"]["type"] == getattr(exc, "error_type", "api_error")
    assert openai_body["error"]["code"] == body["error"]["code"]


def test_anthropic_model_pages() -> None:
    names = ["a", "b", "c", "d", "e"]
    first = aw.model_page(names, 0, {"limit": "2"})
    assert [m["id"] for m in first["data"]] == ["a", "b"] and first["has_more"] is True
    assert first["data"][0] == {"type": "model", "id": "a", "display_name": "a", "created_at": "1970-01-01T00:00:00Z"}
    last = aw.model_page(names, 0, {"limit": "2", "after_id": "d"})
    assert [m["id"] for m in last["data"]] == ["e"] and last["has_more"] is False and last["first_id"] == "e"
    before = aw.model_page(names, 0, {"limit": "2", "before_id": "d"})
    assert (before["first_id"], before["last_id"], before["has_more"]) == ("b", "c", True)
    for query, param in [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"after_id": "zz"}, "after_id")]:
        with pytest.raises(InvalidRequest) as info:
            aw.model_page(names, 0, query)
        assert info.value.param == param
