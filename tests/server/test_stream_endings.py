"""A stream that ends as the client's leaving is noticed keeps the outcome it had, recorded once.

uvicorn tells an app the client is gone (``http.disconnect``) as soon as
the response is complete, so the server notices a "disconnect" right after
every stream's last bytes, as well as when a client hangs up. Each request
is driven by hand on the server's loop (`Exchange`, which does what uvicorn
does), and an attempt that fails waits where its ending awaits I/O
(settling its deployment's rate-limit ticket, closing its upstream:
`Upstream`) until the test says, so the client leaves at an exact point.
A stream that failed this side is recorded once with its error, before
the client is told; one that completed, once as served. Either way every
budget reservation and rate-limit ticket is settled, the router counts no
attempt in flight, and nothing is left running.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from axtui.bus import CallRecorded
from axtui.cost.budgets import Scope, set_budget
from axtui.ports import Ticket
from axtui.server import wire
from axtui.server.anthropic_stream import MessageStreamEncoder
from axtui.server.keepalive import KEEP_ALIVE
from axtui.server.responses_stream import ResponseEvents
from axtui.types import CallRecord, ChatRequest, Chunk, Deployment

from ._live import LiveServer
from .conftest import fleet_settings
from .test_stream_keepalive_leaving import BODIES, Books, _serving, _until

ENCODERS: dict[str, Any] = {"/v1/chat/completions": wire.StreamEncoder, "/v1/messages": MessageStreamEncoder,
                            "/v1/responses": ResponseEvents}


class Exchange:
    """One request as uvicorn runs it: ``receive`` says the client is gone once it hung up or the response is
    complete; sends after the client hung up do nothing; ``stall_last`` makes the last send wait for it to."""

    def __init__(self, path: str, *, stall_last: bool = False) -> None:
        self.path = path
        self.body = json.dumps(BODIES[path]).encode()
        self.sent: list[dict[str, Any]] = []
        self.stall_last = stall_last
        self.stalled = asyncio.Event()
        self.told_gone = asyncio.Event()  # ``receive`` said the client is gone
        self._gone = asyncio.Event()
        self._hung_up = False
        self._read = False

    def hang_up(self) -> None:
        self._hung_up = True
        self._gone.set()

    async def receive(self) -> dict[str, Any]:
        if not self._read:
            self._read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._gone.wait()
        self.told_gone.set()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        last = message["type"] == "http.response.body" and not message.get("more_body", False)
        if last and self.stall_last:
            self.stalled.set()
            await self._gone.wait()
        if self._hung_up:
            return
        self.sent.append(dict(message))
        if last:
            self._gone.set()

    @property
    def received(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent)

    def scope(self, port: int) -> dict[str, Any]:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": self.path, "raw_path": self.path.encode(), "query_string": b"",
                "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", port),
                "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                            (b"content-length", str(len(self.body)).encode())]}


class Upstream:
    """Every stream of the server's providers, held before its first chunk until ``go`` when ``held``.

    An attempt that fails after its first chunk ends where the engine awaits I/O: settling its deployment's
    rate-limit ticket (a store or Redis write) and closing its upstream stream (an HTTP connection given
    back). Both wait here for ``release``; ``closing`` is set as the first begins, ``settled`` counts the
    deployments' tickets settled to the end.
    """

    def __init__(self, served: Served, *, held: bool = False) -> None:
        self.asked = asyncio.Event()
        self.go = asyncio.Event()
        self.closing = asyncio.Event()
        self.release = asyncio.Event()
        self.settled = 0
        if not held:
            self.go.set()
        gateway = served.live.gateway
        for provider in gateway.providers.values():
            provider.stream = self._wrapped(provider.stream)  # type: ignore[method-assign]
        settle = gateway.limiter.settle

        async def settling(ticket: Ticket, tokens: int) -> None:
            deployment = any(scope == "provider" for scope, _ in ticket.subjects)
            if deployment:
                self.closing.set()
                await self.release.wait()
            await settle(ticket, tokens)
            self.settled += deployment

        gateway.limiter.settle = settling  # type: ignore[method-assign]

    def _wrapped(self, stream: Callable[[ChatRequest, Deployment], AsyncIterator[Chunk]]) -> Any:
        async def wrapped(request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
            self.asked.set()
            await self.go.wait()
            ended = False
            try:
                async for chunk in stream(request, deployment):
                    yield chunk
                ended = True
            finally:
                if not ended:
                    self.closing.set()
                    await self.release.wait()

        return wrapped


class Served:
    """A started server (keep-alives after ``keepalive_s``), a hard budget and a rate limit on every provider so
    that every attempt reserves and takes a ticket, the `Books` of them, and the calls it records."""

    def __init__(self, keepalive_s: float = 60) -> None:
        settings = fleet_settings(stream_keepalive_s=keepalive_s)
        limits = {p.name: "100000000/minute" for p in settings.providers}
        settings = settings.model_copy(update={"ratelimit": settings.ratelimit.model_copy(
            update={"provider_tokens": limits})})
        self.live = LiveServer(settings, no_auth=True).start()
        gateway = self.live.gateway
        assert gateway.store is not None
        set_budget(gateway.store, Scope.parse("global"), "day", 10**12, hard=True, now=0)
        self.records: list[CallRecord] = []
        gateway.bus.subscribe(lambda e: self.records.append(e.record) if isinstance(e, CallRecorded) else None)
        self.books = Books(gateway)

    def run(self, exchange: Exchange, moves: Callable[[Exchange], Awaitable[None]]) -> None:
        """Serve ``exchange`` on the server's loop, ``moves(exchange)`` (the test's part) alongside; then until
        every call so far is settled, and no task of the server's is left."""
        live = self.live

        async def both() -> None:
            served = asyncio.ensure_future(live.app(exchange.scope(live.port), exchange.receive, exchange.send))
            await moves(exchange)
            await served
            await _until(lambda: self.books.square and live.app.state.inflight == 0 and not _serving(live.loop))

        asyncio.run_coroutine_threadsafe(both(), live.loop).result(30)

    def assert_settled(self) -> None:
        assert self.books.square, "a budget reservation or rate-limit ticket was kept"
        assert self.live.app.state.inflight == 0
        assert _serving(self.live.loop) == [], "a task of the call is left running"
        router: Any = self.live.gateway.router
        assert all(h.in_flight == 0 for h in router.health_snapshot()), "the router counts an attempt in flight"


