"""A graceful stop whose drain time runs out: the calls it cuts off are answered, and the log has no traceback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from axtui.config import Settings
from axtui.providers.sim.profiles import get_profile, register_profile
from axtui.providers.sim.spec import Latency, Profile
from axtui.store import Store

from ._live import LiveServer
from .conftest import fleet_settings


def _stuck() -> Profile:
    fast = get_profile("fast")
    providers = tuple(replace(p, latency=Latency(120_000, 120_001)) for p in fast.providers)
    return Profile("stuck", providers, "a first token after two minutes")


@pytest.fixture
def uvicorn_errors() -> Iterator[list[logging.LogRecord]]:
    """What the web server logs as errors (it logs an exception that leaves the app with its traceback)."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.ERROR)
    logging.getLogger("uvicorn.error").addHandler(handler)
    yield seen
    logging.getLogger("uvicorn.error").removeHandler(handler)


def test_calls_the_drain_time_cuts_off_get_a_503_and_are_recorded(uvicorn_errors: list[logging.LogRecord]) -> None:
    register_profile("stuck", _stuck)
    data = fleet_settings(drain_timeout_s=1).model_dump()
    for p in data["providers"]:
        p["profile"] = "stuck"
    server = LiveServer(Settings.model_validate(data), no_auth=True).start()
    answers: dict[str, httpx.Response] = {}

    def ask(path: str, body: dict[str, object]) -> None:
        answers[path + str(body.get("stream", False))] = httpx.post(server.url + path, json=body, timeout=60)

    messages = [{"role": "user", "content": "hello"}]
    asks = [
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages}),
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages, "stream": True}),
        ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": messages}),
    ]
    threads = [threading.Thread(target=ask, args=a) for a in asks]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while server.app.state.inflight < len(asks):
        assert time.monotonic() < deadline, "the calls did not reach the gateway"
        time.sleep(0.02)
    server.stop()  # the calls never finish: the drain time (1 s) runs out
    for t in threads:
        t.join(30)
    assert len(answers) == len(asks)
    for answer in answers.values():
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "stopping"
        assert "stopped before this call finished" in answer.json()["error"]["message"]
    assert answers["/v1/messagesFalse"].json()["type"] == "error"  # in Anthropic's shape there
    assert [r.getMessage() for r in uvicorn_errors if r.exc_info] == []
    store = Store.open()
    with store.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM calls GROUP BY status")).all()
    store.close()
    assert [tuple(r) for r in rows] == [("cancelled", len(asks))]


def test_streams_already_begun_when_the_drain_time_runs_out_end_with_an_error_event(
        uvicorn_errors: list[logging.LogRecord]) -> None:
    """A stream whose headers went out (keep-alive comments while the first token is slow) cannot turn into a 503:
    it ends with its wire's error event, which the SDKs raise on, never as if the answer were complete."""
    register_profile("stuck", _stuck)
    data = fleet_settings(drain_timeout_s=1, stream_keepalive_s=0.1).model_dump()
    for p in data["providers"]:
        p["profile"] = "stuck"
    server = LiveServer(Settings.model_validate(data), no_auth=True).start()
    bodies: dict[str, tuple[int, bytes]] = {}
    begun = threading.Semaphore(0)

    def ask(path: str, body: dict[str, object]) -> None:
        with httpx.stream("POST", server.url + path, json=body, timeout=60) as answer:
            got = b""
            for piece in answer.iter_raw():
                if not got:
                    begun.release()  # the headers and a first keep-alive are out
                got += piece
            bodies[path] = (answer.status_code, got)

    messages = [{"role": "user", "content": "hello"}]
    asks = [
        ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages, "stream": True}),
        ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": messages, "stream": True}),
    ]
    threads = [threading.Thread(target=ask, args=a) for a in asks]
    for t in threads:
        t.start()
    for _ in asks:
        assert begun.acquire(timeout=15), "the streams did not begin"
    server.stop()
    for t in threads:
        t.join(30)
    status, chat = bodies["/v1/chat/completions"]
    assert status == 200 and chat.startswith(b": keep-alive")
    assert b'"code":"stopping"' in chat and chat.endswith(b"data: [DONE]\n\n")
    status, anthropic = bodies["/v1/messages"]
    assert status == 200 and b"event: error\n" in anthropic and b'"code":"stopping"' in anthropic
    assert [r.getMessage() for r in uvicorn_errors if r.exc_info] == []
