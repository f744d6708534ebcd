"""A gateway restarted on the same store remembers recent health; saved settings apply live."""

from __future__ import annotations

import pytest

from axtui.bus import SettingsChanged
from axtui.clock import FakeClock
from axtui.config import ProviderConfig, RoutingConfig, Settings
from axtui.engine.compose import build_gateway
from axtui.errors import ProviderServerError
from axtui.providers.sim.provider import SimProvider
from axtui.routing.router import HealthRouter
from axtui.types import Caller, ChatRequest

T0 = 1_760_000_000.0


def _settings(**routing: object) -> Settings:
    return Settings(
        providers=[ProviderConfig(name=n, kind="sim", profile="fast", models=["gpt-4o"], max_retries=0)
                   for n in ("openai", "azure")],
        routing=RoutingConfig.model_validate({"strategy": "capability", "circuit_cooldown_s": 300, **routing}),
    )


def _ask(n: int) -> ChatRequest:
    return ChatRequest(model="gpt-4o", messages=[{"role": "user", "content": f"question {n}"}])


async def test_a_restarted_gateway_keeps_an_open_circuit_open() -> None:
    settings = _settings()
    async with await build_gateway(settings, clock=FakeClock(start=T0)) as gw:
        openai = gw.providers["openai"]
        assert isinstance(openai, SimProvider)
        openai.inject(*["503"] * 5)
        for i in range(5):
            result = await gw.call(_ask(i), Caller(user="u"))
            assert result.record.provider == "azure" and result.record.attempts == 2
        router = gw.router
        assert isinstance(router, HealthRouter)
        assert "circuit open" in router.plan(_ask(9), Caller()).reasons["openai/gpt-4o"]

    async with await build_gateway(settings, clock=FakeClock(start=T0 + 20)) as again:
        router = again.router
        assert isinstance(router, HealthRouter)
        plan = router.plan(_ask(10), Caller())
        assert [d.provider for d in plan.candidates] == ["azure"]
        assert plan.reasons["openai/gpt-4o"].startswith("skipped: circuit open (5 failures in a row)")
        snap = {s.deployment: s for s in router.health_snapshot()}
        assert snap["openai/gpt-4o"].total_errors == 5 and snap["azure/gpt-4o"].total_calls == 5
        assert router.health.mean_output  # answer lengths are remembered too: latency compares like with like


async def test_saved_settings_reach_a_running_router() -> None:
    settings = _settings()
    async with await build_gateway(settings, clock=FakeClock(start=T0), record=False) as gw:
        assert (await gw.call(_ask(1), Caller())).record.provider == "openai"
        pinned = _settings(rules=[{"name": "pin-azure", "deployments": ["azure/gpt-4o"]}])
        gw.bus.publish(SettingsChanged(pinned))
        result = await gw.call(_ask(2), Caller())
        assert result.record.provider == "azure" and result.record.rule == "pin-azure"
        # A rule naming something nobody serves is refused; the running rules stay.
        gw.bus.publish(SettingsChanged(_settings(rules=[{"name": "bad", "deployments": ["nowhere/x"]}])))
        assert (await gw.call(_ask(3), Caller())).record.rule == "pin-azure"


async def test_a_required_region_is_not_left_when_its_deployment_fails() -> None:
    settings = _settings(rules=[{"name": "eu-only", "user": "eu-*", "region": "eu-west", "require_region": True}])
    async with await build_gateway(settings, clock=FakeClock(start=T0), record=False) as gw:
        azure, openai = gw.providers["azure"], gw.providers["openai"]
        assert isinstance(azure, SimProvider) and isinstance(openai, SimProvider)
        assert azure.spec.region == "eu-west" and openai.spec.region != "eu-west"
        azure.inject(*["503"] * 10)
        with pytest.raises(ProviderServerError):
            await gw.call(_ask(1), Caller(user="eu-ann"))
        assert openai.served == {}  # never sent outside eu-west
        result = await gw.call(_ask(2), Caller(user="bob"))  # others may go anywhere
        assert result.record.provider == "openai"
