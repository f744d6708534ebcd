"""A stream whose first chunk is slow: headers and keep-alives before it, fallback and errors after them.

Every provider's stream is held before its first chunk until the client
has seen a keep-alive (`SlowStart`, released by the client's `Tap`), so
no test depends on how long anything takes: the wait is 0.2 s, and the
hold only gives up after `HOLD_S`, for a server that never sends one.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from axtui.bus import CallRecorded
from axtui.engine.gateway import Gateway
from axtui.errors import ProviderServerError
from axtui.server.keepalive import KEEP_ALIVE
from axtui.types import CallRecord, ChatRequest, Chunk, Deployment, Usage

from ._live import LiveServer
from .apis._sim_upstream import KEY_ENV, mock_upstreams
from .conftest import fleet_settings

#: The longest a held stream waits for the client to see a keep-alive (a server that sends none).
HOLD_S = 10.0
TIDES = [{"role": "user", "content": "Explain how tides work"}]
FORMATS = ["chat", "messages", "responses"]


async def _released(go: threading.Event) -> None:
    """Until the test's thread sets ``go`` (at most `HOLD_S`)."""
    for _ in range(int(HOLD_S / 0.01)):
        if go.is_set():
            return
        await asyncio.sleep(0.01)


class SlowStart:
    """Holds every stream of ``gateway``'s providers before its first chunk until ``go`` is set; the first
    ``failing`` of them then fail (a 503, which the engine falls back from) instead of answering."""

    def __init__(self, gateway: Gateway, failing: int = 0) -> None:
        self.go = threading.Event()
        self.failing = failing
        self.called: list[str] = []  # the providers asked, in order
        self.cancelled = 0
        for provider in gateway.providers.values():
            provider.stream = self._held(provider.stream)  # type: ignore[method-assign]

    def _held(self, stream: Callable[[ChatRequest, Deployment], AsyncIterator[Chunk]]) -> Any:
        async def held(request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
            self.called.append(deployment.provider)
            failing = len(self.called) <= self.failing
            try:
                await _released(self.go)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            if failing:
                raise ProviderServerError("overloaded", provider=deployment.provider, http_status=503)
            async for chunk in stream(request, deployment):
                yield chunk

        return held


class _Seen(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, tap: Tap) -> None:
        self.inner = inner
        self.tap = tap

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.tap.body += part
            if self.tap.go is not None and self.tap.body.count(KEEP_ALIVE) >= self.tap.after:
                self.tap.go.set()
            yield part

    def close(self) -> None:
        self.inner.close()


class Tap(httpx2.BaseTransport):
    """An SDK client's transport: passes everything on, keeping the answer's status, headers and bytes as they
    arrive; the ``after``-th keep-alive sets ``go``."""

    def __init__(self, go: threading.Event | None = None, after: int = 1) -> None:
        self.go = go
        self.after = after
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self._inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        self.status, self.headers = response.status_code, dict(response.headers)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        return httpx2.Response(response.status_code, headers=response.headers, stream=_Seen(response.stream, self),
                               extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """The fast fleet (no keys), committing to a stream after 0.2 s without its first chunk."""
    server = LiveServer(fleet_settings(stream_keepalive_s=0.2), no_auth=True).start()
    yield server
    server.stop()


def _ask(live: LiveServer, wire: str, tap: Tap, model: str) -> tuple[str, dict[str, int]]:
    """One streamed call through the official SDK of ``wire``: the answer's text and its usage as the SDK read it."""
    client = httpx2.Client(transport=tap)
    if wire == "chat":
        api = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, http_client=client)
        text, usage = "", {}
        for chunk in api.chat.completions.create(model=model, messages=TIDES, stream=True,  # type: ignore[arg-type]
                                                 stream_options={"include_usage": True}):
            text += "".join(c.delta.content or "" for c in chunk.choices)
            if chunk.usage is not None:
                usage = {"input": chunk.usage.prompt_tokens, "output": chunk.usage.completion_tokens}
        return text, usage
    if wire == "messages":
        claude = anthropic.Anthropic(base_url=live.url, api_key="x", max_retries=0, http_client=client)
        with claude.messages.stream(model=model, max_tokens=300, messages=TIDES) as stream:  # type: ignore[arg-type]
            message = stream.get_final_message()
        text = "".join(b.text for b in message.content if b.type == "text")
        return text, {"input": message.usage.input_tokens, "output": message.usage.output_tokens}
    api = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, http_client=client)
    with api.responses.stream(model=model, input="Explain how tides work") as events:
        response = events.get_final_response()
    assert response.usage is not None
    return response.output_text, {"input": response.usage.input_tokens, "output": response.usage.output_tokens}


def _priced(live: LiveServer, row: dict[str, Any]) -> int | None:
    """What the recorded call's tokens cost at its deployment's price."""
    (deployment,) = [d for d in live.gateway.catalog.resolve(row["requested_model"]) if d.provider == row["provider"]]
    usage = Usage(**{k: row[k] for k in ("input_tokens", "output_tokens", "cached_input_tokens",
                                         "cache_write_tokens", "reasoning_tokens")})
    return live.gateway.prices.cost(deployment, usage)


