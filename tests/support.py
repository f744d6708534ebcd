"""What many test folders need: one way to wait, a free port, a chat request.

`until` is the only polling helper: it fails the test, naming what it waited
for, when the condition never holds. Fixtures over these live in
``tests/conftest.py`` (``free_port``, ``chat_request``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from axtui.types import ChatRequest

if TYPE_CHECKING:
    from textual.pilot import Pilot

__all__ = [
    "assert_ends_with_its_killed_parent", "chat_request", "free_port", "fresh_postgres_database", "running", "until",
]


def _described(condition: Callable[[], object]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)


async def until(
    condition: Callable[[], object],
    *,
    pilot: Pilot[Any] | None = None,
    step: Callable[[], None] | None = None,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Wait until ``condition()`` is true; fail the test (AssertionError) on timeout.

    Args:
        condition: looked at every ``interval`` seconds.
        pilot: a dashboard under test: it gets the pauses (so it keeps drawing)
            and one more pause after the condition holds, to settle.
        step: runs between looks (to move a fake clock, for instance).
        timeout: seconds of real time before giving up.
        interval: seconds between looks.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {_described(condition)}")
        if step is not None:
            step()
        if pilot is not None:
            await pilot.pause(interval)
        else:
            await asyncio.sleep(interval)
    if pilot is not None:
        await pilot.pause()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_postgres_database(url: str, name: str) -> str:
    """An empty database ``name`` on the PostgreSQL server at ``url`` (dropped first if it is there); its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def chat_request(model: str = "m", text: str = "hello", **fields: Any) -> ChatRequest:
    """A one-turn chat request of ``model`` saying ``text``; ``fields`` add or override parameters."""
    return ChatRequest.model_validate({"model": model, "messages": [{"role": "user", "content": text}], **fields})


@contextlib.contextmanager
def sim_serve(*args: str) -> Iterator[str]:
    """``ax sim serve`` (the fast profile) in a process on a free port; yields its base URL, stops it after."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "axtui", "sim", "serve", "--port", str(port), "--profile", "fast", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/v1/models", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"ax sim serve did not start: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (an unreaped zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def assert_ends_with_its_killed_parent(code: str, what: str, timeout: float = 30) -> None:
    """Run ``code`` in a new Python; it prints the pid of a process it started (``what``) and waits.
    Kill it with SIGKILL, and fail unless that process is gone within ``timeout`` seconds."""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert running(pid), f"{what} was not running"
    finally:
        parent.kill()
        parent.wait(30)
    deadline = time.monotonic() + timeout
    while running(pid):
        assert time.monotonic() < deadline, f"{what} outlived its killed parent"
        time.sleep(0.05)


def use_sim_aws(monkeypatch: Any, tmp_path: Path) -> None:
    """The simulated Bedrock's credentials in the environment, and no other AWS configuration (no profile,
    role, region, config or credentials file, instance metadata) for botocore to find."""
    from axtui.providers.sim.cloud_bedrock import SIM_ACCESS_KEY_ID, SIM_SECRET_ACCESS_KEY

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", SIM_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SIM_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
