"""Upstreams that answer garbage: the caller gets ax's upstream error (502, or a stream's error event), never a 500.

Each case is one a fuzzer found served as an internal error, or as a
success: text holding half a UTF-16 surrogate pair (``"\\ud800"``, which no
UTF-8 answer can carry), numbers no JSON encoder writes (``Infinity``) or
too large for any index (``1e999``), a streamed tool call whose ``index``
is not a list of calls, and a Gemini answer with no candidates that says
no prompt was blocked. And what a client sends that no provider can be
sent: numbers JSON has no words for, JSON text inside a string (tool
arguments) holding half a surrogate pair or nested past any parser. An `httpx.MockTransport` plays OpenAI, Anthropic and
Gemini, answering what each test gives it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from axtui.config import Settings
from axtui.engine.compose import build_gateway
from axtui.engine.gateway import Gateway

from ._live import LiveServer

SECRET = "sk-upstream-secret-for-tests"
#: model -> (provider name, kind)
PROVIDERS = {"gpt-4o-mini": ("oai", "openai"), "claude-haiku-4-5": ("claude", "anthropic"),
             "gemini-2.5-flash": ("gem", "gemini")}

Answer = Callable[[httpx.Request], httpx.Response]


def _completion(content: str = "\"hello\"", index: str = "0") -> bytes:
    """An OpenAI chat completion whose content and choice index are JSON text as given."""
    return (b'{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": '
            + index.encode() + b', "message": {"role": "assistant", "content": ' + content.encode()
            + b'}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}')


def _chunks(*data: bytes) -> bytes:
    return b"".join(b"data: " + d + b"\n\n" for d in data)


def _chunk(delta: str, index: str = "0") -> bytes:
    return (b'{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": '
            + index.encode() + b', "delta": ' + delta.encode() + b', "finish_reason": null}]}')


OAI_STREAM_END = (b'{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": '
                  b'[{"index": 0, "delta": {}, "finish_reason": "stop"}]}', b"[DONE]")


def _message(text: str = '"hello"') -> bytes:
    return (b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", '
            b'"text": ' + text.encode() + b'}], "stop_reason": "end_turn", "stop_sequence": null, '
            b'"usage": {"input_tokens": 3, "output_tokens": 2}}')


def _events(text: str = '"hel"', index: str = "0") -> bytes:
    events = [
        b'{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",'
        b' "content": [], "stop_reason": null, "usage": {"input_tokens": 3, "output_tokens": 0}}}',
        b'{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}',
        b'{"type": "content_block_delta", "index": ' + index.encode() + b', "delta": {"type": "text_delta", '
        b'"text": ' + text.encode() + b"}}",
        b'{"type": "content_block_stop", "index": 0}',
        b'{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, '
        b'"usage": {"output_tokens": 2}}',
        b'{"type": "message_stop"}',
    ]
    return b"".join(b"event: " + json.loads(e)["type"].encode() + b"\ndata: " + e + b"\n\n" for e in events)


def _gemini(text: str = '"hello"') -> bytes:
    return (b'{"candidates": [{"content": {"role": "model", "parts": [{"text": ' + text.encode()
            + b'}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}')


def _answer(plain: bytes, stream: bytes | None = None) -> Answer:
    """An upstream answering ``plain`` to plain calls and ``stream`` (an event stream) to streamed ones."""

    def answer(request: httpx.Request) -> httpx.Response:
        streamed = b'"stream": true' in request.content or b'"stream":true' in request.content \
            or "streamGenerateContent" in request.url.path
        if streamed and stream is not None:
            return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, content=plain, headers={"content-type": "application/json"})

    return answer


def _served() -> Answer:
    """Each upstream answering as its API does (plain calls)."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = _message() if path.endswith("/messages") else _gemini() if "generateContent" in path else _completion()
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return answer


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Answer], LiveServer]]:
    """``upstream(answer)``: a started gateway (no keys) whose OpenAI, Anthropic and Gemini providers all get
    ``answer``'s response, each call tried once."""
    monkeypatch.setenv("AX_TEST_HOSTILE_KEY", SECRET)
    started: list[LiveServer] = []

    def serve(answer: Answer) -> LiveServer:
        providers = [{"name": name, "kind": kind, "api_key_env": "AX_TEST_HOSTILE_KEY", "models": [model],
                      "max_retries": 0} for model, (name, kind) in PROVIDERS.items()]
        providers[0]["responses"] = "translate"  # /v1/responses served as chat, as by most OpenAI-compatible servers
        settings = Settings.model_validate({
            "providers": providers, "deployments": [{"model": "text-embedding-3-small", "provider": "oai"}],
            "routing": {"max_attempts": 1}, "cache": {"enabled": False}})

        async def factory(settings: Settings) -> Gateway:
            return await build_gateway(settings, transport=httpx.MockTransport(answer))

        started.append(LiveServer(settings, no_auth=True, gateway_factory=factory).start())
        return started[-1]

    yield serve
    for server in started:
        server.stop()


