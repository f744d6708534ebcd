"""GET /api/cost/whatif: the dashboard's what-if panel over --url."""

from __future__ import annotations

import time

import pytest

from axtui.config import Settings
from axtui.engine.load import run_load
from axtui.errors import InvalidRequest
from axtui.providers.sim.workload import Workload
from axtui.store import Store
from axtui.tui.data_remote import RemoteBackend
from tests.server._live import LiveServer


async def test_the_server_replays_its_calls_under_another_strategy(open_live: LiveServer, store: Store) -> None:
    summary = await run_load(Workload(seed=5, users=3), rps=200, duration=0.4, target=open_live.url)
    assert summary.ok == summary.calls == 80
    deadline = time.monotonic() + 10
    while store.run(lambda conn: conn.exec_driver_sql("select count(*) from calls").scalar()) < 80:
        assert time.monotonic() < deadline, "the server did not record the calls"
        time.sleep(0.05)
    remote = RemoteBackend(open_live.url, Settings(), stream=False)
    try:
        data = remote.whatif("1h", "cost", None)
        assert data["calls"] == 80 and data["policy"] == {"strategy": "cost"}
        assert data["total"]["recorded_nanos"] > 0 and set(data["by_model"]) <= {"fast", "smart", "cheap"}
        with pytest.raises(InvalidRequest, match="price file"):
            remote.whatif("1h", None, "prices.json")
        with pytest.raises(InvalidRequest, match="unknown routing strategy"):
            remote.whatif("1h", "cheapest", None)
    finally:
        remote.close()
