"""Fixtures: `ax sim serve` over real HTTP, and a gateway whose OpenAI, Anthropic and Gemini adapters call it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from axtui.server.keys import create_key
from axtui.store import Store

from .._live import LiveServer
from ._sim_upstream import KEY_ENV, SimUpstream, mock_upstreams, upstream_settings


@pytest.fixture(scope="module")
def sim_upstream() -> Iterator[str]:
    """`ax sim serve` (profile fast) on 127.0.0.1 for a whole test module; its base URL."""
    sim = SimUpstream().start()
    yield sim.url
    sim.stop()


@pytest.fixture
def over_sim(sim_upstream: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A gateway needing keys, its providers real adapters pointed at the sim server."""
    monkeypatch.setenv(KEY_ENV, "sk-sim-upstream")
    server = LiveServer(upstream_settings(sim_upstream)).start()
    yield server
    server.stop()


@pytest.fixture
def over_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any], LiveServer]]:
    """``over_mock(handler)``: a started gateway (no keys) whose Anthropic and OpenAI providers answer through
    an `httpx.MockTransport` calling ``handler`` (see `mock_upstreams`); stopped after the test."""
    monkeypatch.setenv(KEY_ENV, "sk-upstream")
    started: list[LiveServer] = []

    def serve(handler: Any) -> LiveServer:
        started.append(mock_upstreams(handler))
        return started[-1]

    yield serve
    for server in started:
        server.stop()


@pytest.fixture
def bob_key(store: Store) -> str:
    """A key of user bob."""
    raw, _ = create_key(store, "bob", name="tests")
    return raw
