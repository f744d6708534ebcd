"""Shared fixtures: every test gets its own AX_HOME; nothing touches the network."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import stamina

from axtui.types import ChatRequest

from . import support


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets a Redis database and a PostgreSQL database of its own.

    The tests clear what they use in the servers CI starts (AX_TEST_REDIS_URL, AX_TEST_POSTGRES_URL);
    two workers sharing one database would clear each other's state mid-test.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    n = int(worker.removeprefix("gw"))
    redis_url = os.environ.get("AX_TEST_REDIS_URL")
    if redis_url:
        # Databases 8-15 for workers; 7 is the replica fleet's (scripts/replicas.py), 0 a lone run's.
        os.environ["AX_TEST_REDIS_URL"] = f"{redis_url.rsplit('/', 1)[0]}/{8 + n % 8}"
    postgres_url = os.environ.get("AX_TEST_POSTGRES_URL")
    if postgres_url:
        os.environ["AX_TEST_POSTGRES_URL"] = support.fresh_postgres_database(postgres_url, f"ax_test_{worker}")


@pytest.fixture(autouse=True)
def ax_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every ax path at a fresh folder and clear settings from the environment."""
    home = tmp_path / "ax-home"
    home.mkdir()
    monkeypatch.setenv("AX_HOME", str(home))
    for var in ("AX_CONFIG", "AX_DATABASE_URL", "AX_REDIS_URL", "AX_ADMIN_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _fresh_audit_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process: who its changes are by is not left over from an earlier test."""
    from axtui.store import audit

    monkeypatch.setattr(audit, "_process_actor", None)


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a refused connection, or a port to serve on)."""
    return support.free_port()


@pytest.fixture
def chat_request() -> Callable[..., ChatRequest]:
    """The shared builder of one-turn chat requests: ``chat_request("smart", "hi", max_tokens=5)``."""
    return support.chat_request


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """Retries happen, but without real sleeps."""
    stamina.set_testing(True, attempts=3, cap=True)
    yield
    stamina.set_testing(False)
