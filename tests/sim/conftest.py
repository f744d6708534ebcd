"""Fixtures of the simulated fleet's tests: providers on a fake clock, a live server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.providers.sim import Profile, SimProvider, build_app


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when something sleeps on it."""
    return FakeClock()


@pytest.fixture
def make_sim(clock: FakeClock) -> Callable[..., SimProvider]:
    """Build a `SimProvider` on the fake clock: ``make_sim("openai", profile="fast", seed=1)``."""

    def make(name: str = "openai", *, profile: str | Profile = "demo", seed: int = 0, **config: Any) -> SimProvider:
        return SimProvider(ProviderConfig(name=name, kind="sim", **config), clock=clock, seed=seed, profile=profile)

    return make


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start a sim server on 127.0.0.1; returns its base URL. Stopped after the test."""
    servers: list[TestServer] = []

    async def start(profile: str | Profile = "fast", *, seed: int = 0) -> str:
        server = TestServer(build_app(profile, seed=seed), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def sim_url(serve: Callable[..., Awaitable[str]]) -> str:
    """A running server of the ``fast`` profile."""
    return await serve("fast")


@pytest.fixture
async def http(sim_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client pointed at the ``fast`` server."""
    async with httpx.AsyncClient(base_url=sim_url, timeout=10) as client:
        yield client
