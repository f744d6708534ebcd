"""Named profiles of the simulated fleet, and how a config finds its own.

| name       | what it is for |
| ---------- | -------------- |
| `demo`     | the demo fleet as it is: realistic latency, rare faults, azure's bad spell every 10 minutes |
| `fast`     | the same models answering instantly and never failing: tests and benchmarks |
| `flaky`    | the demo fleet failing often (about one call in three): retries and fallbacks |
| `degraded` | the demo fleet without random faults, openai 10× slower and failing half its calls from 10 s to 130 s into a run: routing |

`get_profile` builds a profile by name; `register_profile` adds one (a
test or plugin may add its own); `deployments_for` gives the deployments a
configured sim provider serves, with their capabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from axtui.config import ProviderConfig
from axtui.errors import ConfigError
from axtui.providers.sim.fleet import DEMO_PROFILE, demo_fleet
from axtui.providers.sim.spec import Degradation, Faults, Latency, Profile
from axtui.types import Deployment

__all__ = [
    "deployments_for",
    "get_profile",
    "profile_names",
    "register_profile",
    "resolve_profile",
]


def _demo() -> Profile:
    return Profile(DEMO_PROFILE, demo_fleet(), "the demo fleet: realistic latency, rare faults, one provider degrades")


def _fast() -> Profile:
    providers = tuple(
        replace(
            p,
            latency=Latency.instant(),
            faults=Faults.none(),
            degradations=(),
            models=tuple(replace(m, latency=None, faults=None) for m in p.models),
        )
        for p in demo_fleet()
    )
    return Profile("fast", providers, "the demo fleet's models, instant and never failing")


def _flaky() -> Profile:
    often = Faults(
        error_rate=0.12,
        rate_limit_rate=0.1,
        timeout_rate=0.03,
        malformed_rate=0.03,
        cut_rate=0.06,
        retry_after_s=1.0,
        hang_s=2.0,
    )
    providers = tuple(
        replace(p, faults=often, models=tuple(replace(m, faults=None) for m in p.models)) for p in demo_fleet()
    )
    return Profile("flaky", providers, "the demo fleet failing about one call in three")


def _degraded() -> Profile:
    spell = Degradation(offset_s=10, duration_s=120, slowdown=10.0, error_rate=0.5)
    providers = tuple(
        replace(
            p,
            faults=Faults.none(),
            degradations=(spell,) if p.name == "openai" else (),
            models=tuple(replace(m, faults=None) for m in p.models),
        )
        for p in demo_fleet()
    )
    return Profile("degraded", providers, "no random faults; openai slow and failing from 10 s to 130 s into a run")


_PROFILES: dict[str, Callable[[], Profile]] = {
    "demo": _demo,
    "fast": _fast,
    "flaky": _flaky,
    "degraded": _degraded,
}


def profile_names() -> list[str]:
    """Every profile name `get_profile` knows, built-in ones first."""
    return list(_PROFILES)


def register_profile(name: str, build: Callable[[], Profile]) -> None:
    """Make ``name`` usable as ``profile = "name"`` in a sim provider's config.

    Args:
        name: the profile's name.
        build: called each time the profile is asked for; returns it.
    """
    _PROFILES[name] = build


def get_profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        ConfigError: no such profile; the message lists the known ones.
    """
    build = _PROFILES.get(name)
    if build is None:
        raise ConfigError(f"unknown simulation profile {name!r}; known profiles: {', '.join(profile_names())}")
    return build()


def resolve_profile(profile: str | Profile | None) -> Profile:
    """A `Profile` from a name, a profile, or None (the demo profile)."""
    if isinstance(profile, Profile):
        return profile
    return get_profile(profile or DEMO_PROFILE)


def deployments_for(
    config: ProviderConfig, profile: str | Profile | None = None, *, embedding: bool = False
) -> list[Deployment]:
    """The deployments a configured sim provider serves, capabilities included.

    Args:
        config: a provider config of kind ``sim``; its ``profile`` (default
            ``demo``), ``name``, ``models`` and ``region`` pick what it plays.
        profile: a profile (or name) that replaces the config's.
        embedding: the embedding models' deployments instead of the chat ones.

    Returns:
        One `Deployment` per chat model (or per embedding model), with
        context window, max output, tools, vision and JSON support.
    """
    resolved = resolve_profile(profile if profile is not None else config.profile)
    provider = resolved.provider_for(config.name, models=config.models, region=config.region)
    return provider.deployments(embedding=embedding)