def _records(live: LiveServer) -> list[CallRecord]:
    records: list[CallRecord] = []
    live.gateway.bus.subscribe(lambda e: records.append(e.record) if isinstance(e, CallRecorded) else None)
    return records


def _until(done: Callable[[], bool]) -> None:
    """Wait until ``done()`` (at most 10 s: the assertion after it says what did not happen)."""
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


# -- a slow first chunk ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", FORMATS)
def test_a_slow_first_chunk_gets_keep_alives_then_the_whole_answer(live: LiveServer, wire: str) -> None:
    slow = SlowStart(live.gateway)
    tap = Tap(slow.go, after=3)
    model = "claude-haiku-4-5" if wire == "messages" else "gpt-4o-mini"
    text, usage = _ask(live, wire, tap, model)
    assert tap.status == 200 and tap.body.startswith(KEEP_ALIVE * 3), "keep-alives, and nothing before them"
    # The answer is whole, and was paid for as the client was told.
    (row,) = live.calls()
    assert text and row["status"] == "ok" and row["stream"]
    assert usage == {"input": row["input_tokens"], "output": row["output_tokens"]} and usage["output"] > 0
    assert row["cost_nanos"] and row["cost_nanos"] == _priced(live, row)
    # The headers went before anything said who would answer: the call's id and no provider, model or cache.
    assert tap.headers["x-ax-request-id"] == row["request_id"]
    assert tap.headers["content-type"].startswith("text/event-stream")
    assert not {"x-ax-provider", "x-ax-model", "x-ax-cache"} & set(tap.headers)


