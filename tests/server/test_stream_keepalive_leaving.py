"""A client leaving a slow stream at any moment: the call is cancelled, recorded once, and leaves nothing held.

Each request is driven by hand on the server's loop (`Exchange`: its
``receive`` says the client left when told to, its ``send`` can stall like
a client that stopped reading), so the client leaves at an exact point:
before the headers, while they or a keep-alive are being sent, between
keep-alives, and just as the first chunk comes. Then the call is recorded
once, as cancelled; its budget reservation and rate-limit ticket are
settled; the server and the router count nothing in flight; nothing is
logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from axtui.bus import CallRecorded
from axtui.cost.budgets import Scope, set_budget
from axtui.engine.gateway import Gateway
from axtui.server.keepalive import KEEP_ALIVE
from axtui.types import CallRecord, ChatRequest, Chunk, Deployment

from ._live import LiveServer
from .conftest import fleet_settings

TIDES = [{"role": "user", "content": "Explain how tides work"}]
BODIES = {
    "/v1/chat/completions": {"model": "gpt-4o-mini", "stream": True, "messages": TIDES},
    "/v1/messages": {"model": "claude-haiku-4-5", "stream": True, "max_tokens": 300, "messages": TIDES},
    "/v1/responses": {"model": "gpt-4o-mini", "stream": True, "input": "Explain how tides work"},
}


async def _until(done: Any) -> None:
    """On the server's loop: until ``done()`` (at most 10 s; the assertions after it say what did not happen)."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0.01)


def _serving(loop: asyncio.AbstractEventLoop) -> list[str]:
    """The tasks of ax's server on ``loop`` (a request's keep-alives, its watch for the client leaving)."""
    names = []
    for task in asyncio.all_tasks(loop):
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and "/axtui/server/" in code.co_filename.replace("\\", "/"):
            names.append(code.co_qualname)
    return names


class Held:
    """Holds every stream of ``gateway``'s providers before its first chunk until ``go`` (on the server's loop)."""

    def __init__(self, gateway: Gateway) -> None:
        self.asked = asyncio.Event()
        self.go = asyncio.Event()
        self.answering = asyncio.Event()  # a first chunk is on its way to the client
        self.cancelled = 0  # streams cancelled while held
        for provider in gateway.providers.values():
            provider.stream = self._held(provider.stream)  # type: ignore[method-assign]

    def _held(self, stream: Any) -> Any:
        async def held(request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
            self.asked.set()
            try:
                await self.go.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            async for chunk in stream(request, deployment):
                self.answering.set()
                yield chunk

        return held


class Books:
    """The budget reservations and rate-limit tickets ``gateway`` takes, and whether each was given back."""

    def __init__(self, gateway: Gateway) -> None:
        self.reservations: list[Any] = []
        self.tickets = 0
        self.settled = 0
        budgets, limiter = gateway.budgets, gateway.limiter
        reserve, admit, settle = budgets.reserve, limiter.admit, limiter.settle

        async def reserving(*args: Any) -> Any:
            self.reservations.append(await reserve(*args))
            return self.reservations[-1]

        async def admitting(*args: Any) -> Any:
            ticket = await admit(*args)
            self.tickets += 1
            return ticket

        async def settling(*args: Any) -> None:
            self.settled += 1
            await settle(*args)

        budgets.reserve = reserving  # type: ignore[method-assign,assignment]
        limiter.admit, limiter.settle = admitting, settling  # type: ignore[method-assign,assignment]

    @property
    def square(self) -> bool:
        """Every reservation (there was one) settled, every ticket settled."""
        return (bool(self.reservations) and all(r.done for r in self.reservations)
                and self.tickets == self.settled > 0)


class Exchange:
    """One request as an ASGI server would run it; ``stall`` makes the first send holding those bytes wait."""

    def __init__(self, path: str, stall: bytes | None = None) -> None:
        self.path = path
        self.body = json.dumps(BODIES[path]).encode()
        self.sent: list[dict[str, Any]] = []
        self.left = asyncio.Event()
        self.stall = stall
        self.stalled = asyncio.Event()
        self._read = False

    @property
    def received(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent)

    async def receive(self) -> dict[str, Any]:
        if not self._read:
            self._read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        # As uvicorn: a send waits while the client reads nothing, and does nothing once it left.
        shown = b"START" if message["type"] == "http.response.start" else message.get("body", b"")
        if self.stall is not None and self.stall in shown:
            self.stall = None
            self.stalled.set()
            await self.left.wait()
        if not self.left.is_set():
            self.sent.append(dict(message))

    def scope(self, port: int) -> dict[str, Any]:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": self.path, "raw_path": self.path.encode(), "query_string": b"",
                "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", port),
                "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                            (b"content-length", str(len(self.body)).encode())]}


