"""`ax serve --workers 2`: the workers share limits, records and live metrics through the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from axtui import locations

from ..support import free_port

pytestmark = [pytest.mark.timeout(180), pytest.mark.processes]


def test_two_workers_agree_on_limits_and_metrics() -> None:
    locations.config_path().write_text(
        '[[providers]]\nname = "openai"\nkind = "sim"\nprofile = "fast"\nmodels = ["gpt-4o-mini"]\n',
        encoding="utf-8",
    )
    made = subprocess.run([sys.executable, "-m", "axtui", "keys", "create", "--user", "w", "--rpm", "4", "--json"],
                          capture_output=True, check=True)
    key = json.loads(made.stdout)["key"]
    made = subprocess.run([sys.executable, "-m", "axtui", "keys", "create", "--user", "c", "--json"],
                          capture_output=True, check=True)
    cache_key = json.loads(made.stdout)["key"]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "axtui", "serve", "--port", str(port), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "ax serve --workers 2 did not start"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        codes = []
        for i in range(8):
            # A new connection each time, so both workers take calls.
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}
            codes.append(httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30).status_code)
        assert sorted(codes) == [200] * 4 + [429] * 4
        # Every worker answers for all of them (live windows filled from the store).
        totals = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            totals = httpx.get(f"{url}/api/metrics/realtime", headers=headers, timeout=5).json()["totals"]
            if totals["requests"] == 8:
                break
            time.sleep(0.3)
        assert totals is not None and (totals["requests"], totals["rate_limited"]) == (8, 4)
        # An answer cached by one worker is a hit on every worker, a moment later.
        same = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "same question"}]}

        def ask() -> str:
            return httpx.post(f"{url}/v1/chat/completions", json=same, timeout=30,
                              headers={"Authorization": f"Bearer {cache_key}"}).headers["x-ax-cache"]

        assert ask() == "miss"
        time.sleep(0.5)
        assert [ask() for _ in range(5)] == ["exact"] * 5
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    import sqlite3

    with sqlite3.connect(locations.db_path()) as conn:
        rows = conn.execute("SELECT status, count(*) FROM calls GROUP BY status ORDER BY status").fetchall()
    assert rows == [("ok", 10), ("rate_limited", 4)]