def test_an_anthropic_answer_opening_with_a_web_search_keeps_its_message_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    go = threading.Event()

    async def events() -> AsyncIterator[bytes]:
        def event(data: dict[str, Any]) -> bytes:
            return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()

        yield event({"type": "message_start", "message": {
            "id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 9, "cache_read_input_tokens": 5, "output_tokens": 1}}})
        yield event({"type": "ping"})
        yield event({"type": "content_block_start", "index": 0, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}})
        yield event({"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": '{"query": "tides"}'}})
        yield event({"type": "content_block_stop", "index": 0})
        await _released(go)  # the search: Anthropic's events are held back until the answer's first words
        yield event({"type": "content_block_start", "index": 1, "content_block": {
            "type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}})
        yield event({"type": "content_block_stop", "index": 1})
        yield event({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}})
        yield event({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "The Moon."}})
        yield event({"type": "content_block_stop", "index": 2})
        yield event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                     "usage": {"output_tokens": 4}})
        yield event({"type": "message_stop"})

    monkeypatch.setenv(KEY_ENV, "sk-upstream")
    live = mock_upstreams(lambda request: httpx.Response(
        200, content=events(), headers={"content-type": "text/event-stream"}))
    try:
        live.app.state.settings.server.stream_keepalive_s = 0.2
        tap = Tap(go)
        claude = anthropic.Anthropic(base_url=live.url, api_key="x", max_retries=0,
                                     http_client=httpx2.Client(transport=tap))
        with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=300, messages=TIDES,  # type: ignore[arg-type]
                                    tools=[{"type": "web_search_20250305", "name": "web_search"}]) as stream:
            message = stream.get_final_message()
    finally:
        live.stop()
    assert tap.body.startswith(KEEP_ALIVE)
    # message_start is the upstream's, as without keep-alives: its model, and the prompt's tokens and cache reads.
    assert message.model == "claude-sonnet-4-5-20250929"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (9, 5)
    assert [b.type for b in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert tap.body.count(b"event: message_start") == 1


# -- fallback after the commit --------------------------------------------------------------------------------


@pytest.mark.parametrize("wire", FORMATS)
def test_a_deployment_failing_after_the_keep_alives_began_falls_back(live: LiveServer, wire: str) -> None:
    slow = SlowStart(live.gateway, failing=1)
    tap = Tap(slow.go)
    text, usage = _ask(live, wire, tap, "gpt-4o-mini")  # served by openai and azure
    assert KEEP_ALIVE in tap.body
    (row,) = live.calls()
    first, second = slow.called
    assert first != second
    assert (row["status"], row["provider"], row["attempts"]) == ("ok", second, 2)
    assert text and usage == {"input": row["input_tokens"], "output": row["output_tokens"]}
    # One answer, the second deployment's: the first had sent nothing.
    opening = {"chat": b'"role":"assistant"', "messages": b"event: message_start",
               "responses": b"event: response.created"}[wire]
    assert tap.body.count(opening) == 1


@pytest.mark.parametrize("wire", FORMATS)
def test_every_deployment_failing_after_the_keep_alives_began_is_an_error_the_sdk_raises(
        live: LiveServer, wire: str) -> None:
    slow = SlowStart(live.gateway, failing=99)
    tap = Tap(slow.go)
    error = anthropic.APIError if wire == "messages" else openai.APIError
    with pytest.raises(error) as info:
        _ask(live, wire, tap, "gpt-4o-mini")
    assert "overloaded" in str(info.value)
    assert tap.status == 200 and KEEP_ALIVE in tap.body
    assert len(slow.called) == 2
    (row,) = live.calls()
    assert (row["status"], row["error_class"], row["attempts"]) == ("error", "ProviderServerError", 2)
    # Nothing but keep-alives and the error event: no answer was begun.
    events = [block for block in tap.body.split(b"\n\n") if block and not block.startswith(b":")]
    assert [b for b in events if b != b"data: [DONE]"] == [events[0]] and b"error" in events[0]


# -- the client going away, the server stopping ---------------------------------------------------------------


def _open_stream(live: LiveServer) -> tuple[httpx.Client, httpx.Response, Iterator[bytes]]:
    """A raw streamed chat call, read up to its first keep-alive."""
    client = httpx.Client(timeout=30)
    request = client.build_request("POST", f"{live.url}/v1/chat/completions", json={
        "model": "gpt-4o-mini", "stream": True, "messages": TIDES})
    response = client.send(request, stream=True)
    parts = response.iter_raw()
    seen = b""
    for part in parts:
        seen += part
        if KEEP_ALIVE in seen:
            break
    assert response.status_code == 200 and seen.startswith(KEEP_ALIVE)
    return client, response, parts


def test_a_client_leaving_during_the_keep_alives_cancels_the_upstream_call(live: LiveServer) -> None:
    records = _records(live)
    slow = SlowStart(live.gateway)  # never released
    client, response, _ = _open_stream(live)
    response.close()
    client.close()
    _until(lambda: bool(records))
    (rec,) = records
    assert (rec.status, rec.stream) == ("cancelled", True)
    assert slow.cancelled == 1, "the upstream call was cancelled"
    _until(lambda: live.app.state.inflight == 0)
    assert live.app.state.inflight == 0


def test_a_stop_during_the_keep_alives_lets_the_answer_finish() -> None:
    live = LiveServer(fleet_settings(stream_keepalive_s=0.2), no_auth=True).start()
    records = _records(live)
    slow = SlowStart(live.gateway)
    client, _, parts = _open_stream(live)
    live.server.should_exit = True

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", live.port), timeout=1).close()
        except OSError:
            return True
        return False

    _until(refused)  # stopping: it takes no new connections
    assert refused()
    slow.go.set()
    rest = b"".join(parts)
    client.close()
    live.thread.join(30)
    assert not live.thread.is_alive()
    assert rest.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in rest
    (rec,) = records
    assert rec.status == "ok" and rec.output_tokens > 0


# -- a fast first chunk -----------------------------------------------------------------------------------------


_BODIES = {
    "/v1/chat/completions": {"model": "gemini-2.5-flash", "stream": True, "messages": TIDES,
                             "stream_options": {"include_usage": True}},
    "/v1/messages": {"model": "claude-haiku-4-5", "stream": True, "max_tokens": 300, "messages": TIDES},
    "/v1/responses": {"model": "gemini-2.5-flash", "stream": True, "input": "Explain how tides work"},
}
#: What differs between two runs of the same call: its ids and timestamps.
_VARYING = re.compile(rb'((?:chatcmpl-ax|msg_ax|resp_ax|msg_|rs_|fc_)[0-9a-zA-Z]+|"created(?:_at)?":\d+)')


def _streams(settings_keepalive: float) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    """Status, headers and bytes of a fast stream of each wire format, from a fresh server (models one
    deployment serves, so both servers route alike; the cache left out, as they share the store)."""
    live = LiveServer(fleet_settings(stream_keepalive_s=settings_keepalive), no_auth=True).start()
    try:
        answers = []
        for path, body in _BODIES.items():
            with httpx.stream("POST", live.url + path, json=body, headers={"X-Ax-Cache": "no-store"},
                              timeout=30) as r:
                raw = b"".join(r.iter_raw())
            headers = [(k, v) for k, v in r.headers.items() if k not in ("date", "x-ax-request-id", "request-id",
                                                                         "x-request-id")]
            answers.append((r.status_code, headers, _VARYING.sub(b"ID", raw)))
        return answers
    finally:
        live.stop()


def test_a_fast_first_chunk_is_sent_as_without_keep_alives() -> None:
    default = fleet_settings().server.stream_keepalive_s
    assert default >= 5
    with_keep_alives, without = _streams(default), _streams(0)
    assert with_keep_alives == without
    for status, headers, raw in with_keep_alives:
        assert status == 200 and KEEP_ALIVE not in raw
        assert {"x-ax-provider", "x-ax-model", "x-ax-cache"} <= dict(headers).keys()


@pytest.mark.parametrize("value", ["0.001", "-1", "4000"])
def test_a_keepalive_pace_that_would_flood_or_never_come_is_refused_naming_the_key(value: str) -> None:
    from axtui.config import parse_settings
    from axtui.errors import ConfigError

    with pytest.raises(ConfigError, match=r"line 2: server\.stream_keepalive_s"):
        parse_settings(f"[server]\nstream_keepalive_s = {value}\n", "config.toml")
    assert parse_settings("[server]\nstream_keepalive_s = 0\n").server.stream_keepalive_s == 0
