"""Fixtures: a live gateway on 127.0.0.1 over the in-process fast fleet, and keys for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from axtui.config import Settings
from axtui.server.keys import create_key
from axtui.store import Store

from ._live import ADMIN, LiveServer, fast_fleet


def fleet_settings(**server: Any) -> Settings:
    """The fast fleet, with an embeddings deployment, and keys re-checked on every call."""
    settings = fast_fleet(key_cache_s=0, **server)
    data = settings.model_dump()
    data["deployments"] = [{"model": "text-embedding-3-small", "provider": "openai"}]
    return Settings.model_validate(data)


@pytest.fixture
def store() -> Iterator[Store]:
    """The store the server uses (the per-test AX_HOME's database)."""
    s = Store.open()
    yield s
    s.close()


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """A gateway that needs keys."""
    server = LiveServer(fleet_settings()).start()
    yield server
    server.stop()


@pytest.fixture
def admin_live(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A gateway that needs keys, with `ADMIN` as its admin key."""
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings()).start()
    yield server
    server.stop()


@pytest.fixture
def open_live() -> Iterator[LiveServer]:
    """A gateway started with --no-auth."""
    server = LiveServer(fleet_settings(), no_auth=True).start()
    yield server
    server.stop()


@pytest.fixture
def key(store: Store) -> str:
    """A key of user alice."""
    raw, _ = create_key(store, "alice", name="tests")
    return raw
