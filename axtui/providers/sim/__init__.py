"""The simulated provider fleet: in process (`SimProvider`) and over HTTP (`build_app`, `run`).

The engine and CLI use:

- `demo_providers`, `demo_aliases`, `demo_price_overrides`: the demo fleet
  served when no provider is configured;
- `deployments_for`: the deployments (with capabilities) a sim provider
  config serves;
- `SimProvider`: the provider kind ``sim``;
- `build_app` and `run`: `ax sim serve`;
- `get_profile`, `profile_names`, `register_profile` and the profile
  classes (`Profile`, `ProviderProfile`, `ModelProfile`, `Latency`,
  `Faults`, `Degradation`) to pick or build a fleet.
"""

from typing import Any

from axtui.providers.sim.fleet import DEMO_PROFILE, demo_aliases, demo_fleet, demo_price_overrides, demo_providers
from axtui.providers.sim.profiles import deployments_for, get_profile, profile_names, register_profile, resolve_profile
from axtui.providers.sim.provider import SimProvider
from axtui.providers.sim.simulate import FAULTS, Simulator
from axtui.providers.sim.spec import Degradation, Faults, Latency, ModelProfile, Profile, ProviderProfile
from axtui.providers.sim.text import embed_text

_SERVER = ("DEFAULT_PORT", "FAULT_HEADER", "build_app", "run", "server_state")


def __getattr__(name: str) -> Any:
    # The HTTP server pulls in aiohttp's server side; only `ax sim serve` and
    # tests need it, so it loads on first use.
    if name in _SERVER:
        from axtui.providers.sim import server

        return getattr(server, name)
    raise AttributeError(f"module 'axtui.providers.sim' has no attribute {name!r}")


__all__ = [
    "DEFAULT_PORT",
    "DEMO_PROFILE",
    "FAULTS",
    "FAULT_HEADER",
    "Degradation",
    "Faults",
    "Latency",
    "ModelProfile",
    "Profile",
    "ProviderProfile",
    "SimProvider",
    "Simulator",
    "build_app",
    "demo_aliases",
    "demo_fleet",
    "demo_price_overrides",
    "demo_providers",
    "deployments_for",
    "embed_text",
    "get_profile",
    "profile_names",
    "register_profile",
    "resolve_profile",
    "run",
    "server_state",
]
