"""End to end: `ax sim serve` over HTTP as the upstream, `ax serve` in front, the OpenAI SDK in front of that.

Both servers run as the user runs them, as processes. The gateway's only
provider is an OpenAI-compatible one pointed at the simulated fleet.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from axtui import locations

from ..support import free_port

pytestmark = [pytest.mark.timeout(180), pytest.mark.processes]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"{proc.args} exited with {proc.returncode}: {out}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _ax(*args: str) -> list[str]:
    return [sys.executable, "-m", "axtui", *args]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def sim_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(_ax("sim", "serve", "--port", str(port), "--profile", "demo", "--seed", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(f"{url}/healthz", proc)
        yield url
    finally:
        _stop(proc)


def _start_gateway(sim_url: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    config = locations.config_path()
    config.write_text(
        "[[providers]]\n"
        'name = "simfleet"\nkind = "openai"\n'
        f'base_url = "{sim_url}/v1"\n'
        'models = ["gpt-4o-mini", "llama3.1:8b"]\n'
        "max_retries = 0\n",
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(_ax("serve", "--port", str(port), *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(f"{url}/healthz", proc)
    return proc, url


def _rows(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]


def test_sdk_through_ax_serve_to_the_simulated_fleet(sim_url: str) -> None:
    made = subprocess.run(_ax("keys", "create", "--user", "e2e", "--json"), capture_output=True, check=True)
    key = json.loads(made.stdout)["key"]
    proc, url = _start_gateway(sim_url)
    try:
        api = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)
        raw = api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is a WAL?"}]
        )
        completion = raw.parse()
        assert completion.choices[0].message.content
        assert raw.headers["x-ax-provider"] == "simfleet" and raw.headers["x-ax-model"] == "gpt-4o-mini"
        assert raw.headers["x-ax-cache"] in ("miss", "exact", "semantic")
        chunks = list(api.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "And a B-tree?"}], stream=True,
            stream_options={"include_usage": True},
        ))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).models.list()
    finally:
        _stop(proc)
    assert proc.returncode == 0
    rows = _rows(locations.db_path())
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2 and {r["user"] for r in ok} == {"e2e"}
    assert [bool(r["stream"]) for r in ok] == [False, True]
    assert all(r["provider"] == "simfleet" and r["output_tokens"] for r in ok)
    # The calls show up where a user looks for them.
    summary = json.loads(subprocess.run(_ax("cost", "summary", "--json"), capture_output=True, check=True).stdout)
    assert summary["calls"] == 2
    assert summary["input_tokens"] == sum(int(r["input_tokens"]) for r in ok)  # type: ignore[call-overload]
    exported = json.loads(subprocess.run(_ax("monitor", "export", "--format", "json"), capture_output=True,
                                         check=True).stdout)
    assert len(exported) == 2 and {row["user"] for row in exported} == {"e2e"}


def test_a_running_gateway_takes_a_new_rate_limit_from_its_config_file(sim_url: str) -> None:
    proc, url = _start_gateway(sim_url, "--no-auth")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    try:
        assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        config = locations.config_path()
        config.write_text(config.read_text(encoding="utf-8") + '\n[ratelimit]\nglobal_requests = "1/minute"\n',
                          encoding="utf-8")
        codes: list[int] = []
        deadline = time.monotonic() + 15
        while 429 not in codes and time.monotonic() < deadline:
            codes.append(httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code)
            time.sleep(0.2)
        assert 429 in codes and set(codes) <= {200, 429}
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_graceful_stop_finishes_calls_in_flight_and_records_them(sim_url: str) -> None:
    proc, url = _start_gateway(sim_url, "--no-auth")
    api = openai.OpenAI(base_url=f"{url}/v1", api_key="local", max_retries=0, timeout=60)
    started = threading.Semaphore(0)
    texts: list[str] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            stream = api.chat.completions.create(
                model="llama3.1:8b", stream=True, max_tokens=120,
                messages=[{"role": "user", "content": f"Explain topic number {i} at length"}],
            )
            parts = []
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if not parts:
                        started.release()
                    parts.append(chunk.choices[0].delta.content)
            texts.append("".join(parts))
        except BaseException as exc:
            errors.append(exc)
            started.release()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for _ in threads:
        assert started.acquire(timeout=60)
    proc.send_signal(signal.SIGTERM)  # while every call is mid-stream
    for t in threads:
        t.join(60)
    proc.wait(60)
    assert not errors, errors
    assert len(texts) == 4 and all(texts)
    assert proc.returncode == 0
    rows = _rows(locations.db_path())
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "--no-auth" in out and "anyone" in out.lower()


def test_a_stop_ends_open_metrics_streams_at_once(sim_url: str) -> None:
    proc, url = _start_gateway(sim_url, "--no-auth")
    received = threading.Event()
    ended = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{url}/api/metrics/stream", params={"interval": 0.5}, timeout=60) as r:
                for line in r.iter_lines():
                    if line.startswith("event: snapshot"):
                        received.set()
        except httpx.HTTPError:
            pass
        ended.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert received.wait(30)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    # Well within the 30 s a graceful stop would wait for a call in flight.
    assert time.monotonic() - started < 10
    assert ended.wait(10) and proc.returncode == 0