def _call(server: LiveServer, path: str, model: str, *, stream: bool) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "stream": stream}
    if path == "/v1/responses":
        body["input"] = "Hi"
    elif path == "/v1/embeddings":
        body = {"model": model, "input": "Hi"}
    else:
        body["messages"] = [{"role": "user", "content": "Hi"}]
        body["max_tokens"] = 20
    return httpx.post(f"{server.url}{path}", json=body, timeout=30)


def _refused_as_upstream(answer: httpx.Response, provider: str) -> None:
    """A 502 naming the provider, or (headers already sent) a stream ending with the upstream's error event."""
    text = answer.text
    assert "internal_error" not in text and "internal error" not in text, text
    assert SECRET not in text
    if answer.status_code == 200:
        assert answer.headers["content-type"].startswith("text/event-stream"), text
        assert "upstream_error" in text.rsplit("\n\n", 3)[-3] + text.rsplit("\n\n", 3)[-2], text
    else:
        assert answer.status_code == 502, text
        assert answer.json()["error"]["code"] == "upstream_error", text
    assert f"'{provider}'" in text, text


CASES = [
    # -- half a surrogate pair in the text ---------------------------------------------------------
    pytest.param("/v1/chat/completions", "gpt-4o-mini", False, _answer(_completion('"hel\\ud800lo"')),
                 id="openai-surrogate"),
    pytest.param("/v1/chat/completions", "gpt-4o-mini", True,
                 _answer(b"", _chunks(_chunk('{"content": "hel\\udc00"}'), *OAI_STREAM_END)),
                 id="openai-stream-surrogate"),
    pytest.param("/v1/responses", "gpt-4o-mini", True,
                 _answer(b"", _chunks(_chunk('{"content": "hel"}'), _chunk('{"content": "\\ud800"}'),
                                      *OAI_STREAM_END)), id="responses-stream-surrogate-midway"),
    pytest.param("/v1/messages", "claude-haiku-4-5", False, _answer(_message('"hel\\ud800"')),
                 id="anthropic-surrogate"),
    pytest.param("/v1/messages", "claude-haiku-4-5", True, _answer(b"", _events('"hel\\ud800"')),
                 id="anthropic-stream-surrogate"),
    pytest.param("/v1/chat/completions", "claude-haiku-4-5", True, _answer(b"", _events('"hel\\ud800"')),
                 id="anthropic-stream-surrogate-as-chat"),
    pytest.param("/v1/chat/completions", "gemini-2.5-flash", False, _answer(_gemini('"hel\\ud800"')),
                 id="gemini-surrogate"),
    pytest.param("/v1/embeddings", "text-embedding-3-small", False, _answer(
        b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}], '
        b'"model": "e\\ud800", "usage": {"prompt_tokens": 1, "total_tokens": 1}}'), id="embeddings-surrogate"),
    # -- numbers no index can be --------------------------------------------------------------------
    pytest.param("/v1/chat/completions", "gpt-4o-mini", False,
                 _answer(_completion().replace(b'"created": 1', b'"created": Infinity')), id="openai-infinity"),
    pytest.param("/v1/chat/completions", "gpt-4o-mini", False,
                 _answer(_completion().replace(b'"created": 1', b'"created": 1e999')), id="openai-1e999"),
    pytest.param("/v1/chat/completions", "gpt-4o-mini", True,
                 _answer(b"", _chunks(_chunk('{"content": "hel"}', index="1e999"), *OAI_STREAM_END)),
                 id="openai-stream-1e999"),
    pytest.param("/v1/messages", "claude-haiku-4-5", True, _answer(b"", _events(index="1e999")),
                 id="anthropic-stream-1e999"),
    pytest.param("/v1/embeddings", "text-embedding-3-small", False, _answer(
        b'{"object": "list", "data": [{"object": "embedding", "index": 1e999, "embedding": [0.1, 0.2]}], '
        b'"model": "e", "usage": {"prompt_tokens": 1, "total_tokens": 1}}'), id="embeddings-1e999"),
    # -- a streamed tool call that is not one ----------------------------------------------------------
    pytest.param("/v1/chat/completions", "gpt-4o-mini", True, _answer(b"", _chunks(
        _chunk('{"tool_calls": ["f"]}'), *OAI_STREAM_END)), id="tool-call-a-string"),
    pytest.param("/v1/responses", "gpt-4o-mini", True, _answer(b"", _chunks(
        _chunk('{"tool_calls": [{"index": 0, "function": {"name": 7, "arguments": "{}"}}]}'), *OAI_STREAM_END)),
                 id="tool-call-name-a-number"),
    # -- an answer that is no answer ---------------------------------------------------------------
    pytest.param("/v1/chat/completions", "gemini-2.5-flash", False, _answer(b"{}"), id="gemini-empty-object"),
    pytest.param("/v1/chat/completions", "gemini-2.5-flash", False, _answer(b'{"candidates": []}'),
                 id="gemini-no-candidates"),
]