class Watched:
    """A started server (keep-alives after ``keepalive_s``) with its providers `Held`, its `Books` and records."""

    def __init__(self, keepalive_s: float) -> None:
        self.live = LiveServer(fleet_settings(stream_keepalive_s=keepalive_s), no_auth=True).start()
        gateway = self.live.gateway
        assert gateway.store is not None
        set_budget(gateway.store, Scope.parse("global"), "day", 10**12, hard=True, now=time.time())
        self.records: list[CallRecord] = []
        gateway.bus.subscribe(lambda e: self.records.append(e.record) if isinstance(e, CallRecorded) else None)
        self.books = Books(gateway)
        self.held = Held(gateway)

    def run(self, work: Any) -> None:
        asyncio.run_coroutine_threadsafe(work, self.live.loop).result(30)

    def settled(self) -> bool:
        return bool(self.records) and self.books.square and self.live.app.state.inflight == 0

    def assert_left_cleanly(self, n: int = 1) -> None:
        loop = self.live.loop
        self.run(_until(lambda: len(self.records) >= n and self.settled() and not _serving(loop)))
        assert [r.status for r in self.records] == ["cancelled"] * n
        assert _serving(loop) == [], "a task of the call is left running"
        assert self.books.square, "a budget reservation or rate-limit ticket was kept"
        assert self.live.app.state.inflight == 0
        router: Any = self.live.gateway.router
        assert all(h.in_flight == 0 for h in router.health_snapshot()), "the router counts an attempt in flight"


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """What was logged at WARNING or above: a task's exception never retrieved, an ASGI error."""
    caplog.set_level(logging.WARNING)
    return lambda: [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


MOMENTS = ["before the headers", "while the headers are sent", "between keep-alives", "while a keep-alive is sent",
           "as the first chunk comes"]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_client_leaving_a_slow_stream_at_any_moment_leaves_nothing_behind(
        moment: str, logged: Callable[[], list[str]]) -> None:
    # Before the headers: the wait never runs out; else it does at once.
    watched = Watched(60 if moment == "before the headers" else 0.1)
    live, held = watched.live, watched.held
    try:
        stall = {"while the headers are sent": b"START", "while a keep-alive is sent": KEEP_ALIVE,
                 "as the first chunk comes": KEEP_ALIVE}.get(moment)
        exchange = Exchange("/v1/chat/completions", stall)

        async def leave() -> None:
            served = asyncio.ensure_future(live.app(exchange.scope(live.port), exchange.receive, exchange.send))
            await held.asked.wait()
            if moment == "between keep-alives":
                await _until(lambda: KEEP_ALIVE in exchange.received)
            elif stall is not None:
                await exchange.stalled.wait()
            if moment == "as the first chunk comes":
                held.go.set()  # the first chunk waits for the keep-alive being sent
                await held.answering.wait()
            exchange.left.set()
            await served

        watched.run(leave())
        watched.assert_left_cleanly()
        if moment == "as the first chunk comes":
            assert not any(b"data:" in m.get("body", b"") for m in exchange.sent)
        else:
            assert held.cancelled == 1, "the upstream call was cancelled"
        assert logged() == []
    finally:
        live.stop()


def test_a_connection_reset_during_the_keep_alives_cancels_each_wire_format(logged: Callable[[], list[str]]) -> None:
    watched = Watched(0.1)
    live, held = watched.live, watched.held
    try:
        async def reset(path: str) -> None:
            held.asked.clear()
            body = json.dumps(BODIES[path]).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
            writer.write(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
            await held.asked.wait()
            await reader.readuntil(KEEP_ALIVE)
            # SO_LINGER 0: the close sends a reset, as a client killed or a proxy giving up does.
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

        for n, path in enumerate(BODIES, 1):
            watched.run(reset(path))
            watched.assert_left_cleanly(n)
        assert held.cancelled == 3
        assert logged() == []
    finally:
        live.stop()
