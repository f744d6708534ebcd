"""The adapters' network path (aiohttp, no test transport) against a local server.

A small aiohttp server on 127.0.0.1 plays the upstream: the first path
segment of the provider's base URL picks how it behaves (``/ok/v1``,
``/cut/v1``, ``/slow/v1``…), and it remembers every request it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from axtui.config import ProviderConfig
from axtui.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers._aiohttp import AiohttpExchange
from axtui.providers.gemini import GeminiProvider
from axtui.providers.openai import OpenAIProvider
from axtui.types import ChatRequest, Chunk, Deployment

from .fake_upstream import payload, sse_text

KEY = "sk-aiohttp-path-0123456789abcdef"
DEPLOYMENT = Deployment(provider="acme", model="smart", upstream_model="gpt-4o-mini")
STREAM = sse_text("openai_stream.sse").encode()


@dataclass
class Seen:
    """What the server saw, and the switches its handlers wait on."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    client_left: asyncio.Event = field(default_factory=asyncio.Event)


async def _write_slowly(request: web.Request, body: bytes, *, piece: int = 37) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    # Pieces that split events and lines, as a network does.
    for start in range(0, len(body), piece):
        await response.write(body[start : start + piece])
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def _app(seen: Seen) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.requests.append({"path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "body": body})
        mode = request.match_info["mode"]
        limits = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
                  "x-ratelimit-reset-requests": "120ms"}
        if mode == "ok":
            return web.json_response(payload("openai_chat.json"), headers=limits)
        if mode == "stream":
            return await _write_slowly(request, STREAM)
        if mode == "gemini":
            return await _write_slowly(request, sse_text("gemini_stream.sse").encode())
        if mode == "cut":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(STREAM[: STREAM.index(b"data:", STREAM.index("ça va".encode()))])
            assert request.transport is not None
            request.transport.close()
            return response
        if mode == "endless":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            event = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"more "}}]}\n\n'
            try:
                while not seen.release.is_set():
                    await response.write(event)
                    await asyncio.sleep(0.005)
            except (ConnectionError, asyncio.CancelledError):
                # aiohttp cancels a handler whose client went away (or its write fails).
                seen.client_left.set()
                raise
            return response
        if mode == "slow":
            await seen.release.wait()
            return web.json_response(payload("openai_chat.json"))
        if mode == "garbage":
            return web.Response(status=200, text="<html>upstream proxy error</html>", content_type="text/html")
        if mode == "badgzip":
            return web.Response(body=b"this is not gzip", headers={"Content-Encoding": "gzip",
                                                                   "Content-Type": "application/json"})
        if mode == "gzip":
            return web.Response(body=gzip.compress(json.dumps(payload("openai_chat.json")).encode()),
                                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        if mode == "limited":
            error = {"error": {"message": "Rate limit reached for requests", "type": "requests",
                               "code": "rate_limit_exceeded"}}
            return web.json_response(error, status=429, headers={**limits, "Retry-After": "7"})
        if mode == "echo-key":
            error = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                               "code": "invalid_api_key"}}
            return web.json_response(error, status=401)
        if mode == "hangup":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if mode == "half":
            response = web.StreamResponse(headers={"Content-Length": "400", "Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(b'{"id": "chatcmpl-1", "choices": [')
            assert request.transport is not None
            request.transport.close()
            return response
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{mode}/{tail:.*}", handle)
    return app


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


@pytest.fixture
async def seen() -> Seen:
    """The server's memory (made inside the test's loop)."""
    return Seen()


@pytest.fixture
async def server(seen: Seen) -> AsyncIterator[str]:
    """The upstream's root URL."""
    test_server = TestServer(_app(seen), host="127.0.0.1")
    await test_server.start_server()
    yield str(test_server.make_url("")).rstrip("/")
    seen.release.set()
    await test_server.close()


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Any]]:
    """Build an adapter on the network path (no transport); closed after the test."""
    made: list[Any] = []

    def build(base_url: str, cls: type[Any] = OpenAIProvider, **config: Any) -> Any:
        provider = cls(ProviderConfig(name="acme", kind=cls.kind, base_url=base_url,
                                      api_key_env=f"{cls.kind.upper()}_API_KEY", **config))
        assert provider._transport is None
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