@pytest.fixture
def unencodable(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Every wire format's encoder fails on the third chunk of a stream; the returned call starts the count over."""
    seen = [0]

    def failing(original: Any) -> Any:
        def encode(self: object, chunk: Chunk) -> bytes:
            seen[0] += 1
            if seen[0] == 3:
                raise TypeError("a chunk this side cannot encode")
            out: bytes = original(self, chunk)
            return out

        return encode

    for encoder in ENCODERS.values():
        monkeypatch.setattr(encoder, "encode", failing(encoder.encode))
    return lambda: seen.__setitem__(0, 0)


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing is logged at WARNING or above (a task's exception never retrieved, an ASGI error) but the internal
    errors the tests cause."""
    caplog.set_level(logging.WARNING)
    yield
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert [m for m in logged if m != "axtui.server.errors: internal error while serving a request"] == []


ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/messages": "messages", "/v1/responses": "responses"}
LEAVING = ["as the error event completes the response", "while the failure is being recorded",
           "after the keep-alives began", "while a slow client reads the error event"]


@pytest.mark.parametrize("moment", LEAVING)
def test_a_stream_failing_this_side_is_recorded_with_its_error_however_the_client_leaves(
        moment: str, unencodable: Callable[[], None], quiet: None) -> None:
    keepalive = moment == "after the keep-alives began"
    slow = moment == "while a slow client reads the error event"
    served = Served(0.1 if keepalive else 60)
    upstream = Upstream(served, held=keepalive)
    recorded_before_told: list[int] = []  # the calls recorded when a slow client's error event was sent

    async def moves(exchange: Exchange) -> None:
        if keepalive:
            await upstream.asked.wait()
            await _until(lambda: KEEP_ALIVE in exchange.received)
            upstream.go.set()
        if slow:
            await exchange.stalled.wait()
            recorded_before_told.append(len(served.records))
            exchange.hang_up()
            return
        await upstream.closing.wait()
        if moment == "while the failure is being recorded":
            exchange.hang_up()
            await exchange.told_gone.wait()
        upstream.release.set()

    try:
        for n, path in enumerate(ENCODERS, 1):
            unencodable()
            upstream.asked.clear()
            upstream.closing.clear()
            if keepalive:
                upstream.go.clear()
            if slow:
                upstream.release.set()  # nothing to wait for: the client is what is slow
            else:
                upstream.release.clear()
            exchange = Exchange(path, stall_last=slow)
            served.run(exchange, moves)
            assert len(served.records) == n, f"{path}: recorded {len(served.records) - n + 1} times"
            rec = served.records[-1]
            assert (rec.status, rec.error_class, rec.endpoint) == ("error", "TypeError", ENDPOINTS[path])
            assert rec.output_tokens > 0, "what reached the client is paid for"
            assert upstream.settled == n, f"{path}: the deployment's rate-limit ticket was left unsettled"
            if slow:
                # Recorded (its upstream closed, all settled) before the client has read of the failure.
                assert recorded_before_told[-1] == n, f"{path}: recorded only once the client read the error"
            elif moment != "while the failure is being recorded":
                last = exchange.sent[-1]
                assert not last.get("more_body", False) and b"error" in last["body"], (path, last)
                assert b"cannot encode" not in exchange.received  # the client is told an internal error
            served.assert_settled()
    finally:
        served.live.stop()


def test_a_stream_that_completed_is_recorded_once_as_served_when_the_client_leaves_as_it_ends(
        quiet: None) -> None:
    # Not a race (the call is recorded before its last bytes are sent): pinned, as the failing stream's twin.
    served = Served()

    async def moves(exchange: Exchange) -> None:
        await exchange.stalled.wait()
        exchange.hang_up()

    try:
        for n, path in enumerate(ENCODERS, 1):
            served.run(Exchange(path, stall_last=True), moves)
            assert [r.status for r in served.records] == ["ok"] * n, path
            assert served.records[-1].http_status == 200 and served.records[-1].output_tokens > 0
            served.assert_settled()
    finally:
        served.live.stop()
