"""Streams cut by the client, and upstream failures as the caller sees them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import openai
import pytest

from axtui.bus import CallRecorded
from axtui.config import Settings
from axtui.providers.sim.profiles import get_profile, register_profile
from axtui.providers.sim.spec import Latency, Profile
from axtui.types import CallRecord

from ._live import LiveServer
from .conftest import fleet_settings

HELLO = [{"role": "user", "content": "Tell me a long story about caching"}]


def _slow() -> Profile:
    fast = get_profile("fast")
    providers = tuple(replace(p, latency=Latency(5, 10, 15.0)) for p in fast.providers)
    return Profile("slow-stream", providers, "answers at 15 tokens/s")


@pytest.fixture
def slow_live() -> Iterator[LiveServer]:
    register_profile("slow-stream", _slow)
    data = fleet_settings().model_dump()
    for p in data["providers"]:
        p["profile"] = "slow-stream"
    server = LiveServer(Settings.model_validate(data), no_auth=True).start()
    yield server
    server.stop()


def test_client_leaving_mid_stream_cancels_and_records(slow_live: LiveServer) -> None:
    records: list[CallRecord] = []
    slow_live.gateway.bus.subscribe(lambda e: records.append(e.record) if isinstance(e, CallRecorded) else None)
    body = (b'{"model": "gpt-4o-mini", "stream": true, "max_tokens": 400, '
            b'"messages": [{"role": "user", "content": "Tell me a long story"}]}')
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", slow_live.port)) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
        assert b"200" in first.split(b"\r\n", 1)[0]
        # Read until the first text chunk arrives, then hang up.
        data = first
        while b"content" not in data:
            data += sock.recv(65536)
    deadline = time.monotonic() + 10
    while not records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(records) == 1
    rec = records[0]
    assert rec.status == "cancelled" and rec.stream and rec.provider == "openai"
    # Everything produced before the cut was counted, not the whole answer.
    assert 0 < rec.output_tokens < 400
    assert slow_live.app.state.inflight == 0


def test_a_stream_this_side_cannot_encode_is_recorded_at_once_with_its_error(
        slow_live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.server import wire

    records: list[CallRecord] = []
    slow_live.gateway.bus.subscribe(lambda e: records.append(e.record) if isinstance(e, CallRecorded) else None)
    original = wire.StreamEncoder.encode
    seen = [0]

    def encode(self: object, chunk: object) -> bytes:
        seen[0] += 1
        if seen[0] == 3:
            raise TypeError("a chunk this side cannot encode")
        return original(self, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(wire.StreamEncoder, "encode", encode)
    with httpx.stream("POST", f"{slow_live.url}/v1/chat/completions", timeout=10, json={
            "model": "gpt-4o-mini", "stream": True, "max_tokens": 400, "messages": HELLO}) as r:
        body = b"".join(r.iter_bytes())
    assert r.status_code == 200 and b"internal_error" in body and body.endswith(b"data: [DONE]\n\n")
    # At once, not when the stream is collected some time later; the upstream call is not left running.
    deadline = time.monotonic() + 5
    while not records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(records) == 1
    assert (records[0].status, records[0].error_class) == ("error", "TypeError")
    assert records[0].output_tokens < 400


@pytest.mark.parametrize(
    ("fault", "status", "sdk_error", "code"),
    [
        ("500", 502, openai.InternalServerError, "upstream_error"),
        ("malformed", 502, openai.InternalServerError, "upstream_error"),
        ("429", 429, openai.RateLimitError, "upstream_rate_limited"),
    ],
)
def test_upstream_failures(open_live: LiveServer, fault: str, status: int, sdk_error: type[Exception],
                           code: str) -> None:
    api = openai.OpenAI(base_url=f"{open_live.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(sdk_error) as info:
        # The fault is forced on every provider that serves the model, retries included.
        api.chat.completions.create(model="claude-haiku-4-5", messages=HELLO, metadata={"sim_fault": fault})
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.body["code"] == code  # type: ignore[attr-defined]


def test_upstream_timeout_is_504(open_live: LiveServer) -> None:
    for provider in open_live.gateway.providers.values():
        provider.config = provider.config.model_copy(update={"timeout_s": 0.05})
    r = httpx.post(f"{open_live.url}/v1/chat/completions", timeout=30,
                   json={"model": "claude-haiku-4-5", "messages": HELLO, "metadata": {"sim_fault": "timeout"}})
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def test_stream_cut_upstream_after_tokens_ends_with_an_error_event(open_live: LiveServer) -> None:
    api = openai.OpenAI(base_url=f"{open_live.url}/v1", api_key="x", max_retries=0)
    stream = api.chat.completions.create(model="claude-haiku-4-5", messages=HELLO, stream=True,
                                         metadata={"sim_fault": "cut"})
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert received, "some text arrived before the cut"
    assert "stream" in str(info.value).lower()


def _sse_events(answer: httpx.Response) -> list[dict[str, object]]:
    import json

    return [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]


def test_a_stream_cut_after_its_thinking_is_not_served_again_by_another_deployment(open_live: LiveServer) -> None:
    # Thinking reached the client: a fallback would send it a second answer's thinking after the first.
    body = {"model": "gpt-4o-mini", "stream": True, "reasoning_effort": "low", "max_tokens": 3,
            "metadata": {"sim_fault": "cut"}, "messages": [{"role": "user", "content": "hi cut"}]}
    with httpx.stream("POST", f"{open_live.url}/v1/chat/completions", json=body, timeout=30) as answer:
        events = _sse_events(answer)
    thoughts = [e["choices"][0]["delta"].get("reasoning_content") for e in events if e.get("choices")]  # type: ignore[index, union-attr]
    assert [t for t in thoughts if t], events
    assert len([t for t in thoughts if t]) == len({t for t in thoughts if t}), "the thinking came twice"
    assert "error" in events[-1], events[-1]


def test_a_responses_stream_numbers_its_error_event_after_the_others(open_live: LiveServer) -> None:
    body = {"model": "claude-haiku-4-5", "stream": True, "input": "Tell me a long story about caching",
            "metadata": {"sim_fault": "cut"}}
    with httpx.stream("POST", f"{open_live.url}/v1/responses", json=body, timeout=30) as answer:
        events = _sse_events(answer)
    assert events[-1]["type"] == "error" and len(events) > 3, events
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
