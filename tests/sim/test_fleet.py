"""The demo fleet and the named profiles: what the engine and CLI build on."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from axtui.config import ProviderConfig, Settings
from axtui.errors import ConfigError
from axtui.providers import create_provider
from axtui.providers.sim import (
    Degradation,
    Faults,
    Latency,
    ModelProfile,
    Profile,
    ProviderProfile,
    SimProvider,
    demo_aliases,
    demo_price_overrides,
    demo_providers,
    deployments_for,
    get_profile,
    profile_names,
    register_profile,
)


def test_demo_fleet_has_at_least_four_providers_that_differ() -> None:
    providers = demo_providers()
    assert len(providers) >= 4
    assert all(p.kind == "sim" and p.profile == "demo" and p.region for p in providers)
    fleet = get_profile("demo")
    medians = {p.name: p.latency.ttft_p50_ms for p in fleet.providers}
    assert len(set(medians.values())) == len(medians), "every provider should answer at its own speed"
    assert medians["groq"] < medians["openai"] < medians["azure"]


def test_the_demo_providers_validate_as_settings() -> None:
    settings = Settings(providers=demo_providers(), prices=demo_price_overrides())
    assert not settings.uses_demo_fleet


def test_popular_models_have_several_deployments() -> None:
    deployments = [d for p in demo_providers() for d in deployments_for(p)]
    per_model = Counter(d.model for d in deployments)
    assert per_model["gpt-4o"] >= 2
    assert per_model["gpt-4o-mini"] >= 2
    assert per_model["llama-3.3-70b-versatile"] >= 2
    assert len({d.id for d in deployments}) == len(deployments), "deployment ids must be unique"


def test_aliases_span_providers_and_name_served_models() -> None:
    deployments = [d for p in demo_providers() for d in deployments_for(p)]
    served = {d.model for d in deployments}
    aliases = demo_aliases()
    assert set(aliases) >= {"fast", "smart", "cheap"}
    for name, models in aliases.items():
        assert set(models) <= served, f"alias {name} names a model nobody serves"
        providers = {d.provider for d in deployments if d.model in models}
        assert len(providers) >= 3, f"alias {name} should span providers"


def test_local_models_are_free() -> None:
    overrides = demo_price_overrides()
    local = next(p for p in demo_providers() if p.name == "local")
    for model in local.models:
        price = overrides[f"local/{model}"]
        assert price.input == Decimal(0) and price.output == Decimal(0)


def test_deployments_carry_capabilities() -> None:
    by_id = {d.id: d for p in demo_providers() for d in deployments_for(p)}
    assert by_id["gemini/gemini-2.5-pro"].context_window == 1_048_576
    assert by_id["local/llama3.1:8b"].context_window == 8_192
    assert by_id["openai/gpt-4o"].supports_vision
    assert not by_id["groq/llama-3.3-70b-versatile"].supports_vision
    # Claude answers JSON schemas, so routing may pick it for JSON; its provider refuses only json_object.
    assert by_id["anthropic/claude-sonnet-4-5"].supports_json
    assert by_id["azure/gpt-4o"].region == "eu-west"
    assert "openai/text-embedding-3-small" not in by_id, "embedding models are not chat deployments"


def test_a_config_can_narrow_models_and_relabel_the_region() -> None:
    config = ProviderConfig(name="openai", kind="sim", models=["gpt-4o-mini"], region="eu-central")
    deployments = deployments_for(config)
    assert [d.id for d in deployments] == ["openai/gpt-4o-mini"]
    assert deployments[0].region == "eu-central"


def test_an_unknown_provider_name_plays_the_whole_catalogue() -> None:
    config = ProviderConfig(name="mysim", kind="sim", profile="fast")
    models = {d.model for d in deployments_for(config)}
    assert {"gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash", "llama3.1:8b"} <= models


def test_named_profiles() -> None:
    assert {"demo", "fast", "flaky", "degraded"} <= set(profile_names())
    fast = get_profile("fast")
    assert all(p.faults.total_rate == 0 and p.latency.ttft_p50_ms == 0 and not p.degradations
               for p in fast.providers)
    flaky = get_profile("flaky")
    assert all(p.faults.total_rate > 0.2 for p in flaky.providers)
    degraded = get_profile("degraded")
    assert [p.name for p in degraded.providers if p.degradations] == ["openai"]
    demo = get_profile("demo")
    assert any(d.period_s for p in demo.providers for d in p.degradations), "the demo has a recurring bad spell"


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known profiles: demo, fast"):
        get_profile("nope")


def test_custom_profiles_can_be_built_and_registered() -> None:
    profile = Profile(
        "tiny",
        (
            ProviderProfile(
                "acme",
                (ModelProfile("m1", context_window=1_000, max_output=100),),
                latency=Latency(100, 200, 50),
                faults=Faults(error_rate=0.5),
                degradations=(Degradation(offset_s=5, duration_s=5, period_s=20, slowdown=2),),
            ),
        ),
    )
    register_profile("tiny", lambda: profile)
    provider = create_provider(ProviderConfig(name="acme", kind="sim", profile="tiny"))
    assert isinstance(provider, SimProvider)
    assert provider.spec.model_names == ["m1"]


def test_a_degradation_window_opens_and_repeats() -> None:
    spell = Degradation(offset_s=120, duration_s=120, period_s=600)
    assert not spell.active(119)
    assert spell.active(120) and spell.active(239)
    assert not spell.active(240)
    assert spell.active(600 + 130)
    once = Degradation(offset_s=10, duration_s=60)
    assert once.active(30) and not once.active(70 + 600)


def test_impossible_degradations_are_refused() -> None:
    with pytest.raises(ValueError, match="within its period"):
        Degradation(offset_s=500, duration_s=200, period_s=600)
    with pytest.raises(ValueError, match="duration_s"):
        Degradation(offset_s=0, duration_s=0)


async def test_chat_with_an_embedding_model_is_a_400_that_says_to_embed() -> None:
    from axtui.engine.compose import build_gateway, effective_providers
    from axtui.errors import InvalidRequest
    from axtui.types import Caller, ChatRequest

    gateway = await build_gateway(effective_providers(Settings()), record=False)
    try:
        with pytest.raises(InvalidRequest) as refused:
            await gateway.call(ChatRequest(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}]),
                               Caller(user="alice"))
    finally:
        await gateway.aclose()
    error = refused.value
    assert error.status_code == 400 and error.param == "model"
    assert "is an embedding model" in error.message and "POST /v1/embeddings" in error.message
    chat_models = error.message.partition("chat models served here")[2]
    assert "gpt-4o-mini" in chat_models and "text-embedding-3-small" not in chat_models
