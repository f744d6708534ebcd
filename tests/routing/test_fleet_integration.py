"""Routing through the real gateway on a simulated fleet, on a fake clock.

Two providers serve model ``m``: ``alpha`` (fast) and ``beta`` (slower).
Alpha has an outage from 20 s to 80 s into the run. Traffic must leave it
during the outage and come back afterwards; every call is still served,
and the store remembers enough for ``ax route status`` in another process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.clock import FakeClock
from axtui.config import ProviderConfig, RoutingConfig, Settings, save_settings
from axtui.engine.compose import build_gateway
from axtui.providers.sim.profiles import _PROFILES, register_profile
from axtui.providers.sim.spec import Degradation, Faults, Latency, ModelProfile, Profile, ProviderProfile
from axtui.routing.history import health_from_store
from axtui.routing.router import HealthRouter
from axtui.types import Caller, ChatRequest

PROFILE = "routing-outage"
OUTAGE = (20.0, 80.0)


def _profile() -> Profile:
    m = ModelProfile("m", context_window=32_000, max_output=4_000)
    return Profile(PROFILE, (
        ProviderProfile("alpha", (m,), region="us-east", latency=Latency(80, 120, 2_000), faults=Faults.none(),
                        degradations=(Degradation(offset_s=OUTAGE[0], duration_s=OUTAGE[1] - OUTAGE[0],
                                                  error_rate=1.0),)),
        ProviderProfile("beta", (m,), region="us-west", latency=Latency(250, 400, 2_000), faults=Faults.none()),
    ))


@pytest.fixture
def outage_profile() -> Iterator[None]:
    register_profile(PROFILE, _profile)
    yield
    _PROFILES.pop(PROFILE, None)


def _settings() -> Settings:
    return Settings(
        providers=[ProviderConfig(name=n, kind="sim", profile=PROFILE, models=["m"], max_retries=0)
                   for n in ("alpha", "beta")],
        routing=RoutingConfig(strategy="latency", exploration=0.05, circuit_failures=3, circuit_cooldown_s=10),
    )


@pytest.mark.usefixtures("outage_profile")
async def test_traffic_leaves_a_failing_provider_and_comes_back() -> None:
    settings = _settings()
    save_settings(settings)  # so `ax route status` below sees the same fleet
    start = time.time() - 400
    clock = FakeClock(start=start)
    served: list[tuple[float, str, int]] = []
    async with await build_gateway(settings, clock=clock, sim_seed=5) as gw:
        assert isinstance(gw.router, HealthRouter)
        while clock.now() - start < 200:
            t = clock.now() - start
            result = await gw.call(ChatRequest(model="m", messages=[{"role": "user", "content": f"q{len(served)}"}]),
                                   Caller(user="u"))
            rec = result.record
            assert rec.status == "ok" and rec.route == "latency"
            served.append((t, rec.provider or "", rec.attempts))
            clock.advance(0.5)
        router = gw.router
        alpha = next(s for s in router.health_snapshot() if s.provider == "alpha")
        assert alpha.state == "closed" and alpha.total_errors >= 3

    def share(lo: float, hi: float) -> float:
        window = [p for t, p, _ in served if lo <= t < hi]
        return sum(p == "alpha" for p in window) / len(window)

    assert share(2, OUTAGE[0]) > 0.8                      # alpha is fastest: it takes the traffic
    assert share(OUTAGE[0] + 3, OUTAGE[1]) == 0.0         # the outage: nothing is served by alpha
    retried = [t for t, _, attempts in served if OUTAGE[0] + 3 <= t < OUTAGE[1] and attempts > 1]
    assert len(retried) <= 8                              # only circuit probes still hit alpha
    assert share(OUTAGE[1] + 15, 200) > 0.8               # recovered: it wins its traffic back

    # Another process rebuilds the same picture from the store.
    from axtui.engine.compose import build_catalog
    from axtui.store import Store

    store = Store.open()
    try:
        snaps = {s.provider: s for s in health_from_store(store, build_catalog(settings), settings.routing,
                                                            FakeClock(start=start + 60), since_s=60)}
    finally:
        store.close()
    assert snaps["alpha"].state == "open" and snaps["alpha"].errors >= 3
    assert snaps["beta"].state == "closed" and snaps["beta"].calls > 30

    out = CliRunner().invoke(main, ["route", "status", "--since", "1000", "--json"])
    assert out.exit_code == 0, out.output
    rows = {d["provider"]: d for d in json.loads(out.output)["deployments"]}
    assert rows["alpha"]["total_errors"] >= 3 and rows["alpha"]["state"] == "closed"
    assert rows["beta"]["total_calls"] > 50
