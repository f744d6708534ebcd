"""`ax sim load --target` drives a running gateway over HTTP and reads its headers."""

from __future__ import annotations

from axtui.engine.load import run_load
from axtui.providers.sim.workload import Workload
from tests.server._live import LiveServer


async def test_load_through_a_gateway_url_counts_what_the_gateway_did(open_live: LiveServer) -> None:
    summary = await run_load(Workload(seed=3, users=2), rps=200, duration=0.5, target=open_live.url)
    assert summary.calls == 100
    assert summary.ok == 100 and summary.errors == 0
    assert summary.cache_hits > 0  # the workload repeats popular questions per user
    assert summary.upstream_calls == summary.ok - summary.cache_hits
    assert summary.cost_nanos > 0 and sum(summary.by_provider.values()) == summary.ok