def _request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]} | fields)


async def _collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


def _acquired(provider: Any) -> int:
    exchange = provider.exchange
    assert isinstance(exchange, AiohttpExchange)
    # aiohttp has no public count of checked-out connections.
    return len(exchange.session.connector._acquired)  # type: ignore[union-attr]


async def test_plain_answer_sends_headers_and_learns_limits(
    server: str, seen: Seen, make: Callable[..., Any]
) -> None:
    provider = make(server + "/ok/v1", headers={"X-Team": "search"})

    answer = await provider.chat(_request(temperature=0.5), DEPLOYMENT)

    assert answer.content == "Hello! How can I assist you today?"
    assert answer.usage.input_tokens > 0 and answer.provider == "acme"
    sent = seen.requests[-1]
    assert sent["path"] == "/ok/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["X-Team"] == "search"
    assert sent["headers"]["Content-Type"] == "application/json"
    body = json.loads(sent["body"])
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.5
    assert provider.upstream_limits.limit_requests == 500
    assert provider.upstream_limits.remaining_requests == 499
    assert provider.upstream_limits.reset_requests_s == pytest.approx(0.12)
    await provider.chat(_request(), DEPLOYMENT)
    assert _acquired(provider) == 0, "a read answer gives its connection back to the pool"


async def test_gzip_answer_is_decoded(server: str, make: Callable[..., Any]) -> None:
    answer = await make(server + "/gzip/v1").chat(_request(), DEPLOYMENT)
    assert answer.content == "Hello! How can I assist you today?"


async def test_streamed_answer(server: str, seen: Seen, make: Callable[..., Any]) -> None:
    provider = make(server + "/stream/v1")

    chunks = await _collect(provider.stream(_request(stream=True), DEPLOYMENT))

    assert "".join(c.delta for c in chunks) == "Hello there, ça va?"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].input_tokens == 1200 and usage[0].cached_input_tokens == 1024
    assert json.loads(seen.requests[-1]["body"])["stream_options"] == {"include_usage": True}
    assert _acquired(provider) == 0


async def test_stream_with_query_parameters(server: str, seen: Seen, make: Callable[..., Any]) -> None:
    provider = make(server + "/gemini/v1beta", GeminiProvider)
    deployment = Deployment(provider="acme", model="flash", upstream_model="gemini-2.5-flash")

    chunks = await _collect(provider.stream(_request(stream=True), deployment))

    assert "".join(c.delta for c in chunks) == "The sky is blue."
    sent = seen.requests[-1]
    assert sent["path"] == "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent["query"] == {"alt": "sse"}
    assert sent["headers"]["x-goog-api-key"] == KEY


async def test_stream_cut_midway_is_interrupted(server: str, make: Callable[..., Any]) -> None:
    provider = make(server + "/cut/v1")
    received: list[Chunk] = []

    with pytest.raises(StreamInterrupted, match=r"\[DONE\]") as caught:
        async for chunk in provider.stream(_request(stream=True), DEPLOYMENT):
            received.append(chunk)

    assert "".join(c.delta for c in received) == "Hello there, ça va?"
    assert not any(c.usage for c in received)
    assert "'acme'" in caught.value.message
    assert _acquired(provider) == 0


async def test_stream_closed_early_releases_its_connection(
    server: str, seen: Seen, make: Callable[..., Any]
) -> None:
    provider = make(server + "/endless/v1")

    async with contextlib.aclosing(provider.stream(_request(stream=True), DEPLOYMENT)) as chunks:
        async for chunk in chunks:
            assert chunk.delta == "more "
            assert _acquired(provider) == 1
            break

    assert _acquired(provider) == 0
    # The upstream notices the caller left and stops generating.
    await asyncio.wait_for(seen.client_left.wait(), 10)


