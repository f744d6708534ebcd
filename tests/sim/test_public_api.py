"""The names the engine and CLI import from the simulated fleet stay put."""

from __future__ import annotations

import inspect

import axtui.providers.sim as sim
from axtui.config import ProviderConfig
from axtui.providers import create_provider


def test_the_public_api() -> None:
    assert set(sim.__all__) >= {
        "SimProvider", "build_app", "run", "demo_providers", "demo_aliases", "demo_price_overrides",
        "deployments_for", "get_profile", "profile_names", "register_profile", "Profile", "ProviderProfile",
        "ModelProfile", "Latency", "Faults", "Degradation",
    }
    assert all(hasattr(sim, name) for name in sim.__all__)
    assert list(inspect.signature(sim.SimProvider).parameters) == ["config", "clock", "seed", "profile", "transport"]
    assert list(inspect.signature(sim.build_app).parameters) == ["profile", "seed", "clock"]
    assert list(inspect.signature(sim.run).parameters)[:4] == ["host", "port", "profile", "seed"]


def test_the_registry_builds_sim_providers() -> None:
    provider = create_provider(ProviderConfig(name="groq", kind="sim", profile="fast"))
    assert isinstance(provider, sim.SimProvider)
    assert provider.spec.model_names == ["llama-3.3-70b-versatile"]