@pytest.mark.parametrize(("path", "model", "stream", "answer"), CASES)
def test_garbage_from_upstream_is_the_upstreams_error(
        upstream: Callable[[Answer], LiveServer], path: str, model: str, stream: bool, answer: Answer) -> None:
    server = upstream(answer)
    model_provider = {**{m: p for m, (p, _) in PROVIDERS.items()}, "text-embedding-3-small": "oai"}
    _refused_as_upstream(_call(server, path, model, stream=stream), model_provider[model])
    # Recorded as the upstream's failure (not as a bug of ax's), and nothing was cached or served.
    records = server.calls()
    assert [(r["status"], r["error_class"]) for r in records] == [("error", "MalformedResponse")], records


def test_a_blocked_gemini_prompt_is_still_an_answer(upstream: Callable[[Answer], LiveServer]) -> None:
    server = upstream(_answer(b'{"promptFeedback": {"blockReason": "SAFETY"}}'))
    answer = _call(server, "/v1/chat/completions", "gemini-2.5-flash", stream=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["finish_reason"] == "content_filter"


def test_a_well_formed_answer_still_passes(upstream: Callable[[Answer], LiveServer]) -> None:
    # The control: the same upstreams, answering as they should, are served.
    server = upstream(_answer(_completion('"hel\\ud83d\\ude00lo"'), _chunks(_chunk('{"content": "hello"}'),
                                                                              *OAI_STREAM_END)))
    answer = _call(server, "/v1/chat/completions", "gpt-4o-mini", stream=False)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "hel\U0001f600lo"
    streamed = _call(server, "/v1/responses", "gpt-4o-mini", stream=True)
    assert streamed.status_code == 200 and "response.completed" in streamed.text, streamed.text


def test_a_streamed_tool_call_with_a_null_index_is_read_as_one_without(
        upstream: Callable[[Answer], LiveServer]) -> None:
    # The fragment check reads "index": null as no index; every encoder now does too (Responses' failed on it).
    server = upstream(_answer(b"", _chunks(_chunk('{"tool_calls": [{"index": null, "id": "t", "type": "function", '
                                                  '"function": {"name": "f", "arguments": "{}"}}]}'),
                                           *OAI_STREAM_END)))
    responses = _call(server, "/v1/responses", "gpt-4o-mini", stream=True)
    assert responses.status_code == 200 and "event: error" not in responses.text, responses.text
    assert "response.completed" in responses.text and '"type":"function_call"' in responses.text
    chat = _call(server, "/v1/chat/completions", "gpt-4o-mini", stream=True)
    assert chat.status_code == 200 and '"error"' not in chat.text, chat.text
    assert '"tool_calls":[{"index":0,' in chat.text, chat.text  # the SDKs' stream helpers join by index


# -- what a client sends that no provider can be sent ------------------------------------------------------


def _with_tool_call(arguments: Any) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None,
                                                             "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]}


@pytest.mark.parametrize("model", list(PROVIDERS))
@pytest.mark.parametrize(("fields", "where"), [
    (b'"top_k": NaN', "op"),  # top_k, or Gemini's generationConfig.topK
    (b'"seed_of_mine": 1e999', "seed_of_mine"),
    (b'"metadata": {"run": Infinity}', ""),
    (b'"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": '
     b'{"n": {"type": "number", "maximum": NaN}}}}}]', "maximum"),
], ids=["nan", "1e999", "in-metadata", "in-a-schema"])
def test_a_number_json_has_no_word_for_is_a_400_saying_where(
        upstream: Callable[[Answer], LiveServer], model: str, fields: bytes, where: str) -> None:
    server = upstream(_served())
    body = b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "content": "Hi"}], ' + fields + b"}"
    answer = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=30,
                        headers={"content-type": "application/json"})
    if answer.status_code == 200:
        # A field this provider does not take (metadata at Gemini and Anthropic) is never sent, so never refused.
        assert where == "" and model != "gpt-4o-mini", answer.text
        return
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request" and "JSON cannot carry" in error["message"], error
    assert where in error["message"] and "finite" in error["message"], error


@pytest.mark.parametrize("arguments", [
    '{"city": "Os\\ud800lo"}',
    '{"n": NaN}',
    '{"n": 1e999}',
    "[" * 3000 + "]" * 3000,
], ids=["half-a-surrogate-pair", "nan", "1e999", "nested-3000-deep"])
@pytest.mark.parametrize("model", list(PROVIDERS))
def test_tool_arguments_no_provider_can_be_sent_are_a_400_or_sent_as_text(
        upstream: Callable[[Answer], LiveServer], model: str, arguments: str) -> None:
    server = upstream(_served())
    for body in (_with_tool_call(arguments), _with_tool_call({"n": float("nan")}) if arguments == '{"n": NaN}'
                 else None):
        if body is None:
            continue
        content = json.dumps({"model": model, **body}).encode()
        answer = httpx.post(f"{server.url}/v1/chat/completions", content=content, timeout=30,
                            headers={"content-type": "application/json"})
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            error = answer.json()["error"]
            assert error["type"] == "invalid_request_error" and "JSON" in error["message"], error
