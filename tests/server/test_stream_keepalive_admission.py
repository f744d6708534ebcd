"""A stream's keep-alives never stand in for what answers before any deployment is asked.

A rate limit or a budget that refuses a call, or the cache that answers
it, can be slow (a store under load, a lock held elsewhere) and outlast
``server.stream_keepalive_s``; their answers still come with their own
status and headers, never as a 200 with the error as an event or without
``x-ax-cache``. Each is held (`Slowed`) until a stream that began after
it shows its first keep-alive, so it has outlasted the wait without any
test depending on how long anything takes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from axtui.config import Settings
from axtui.cost.budgets import Scope, set_budget
from axtui.server.keepalive import KEEP_ALIVE, KeepAlive

from ._live import LiveServer
from .conftest import fleet_settings
from .test_stream_keepalive import SlowStart, _open_stream, _released

MOON = {"model": "gpt-4o-mini", "stream": True, "user": "bob",
        "messages": [{"role": "user", "content": "Why is the Moon grey?"}]}


class Slowed:
    """Once ``armed``, the next call of ``owner.name`` (an async method of the server's gateway) waits for ``go``."""

    def __init__(self, owner: Any, name: str) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.go = threading.Event()
        inner = getattr(owner, name)

        async def slowed(*args: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.armed = False
                self.entered.set()
                await _released(self.go)
            return await inner(*args, **kwargs)

        setattr(owner, name, slowed)


def _settings(step: str) -> Settings:
    data = fleet_settings(stream_keepalive_s=0.2).model_dump()
    if step == "rate limit":
        data["ratelimit"] = {"user_requests": "1/minute"}
    return Settings.model_validate(data)


def _ask(url: str, body: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as r:
        return r.status_code, r.headers, b"".join(r.iter_raw())


@pytest.fixture(params=["rate limit", "budget", "cache"])
def step(request: pytest.FixtureRequest) -> Iterator[tuple[str, LiveServer]]:
    """A gateway where bob's next call is refused by a rate limit or a budget, or answered from the cache."""
    live = LiveServer(_settings(request.param), no_auth=True).start()
    try:
        if request.param == "budget":
            assert live.gateway.store is not None
            set_budget(live.gateway.store, Scope.parse("user:bob"), "day", 1, hard=True, now=time.time())
        else:  # the minute's one call, whose answer the cache keeps
            status, _, _ = _ask(live.url, MOON)
            assert status == 200
        yield request.param, live
    finally:
        live.stop()


def test_a_refusal_or_a_cached_answer_slower_than_the_wait_keeps_its_status_and_headers(
        step: tuple[str, LiveServer]) -> None:
    kind, live = step
    gateway = live.gateway
    owner, name = {"rate limit": (gateway.limiter, "admit"), "budget": (gateway.budgets, "reserve"),
                   "cache": (gateway.cache, "lookup")}[kind]
    slowed = Slowed(owner, name)
    slow = SlowStart(gateway)
    slowed.armed = True
    with ThreadPoolExecutor(1) as pool:
        bob = pool.submit(_ask, live.url, MOON)
        assert slowed.entered.wait(10), f"bob's call never reached the {kind}"
        # A stream begun after bob's shows its first keep-alive: bob's call has waited longer than that.
        client, _, rest = _open_stream(live)
        slowed.go.set()
        status, headers, body = bob.result(30)
    slow.go.set()
    b"".join(rest)
    client.close()
    assert KEEP_ALIVE not in body
    if kind == "cache":
        assert status == 200 and headers["x-ax-cache"] == "exact" and headers["x-ax-provider"]
        assert body.endswith(b"data: [DONE]\n\n")
        return
    assert status == (429 if kind == "rate limit" else 402)
    error = json.loads(body)["error"]
    assert error["code"] == ("rate_limit_exceeded" if kind == "rate limit" else "budget_exceeded"), error
    if kind == "rate limit":
        assert headers["retry-after"] and headers["x-ratelimit-limit-requests"] == "1"


async def test_a_first_chunk_coming_just_as_the_headers_were_to_go_goes_with_its_own() -> None:
    """The wait ran out while the call was being admitted: asked, a deployment answers at once, or a moment later."""
    sent: dict[str, list[Any]] = {"at once": [], "a moment later": []}
    for when, messages in sent.items():
        async def send(message: Any, messages: list[Any] = messages) -> None:
            messages.append(message)

        keepalive = KeepAlive(send, list, 0.01)
        await asyncio.sleep(0.05)  # past the wait (its timer is due first)
        keepalive.upstream()
        if when == "a moment later":
            await asyncio.sleep(0)
        assert await keepalive.stop() == (when == "a moment later")
    assert sent["at once"] == []
    assert [m["type"] for m in sent["a moment later"]] == ["http.response.start", "http.response.body"]
    assert sent["a moment later"][1]["body"] == KEEP_ALIVE