async def test_connection_refused_names_the_base_url(make: Callable[..., Any], free_port: int) -> None:
    base_url = f"http://127.0.0.1:{free_port}/v1"
    provider = make(base_url)

    with pytest.raises(ProviderConnectionError, match="cannot reach") as caught:
        await provider.chat(_request(), DEPLOYMENT)
    assert base_url in caught.value.message
    with pytest.raises(ProviderConnectionError, match="cannot reach"):
        await _collect(provider.stream(_request(stream=True), DEPLOYMENT))


async def test_slow_server_times_out(server: str, make: Callable[..., Any]) -> None:
    provider = make(server + "/slow/v1", timeout_s=0.05)

    with pytest.raises(ProviderTimeout, match=r"within 0\.05s"):
        await provider.chat(_request(), DEPLOYMENT)
    with pytest.raises(ProviderTimeout):
        await _collect(provider.stream(_request(stream=True), DEPLOYMENT))


async def test_non_json_body_is_malformed(server: str, make: Callable[..., Any]) -> None:
    with pytest.raises(MalformedResponse, match="not a JSON object") as caught:
        await make(server + "/garbage/v1").chat(_request(), DEPLOYMENT)
    assert "upstream proxy error" in caught.value.message


async def test_body_with_a_bad_encoding_is_malformed(server: str, make: Callable[..., Any]) -> None:
    with pytest.raises(MalformedResponse, match="could not be decoded"):
        await make(server + "/badgzip/v1").chat(_request(), DEPLOYMENT)


async def test_rate_limited_with_retry_after(server: str, make: Callable[..., Any]) -> None:
    provider = make(server + "/limited/v1")

    with pytest.raises(ProviderRateLimited) as caught:
        await provider.chat(_request(), DEPLOYMENT)
    assert caught.value.retry_after == 7.0
    assert caught.value.http_status == 429
    assert provider.upstream_limits.remaining_requests == 499
    with pytest.raises(ProviderRateLimited) as streamed:
        await _collect(provider.stream(_request(stream=True), DEPLOYMENT))
    assert streamed.value.retry_after == 7.0
    assert _acquired(provider) == 0


async def test_connection_dropped_before_or_during_the_answer(server: str, make: Callable[..., Any]) -> None:
    with pytest.raises(ProviderConnectionError, match="broke before the answer was complete"):
        await make(server + "/hangup/v1").chat(_request(), DEPLOYMENT)
    with pytest.raises(ProviderConnectionError, match="broke before the answer was complete"):
        await make(server + "/half/v1").chat(_request(), DEPLOYMENT)


async def test_the_key_never_appears_in_errors(server: str, make: Callable[..., Any]) -> None:
    failures: list[Callable[[], Awaitable[Any]]] = [
        lambda: make(server + "/echo-key/v1").chat(_request(), DEPLOYMENT),
        lambda: _collect(make(server + "/echo-key/v1").stream(_request(stream=True), DEPLOYMENT)),
        lambda: make(server + "/limited/v1").chat(_request(), DEPLOYMENT),
        lambda: _collect(make(server + "/cut/v1").stream(_request(stream=True), DEPLOYMENT)),
        lambda: make(server + "/slow/v1", timeout_s=0.05).chat(_request(), DEPLOYMENT),
        lambda: make(server + "/garbage/v1").chat(_request(), DEPLOYMENT),
        lambda: make("http://127.0.0.1:9/v1").chat(_request(), DEPLOYMENT),
    ]
    kinds = set()
    for fail in failures:
        with pytest.raises(ProviderError) as caught:
            await fail()
        kinds.add(type(caught.value))
        assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)
        cause: BaseException | None = caught.value
        while cause is not None:
            assert KEY not in str(cause)
            cause = cause.__cause__
    assert ProviderAuthError in kinds and StreamInterrupted in kinds and ProviderTimeout in kinds
