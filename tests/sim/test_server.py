"""The sim server over real HTTP on 127.0.0.1: three wire formats, streams, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.providers.sim import Faults, SimProvider, get_profile
from axtui.providers.sim.server import build_app, run

from .helpers import ask, deployment
from .wire_calls import ANTHROPIC_HEADERS, WireCall, chat_call, ended_properly, events, plain_text, stream_text

WIRES = ["openai", "anthropic", "gemini"]
Serve = Callable[..., Awaitable[str]]


@pytest.mark.parametrize("wire", WIRES)
async def test_plain_and_streamed_answers_agree(http: httpx.AsyncClient, wire: str) -> None:
    prompt = "Explain how vaccines train the immune system"
    plain = await http.post(**_req(chat_call(wire, prompt)))
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    text = plain_text(wire, plain.json())
    assert "vaccines" in text.lower()
    streamed = await http.post(**_req(chat_call(wire, prompt, stream=True)))
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert stream_text(wire, streamed.text) == text
    assert ended_properly(wire, streamed.text)


async def test_every_wire_serves_every_model_with_the_same_answer(http: httpx.AsyncClient) -> None:
    texts = set()
    for wire in WIRES:
        response = await http.post(**_req(chat_call(wire, "Compare tea and coffee", model="llama3.1:8b", max_tokens=1_000)))
        assert response.status_code == 200, response.text
        texts.add(plain_text(wire, response.json()))
    assert len(texts) == 1


async def test_the_server_answers_like_the_in_process_provider(serve: Serve) -> None:
    url = await serve("fast", seed=5)
    async with httpx.AsyncClient(base_url=url) as http:
        body = (await http.post(**_req(chat_call("openai", "What is a monad?", model="gpt-4o")))).json()
    local = SimProvider(ProviderConfig(name="openai", kind="sim", profile="fast"), seed=5, clock=FakeClock())
    answer = await local.chat(ask("What is a monad?"), deployment("openai", "gpt-4o"))
    assert body["choices"][0]["message"]["content"] == answer.content
    assert body["usage"]["completion_tokens"] == answer.usage.output_tokens


async def test_openai_shapes(http: httpx.AsyncClient) -> None:
    body = (await http.post(**_req(chat_call("openai", "hello there", max_tokens=5)))).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] <= 5 and "cached_tokens" in usage["prompt_tokens_details"]

    raw = (await http.post(**_req(chat_call("openai", "hello there", stream=True)))).text
    chunks = [json.loads(d) for _, d in events(raw) if d != "[DONE]"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["usage"] is None for c in chunks[:-1]), "with include_usage every other chunk says usage: null"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0

    call = chat_call("openai", "hello there", stream=True)
    del call.body["stream_options"]
    raw = (await http.post(**_req(call))).text
    chunks = [json.loads(d) for _, d in events(raw) if d != "[DONE]"]
    assert all("usage" not in c for c in chunks) and all(c["choices"] for c in chunks)


async def test_openai_responses_shapes(http: httpx.AsyncClient) -> None:
    weather = {"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    ask = {"model": "gemini-2.5-flash", "input": "Why is the sky blue?", "instructions": "Be brief.",
           "tools": [{"type": "web_search"}], "truncation": "auto", "store": False}
    body = (await http.post("/v1/responses", json=ask)).json()
    assert body["object"] == "response" and body["status"] == "completed" and body["id"].startswith("resp_")
    assert body["tools"] == [{"type": "web_search"}] and body["truncation"] == "auto", "settings are echoed"
    kinds = [item["type"] for item in body["output"]]
    assert kinds == ["reasoning", "message"] and body["output"][1]["content"][0]["text"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert 0 < usage["output_tokens_details"]["reasoning_tokens"] < usage["output_tokens"]
    assert "cached_tokens" in usage["input_tokens_details"]

    raw = (await http.post("/v1/responses", json={**ask, "stream": True})).text
    streamed = [json.loads(d) for _, d in events(raw)]
    assert [e["sequence_number"] for e in streamed] == list(range(len(streamed)))
    assert streamed[0]["type"] == "response.created" and streamed[-1]["type"] == "response.completed"
    deltas = "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta")
    assert deltas == streamed[-1]["response"]["output"][-1]["content"][0]["text"]

    called = {"model": "gpt-4o-mini", "input": "Where is it raining?", "tools": [weather], "tool_choice": "required"}
    raw = (await http.post("/v1/responses", json={**called, "stream": True})).text
    streamed = [json.loads(d) for _, d in events(raw)]
    arguments = "".join(e["delta"] for e in streamed if e["type"] == "response.function_call_arguments.delta")
    (call,) = streamed[-1]["response"]["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather" and call["arguments"] == arguments
    assert set(json.loads(arguments)) == {"city"}
    answered = {"model": "gpt-4o-mini", "tools": [weather], "input": [
        {"role": "user", "content": "Where is it raining?"},
        {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": arguments},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "rain in Lisbon"}]}
    body = (await http.post("/v1/responses", json=answered)).json()
    assert [item["type"] for item in body["output"]] == ["message"], "after a tool's output the model answers"

    refused = await http.post("/v1/responses", json={**ask, "previous_response_id": "resp_elsewhere"})
    assert refused.status_code == 404 and "resp_elsewhere" in refused.json()["error"]["message"]


async def test_openai_rate_limit_headers(http: httpx.AsyncClient) -> None:
    first = await http.post(**_req(chat_call("openai", "one")))
    second = await http.post(**_req(chat_call("openai", "two")))
    left = [int(r.headers["x-ratelimit-remaining-requests"]) for r in (first, second)]
    assert left[1] == left[0] - 1
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")


async def test_anthropic_shapes(http: httpx.AsyncClient) -> None:
    body = (await http.post(**_req(chat_call("anthropic", "hello there", max_tokens=5)))).json()
    assert body["type"] == "message" and body["id"].startswith("msg_")
    assert body["stop_reason"] == "max_tokens"
    assert {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"} <= set(
        body["usage"])
    raw = (await http.post(**_req(chat_call("anthropic", "hello there", stream=True)))).text
    names = [name for name, _ in events(raw)]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = json.loads(events(raw)[-2][1])
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 1


async def test_anthropic_requires_its_version_header_and_max_tokens(http: httpx.AsyncClient) -> None:
    call = chat_call("anthropic", "hi")
    no_version = await http.post(call.path, json=call.body, headers={"x-api-key": "k"})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["type"] == "invalid_request_error"
    del call.body["max_tokens"]
    missing = await http.post(**_req(call))
    assert missing.status_code == 400 and "max_tokens" in missing.json()["error"]["message"]


async def test_anthropic_refuses_thinking_with_a_forced_tool_choice(http: httpx.AsyncClient) -> None:
    call = chat_call("anthropic", "Run ls")
    tool = {"name": "run", "input_schema": {"type": "object"}}
    thinking = {"type": "enabled", "budget_tokens": 1024}
    for choice in ({"type": "any"}, {"type": "tool", "name": "run"}):
        call.body |= {"tools": [tool], "tool_choice": choice, "thinking": thinking}
        refused = await http.post(**_req(call))
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
        assert "tool_choice forces tool use" in refused.json()["error"]["message"]
    call.body["tool_choice"] = {"type": "auto"}
    assert (await http.post(**_req(call))).status_code == 200


async def test_gemini_shapes(http: httpx.AsyncClient) -> None:
    body = (await http.post(**_req(chat_call("gemini", "Plan a garden", model="gemini-2.5-pro")))).json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    meta = body["usageMetadata"]
    assert meta["thoughtsTokenCount"] > 0, "2.5 models think"
    assert meta["totalTokenCount"] == meta["promptTokenCount"] + meta["candidatesTokenCount"] + meta[
        "thoughtsTokenCount"]
    assert "cachedContentTokenCount" not in meta, "zero counts are left out, as upstream"
    raw = (await http.post(**_req(chat_call("gemini", "Plan a garden", stream=True)))).text
    responses = [json.loads(d) for _, d in events(raw)]
    assert all("finishReason" not in r["candidates"][0] for r in responses[:-1])
    assert responses[-1]["candidates"][0]["finishReason"] == "STOP"
    assert responses[-1]["usageMetadata"]["candidatesTokenCount"] > 0
    cut = (await http.post(**_req(chat_call("gemini", "Plan a garden", max_tokens=4)))).json()
    assert cut["candidates"][0]["finishReason"] == "MAX_TOKENS"


async def test_gemini_stream_without_sse_is_one_json_array(http: httpx.AsyncClient) -> None:
    call = chat_call("gemini", "Plan a garden")
    path = call.path.replace(":generateContent", ":streamGenerateContent")
    answers = (await http.post(path, json=call.body)).json()
    assert isinstance(answers, list) and answers[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_cached_prompt_tokens_show_in_each_format(http: httpx.AsyncClient) -> None:
    prompt = "Summarise the attached contract clause by clause, noting every obligation. " * 100
    found = {"openai": 0, "anthropic": 0, "gemini": 0}
    for _ in range(8):
        for wire in WIRES:
            body = (await http.post(**_req(chat_call(wire, prompt, max_tokens=20)))).json()
            if wire == "openai":
                found[wire] += body["usage"]["prompt_tokens_details"]["cached_tokens"]
            elif wire == "anthropic":
                found[wire] += body["usage"]["cache_read_input_tokens"]
            else:
                found[wire] += body["usageMetadata"].get("cachedContentTokenCount", 0)
    assert all(found.values()), found


async def test_embeddings(http: httpx.AsyncClient) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat"]
    body = (await http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": texts})).json()
    vectors = [d["embedding"] for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1] and len(vectors[0]) == 256
    assert body["usage"]["prompt_tokens"] > 0
    packed = (await http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": texts[0],
                                                       "encoding_format": "base64"})).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(vectors[0], abs=1e-6)
    short = (await http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x",
                                                      "dimensions": 64})).json()
    assert len(short["data"][0]["embedding"]) == 64

    requests = [{"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}} for t in texts]
    batch = (await http.post("/v1beta/models/text-embedding-004:batchEmbedContents",
                             json={"requests": requests})).json()
    assert [len(e["values"]) for e in batch["embeddings"]] == [256, 256]
    one = (await http.post("/v1beta/models/text-embedding-004:embedContent",
                           json={"content": {"parts": [{"text": texts[0]}]}})).json()
    assert one["embedding"]["values"] == batch["embeddings"][0]["values"]
    refused = await http.post("/v1/embeddings", json={"model": "gpt-4o", "input": "x"})
    assert refused.status_code == 400 and "chat model" in refused.json()["error"]["message"]


async def test_model_listings(http: httpx.AsyncClient) -> None:
    served = set(get_profile("fast").model_names)
    openai = (await http.get("/v1/models")).json()
    assert openai["object"] == "list" and {m["id"] for m in openai["data"]} == served
    anthropic = (await http.get("/v1/models", headers=ANTHROPIC_HEADERS)).json()
    assert anthropic["has_more"] is False and "claude-haiku-4-5" in {m["id"] for m in anthropic["data"]}
    gemini = (await http.get("/v1beta/models")).json()
    names = {m["name"] for m in gemini["models"]}
    assert "models/gemini-2.5-flash" in names
    groq = (await http.get("/groq/v1/models")).json()
    assert [m["id"] for m in groq["data"]] == ["llama-3.3-70b-versatile"]


async def test_a_provider_prefix_picks_who_serves(http: httpx.AsyncClient) -> None:
    call = chat_call("openai", "hi", model="gpt-4o")
    assert (await http.post(**_req(call))).status_code == 200
    call.path = "/azure" + call.path
    assert (await http.post(**_req(call))).status_code == 200
    assert (await http.get("/")).json()["served"] == {"openai/gpt-4o": 1, "azure/gpt-4o": 1}
    call.path = "/nobody/v1/chat/completions"
    missing = await http.post(**_req(call))
    assert missing.status_code == 404 and "providers: openai, azure" in missing.json()["error"]["message"]
    call.path = "/groq/v1/chat/completions"
    assert (await http.post(**_req(call))).status_code == 404, "groq does not serve gpt-4o"


@pytest.mark.parametrize("wire", WIRES)
async def test_errors_in_each_providers_shape(http: httpx.AsyncClient, wire: str) -> None:
    unknown = await http.post(**_req(chat_call(wire, "hi", model="gpt-9")))
    assert unknown.status_code == 404
    too_long = await http.post(**_req(chat_call(wire, "word " * 9_000, model="llama3.1:8b", max_tokens=100)))
    assert too_long.status_code == 400
    error = too_long.json()
    if wire == "openai":
        assert error["error"]["code"] == "context_length_exceeded"
        assert "maximum context length is 8192 tokens" in error["error"]["message"]
        assert unknown.json()["error"]["code"] == "model_not_found"
    elif wire == "anthropic":
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith("prompt is too long:")
        assert unknown.json()["error"]["type"] == "not_found_error"
    else:
        assert error["error"]["status"] == "INVALID_ARGUMENT" and error["error"]["code"] == 400
        assert "exceeds the maximum number of tokens allowed (8192)" in error["error"]["message"]
        assert unknown.json()["error"]["status"] == "NOT_FOUND"
    garbage = await http.post(chat_call(wire, "hi").path, content=b"{nope", headers=chat_call(wire, "hi").headers)
    assert garbage.status_code == 400


_STATUS = {
    ("500", "openai"): (500, "server_error"),
    ("500", "anthropic"): (500, "api_error"),
    ("500", "gemini"): (500, "INTERNAL"),
    ("503", "openai"): (503, "server_error"),
    ("503", "anthropic"): (529, "overloaded_error"),
    ("503", "gemini"): (503, "UNAVAILABLE"),
    ("429", "openai"): (429, "requests"),
    ("429", "anthropic"): (429, "rate_limit_error"),
    ("429", "gemini"): (429, "RESOURCE_EXHAUSTED"),
    ("401", "openai"): (401, "invalid_request_error"),
    ("401", "anthropic"): (401, "authentication_error"),
    ("401", "gemini"): (401, "UNAUTHENTICATED"),
}


def _error_kind(wire: str, body: dict[str, Any]) -> str:
    if wire == "gemini":
        return str(body["error"]["status"])
    return str(body["error"]["type"])


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("fault", ["500", "503", "429", "401"])
async def test_fault_header_statuses(http: httpx.AsyncClient, wire: str, fault: str) -> None:
    call = chat_call(wire, "hi")
    response = await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": fault})
    status, kind = _STATUS[(fault, wire)]
    assert response.status_code == status
    assert _error_kind(wire, response.json()) == kind
    if fault == "429":
        assert int(response.headers["Retry-After"]) >= 1
    if fault == "429" and wire == "gemini":
        assert response.json()["error"]["details"][0]["retryDelay"].endswith("s")


@pytest.mark.parametrize("wire", WIRES)
async def test_malformed_answers_are_200_with_invalid_json(http: httpx.AsyncClient, wire: str) -> None:
    for stream in (False, True):
        call = chat_call(wire, "hi", stream=stream)
        response = await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "malformed"})
        assert response.status_code == 200
        payloads = [d for _, d in events(response.text)] if stream else [response.text]
        with pytest.raises(json.JSONDecodeError):
            for payload in payloads:
                json.loads(payload)


@pytest.mark.parametrize("wire", WIRES)
async def test_cut_streams_stop_halfway_without_their_end_marker(http: httpx.AsyncClient, wire: str) -> None:
    whole = await http.post(**_req(chat_call(wire, "Tell me about rivers", stream=True)))
    call = chat_call(wire, "Tell me about rivers", stream=True)
    cut = await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "cut"})
    assert cut.status_code == 200
    partial, full = stream_text(wire, cut.text), stream_text(wire, whole.text)
    assert partial and full.startswith(partial) and len(partial) < len(full)
    assert not ended_properly(wire, cut.text)


async def test_a_cut_plain_answer_drops_the_connection(http: httpx.AsyncClient) -> None:
    call = chat_call("openai", "hi")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "cut"})


async def test_timeouts_hang_past_the_client_and_end_with_it(serve: Serve) -> None:
    url = await serve("fast")
    call = chat_call("openai", "hi")
    async with httpx.AsyncClient(base_url=url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "timeout"})
        assert (await http.get("/healthz")).json() == {"ok": True}, "a hanging call blocks nothing else"


async def test_a_timeout_hang_is_bounded(serve: Serve) -> None:
    fast = get_profile("fast")
    brief = replace(fast, providers=tuple(replace(p, faults=Faults(hang_s=0.2)) for p in fast.providers))
    url = await serve(brief)
    call = chat_call("gemini", "hi")
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        started = time.monotonic()
        response = await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "timeout"})
    assert response.status_code == 504 and response.json()["error"]["status"] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 3


async def test_unknown_fault_names_are_refused(http: httpx.AsyncClient) -> None:
    call = chat_call("openai", "hi")
    response = await http.post(call.path, json=call.body, headers={**call.headers, "X-Sim-Fault": "boom"})
    assert response.status_code == 400 and "use one of" in response.json()["error"]["message"]


async def test_faults_on_embeddings_and_listings(http: httpx.AsyncClient) -> None:
    limited = await http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"},
                              headers={"X-Sim-Fault": "429"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    broken = await http.get("/v1beta/models", headers={"X-Sim-Fault": "500"})
    assert broken.status_code == 500 and broken.json()["error"]["status"] == "INTERNAL"


def test_provider_names_that_clash_with_routes_are_refused() -> None:
    fast = get_profile("fast")
    clash = replace(fast, providers=(replace(fast.providers[0], name="v1"),))
    with pytest.raises(ValueError, match="cannot be named 'v1'"):
        build_app(clash)


def _req(call: WireCall) -> dict[str, Any]:
    return {"url": call.path, "json": call.body, "headers": call.headers}


async def test_run_serves_on_loopback_until_cancelled() -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(port=0, profile="fast", on_ready=ready.set_result))
    url = await asyncio.wait_for(ready, 10)
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).json() == {"ok": True}
        assert (await http.get("/")).json()["profile"] == "fast"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with httpx.AsyncClient(base_url=url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")
