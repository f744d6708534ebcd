"""The span export process: one child per gateway process, which calls never wait for and never fail with."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from axtui import locations
from axtui.engine import Gateway
from axtui.engine.compose import build_gateway
from axtui.redaction import forget_all, remember
from axtui.telemetry import _process
from tests.engine.fakes import ScriptedProvider
from tests.support import assert_ends_with_its_killed_parent, free_port, running, until
from tests.telemetry.receiver import Receiver
from tests.telemetry.test_traces import _request, _settings

pytestmark = [pytest.mark.timeout(120), pytest.mark.processes]

CHILD = "axtui.telemetry._child"


async def _gateway(endpoint: str, **telemetry: Any) -> Gateway:
    return await build_gateway(_settings(endpoint, "a", telemetry=telemetry), providers={"a": ScriptedProvider("a")})


_running = running


def _export_processes() -> dict[int, int]:
    """Every running span export process on this machine: pid → parent pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and CHILD in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    return {pid: parent for pid, parent in found.items() if _running(pid)}


async def test_a_graceful_stop_delivers_every_queued_span_and_leaves_no_process(receiver: Receiver) -> None:
    gw = await _gateway(receiver.url)
    pid = gw.telemetry.exporter.pid  # type: ignore[attr-defined]
    assert pid is not None and _running(pid)
    for i in range(100):
        assert (await gw.chat(_request(f"question {i}"))).content
    await gw.aclose()
    assert len(receiver.spans) == 400, "every span was delivered by the time the gateway closed"
    assert gw.telemetry.stats() == {"exported": 400, "dropped": 0, "failed": 0}
    assert not _running(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie


async def test_the_export_process_only_takes_cores_nothing_else_wants(receiver: Receiver) -> None:
    """SCHED_IDLE: a gateway (or any other task) that wakes takes the export process's core at once."""
    gw = await _gateway(receiver.url)
    pid = gw.telemetry.exporter.pid  # type: ignore[attr-defined]
    assert pid is not None
    await until(lambda: os.sched_getscheduler(pid) == os.SCHED_IDLE, timeout=10)
    assert os.sched_getscheduler(os.getpid()) == os.SCHED_OTHER, "the gateway's own process is left as it was"
    assert (await gw.chat(_request("a question"))).content
    await gw.aclose()
    assert len(receiver.spans) == 4


async def test_a_killed_export_process_fails_no_call_and_what_it_held_is_counted_dropped(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "axtui.telemetry")
    gw = await _gateway(receiver.url, export_timeout_s=30)
    try:
        receiver.stall()
        for i in range(5):
            assert (await gw.chat(_request(f"before {i}"))).content
        await until(lambda: receiver.stalled >= 1)  # the export process holds those spans, waiting on the collector
        killed = gw.telemetry.exporter.pid  # type: ignore[attr-defined]
        os.kill(killed, signal.SIGKILL)
        for i in range(5):
            assert (await gw.chat(_request(f"while {i}"))).content
        await until(lambda: gw.telemetry.stats()["dropped"] >= 20)
        receiver.resume()
        await until(lambda: gw.telemetry.exporter.pid not in (None, killed))  # type: ignore[attr-defined]
        for i in range(5):
            assert (await gw.chat(_request(f"after {i}"))).content
    finally:
        await gw.aclose()
    stats = gw.telemetry.stats()
    assert stats["dropped"] >= 20 and stats["failed"] == 0, "the spans the killed process held are counted"
    assert stats["exported"] == len(receiver.spans) >= 20, "calls made after the kill are still traced"
    assert stats["exported"] + stats["dropped"] == 60
    assert not _running(killed)
    said = [r.getMessage() for r in caplog.records if "span export process" in r.getMessage()]
    assert len(said) == 1 and "spans were lost" in said[0], said


async def test_an_export_process_that_cannot_start_is_reported_once_and_spans_are_counted_dropped(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "COMMAND", [sys.executable, "-c", "raise SystemExit(3)"])
    caplog.set_level(logging.WARNING, "axtui.telemetry")
    gw = await _gateway(receiver.url)
    try:
        for i in range(5):
            assert (await gw.chat(_request(f"question {i}"))).content
        await until(lambda: gw.telemetry.exporter.pid is None)  # type: ignore[attr-defined]
        for i in range(5):
            assert (await gw.chat(_request(f"later {i}"))).content
    finally:
        await gw.aclose()
    assert gw.telemetry.stats() == {"exported": 0, "dropped": 40, "failed": 0}
    said = [r for r in caplog.records if "span export process" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert "dropped and counted" in said[0].getMessage()


async def test_content_is_scrubbed_of_the_secrets_the_gateway_process_remembers(receiver: Receiver) -> None:
    remember("correct-horse-battery-staple")
    try:
        gw = await _gateway(receiver.url, capture_content=True)
        await gw.chat(_request("the passphrase is correct-horse-battery-staple, remember it"))
        await gw.aclose()
    finally:
        forget_all()
    [root] = [s for s in receiver.wait_for(4) if s.kind == "SERVER"]
    sent = json.loads(root.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
    assert "correct-horse-battery-staple" not in sent
    assert sent == "the passphrase is [redacted], remember it"


def test_the_export_process_ends_with_its_gateway_process_even_a_killed_one(receiver: Receiver) -> None:
    code = (
        "import asyncio, time\n"
        "from axtui.config import Settings\n"
        "from axtui.engine.compose import build_gateway\n"
        "async def main():\n"
        f"    gw = await build_gateway(Settings.model_validate({{'telemetry': {{'otlp_endpoint': '{receiver.url}'}}}}))\n"
        "    print(gw.telemetry.exporter.pid, flush=True)\n"
        "    time.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    assert_ends_with_its_killed_parent(code, "the export process")


def test_each_worker_of_ax_serve_has_its_own_export_process(receiver: Receiver) -> None:
    locations.config_path().write_text(
        '[[providers]]\nname = "openai"\nkind = "sim"\nprofile = "fast"\nmodels = ["gpt-4o-mini"]\n\n'
        # Stopping waits for the export processes, which get only idle time on cores other tests keep busy.
        f'[telemetry]\notlp_endpoint = "{receiver.url}"\nexport_timeout_s = 30\n',
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "axtui", "serve", "--no-auth", "--port", str(port),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    children: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    children = {pid: parent for pid, parent in _export_processes().items()
                                if _parent(parent) == proc.pid}
                    if len(children) == 2:
                        break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, f"2 workers' export processes: {children}"
            time.sleep(0.2)
        assert len(set(children.values())) == 2, "one export process per worker"
        for i in range(6):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}
            assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert len([s for s in receiver.spans if s.kind == "SERVER"]) == 6, "the workers' spans were sent before they stopped"
    assert not any(_running(pid) for pid in children)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0
