"""The demo fleet: six simulated providers that differ in price, speed and skill.

ax serves this fleet when no provider is configured (`demo_providers`), and
`ax sim serve` speaks for it over HTTP. Model names are real, so the shipped
price sheet prices every call; the local provider's models are free
(`demo_price_overrides`).

| provider  | region       | models                                                     | character |
| --------- | ------------ | ---------------------------------------------------------- | --------- |
| openai    | us-east      | gpt-4o, gpt-4o-mini, text-embedding-3-small                | the reference: quick, rare errors, automatic prompt caching |
| azure     | eu-west      | gpt-4o, gpt-4o-mini                                        | the same models ~1.6× slower; every 10 min a 2 min bad spell (3× slower, 30 % 503s) |
| anthropic | us-west      | claude-sonnet-4-5, claude-haiku-4-5                        | 200k context, JSON schemas but no `json_object`, explicit caching (reads and writes) |
| gemini    | us-central   | gemini-2.5-flash, gemini-2.5-pro, text-embedding-004       | 1M context, thinking tokens, the most 429s of the paid ones |
| groq      | us-east      | llama-3.3-70b-versatile                                    | very fast (TTFT ~150 ms, 350 tokens/s), no vision, 429-prone |
| local     | local        | llama-3.3-70b-versatile, llama3.1:8b, nomic-embed-text     | Ollama-like: free, slow, 8k context, no vision |

Several deployments serve each popular logical model (gpt-4o and
gpt-4o-mini on openai and azure; llama-3.3-70b-versatile on groq and
local), and the aliases of `demo_aliases` (``fast``, ``smart``, ``cheap``)
span providers, so routing has real choices to make.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from axtui.config import PriceOverride, ProviderConfig
from axtui.providers.sim.spec import Degradation, Faults, Latency, ModelProfile, ProviderProfile

__all__ = [
    "DEMO_PROFILE",
    "demo_aliases",
    "demo_fleet",
    "demo_price_overrides",
    "demo_providers",
]

#: The profile name demo provider configs carry.
DEMO_PROFILE = "demo"

_GPT_4O = ModelProfile("gpt-4o", context_window=128_000, max_output=16_384, vision=True)
_GPT_4O_MINI = ModelProfile(
    "gpt-4o-mini", context_window=128_000, max_output=16_384, vision=True, latency=Latency(350, 900, 120)
)
_OPENAI_EMBED = ModelProfile(
    "text-embedding-3-small", context_window=8_191, max_output=1, tools=False, json_mode=False, embedding_dim=256
)
# Claude answers JSON schemas (structured outputs); its API has no `json_object`,
# which the provider (api="anthropic") refuses, as ax's Anthropic adapter does.
_SONNET = ModelProfile("claude-sonnet-4-5", context_window=200_000, max_output=64_000, vision=True)
_HAIKU = ModelProfile(
    "claude-haiku-4-5",
    context_window=200_000,
    max_output=64_000,
    vision=True,
    latency=Latency(450, 1_100, 150),
)
_FLASH = ModelProfile("gemini-2.5-flash", context_window=1_048_576, max_output=65_536, vision=True, reasoning=True)
_PRO = ModelProfile(
    "gemini-2.5-pro",
    context_window=1_048_576,
    max_output=65_536,
    vision=True,
    reasoning=True,
    latency=Latency(1_800, 4_500, 80),
)
_GEMINI_EMBED = ModelProfile(
    "text-embedding-004", context_window=2_048, max_output=1, tools=False, json_mode=False, embedding_dim=256
)
_LLAMA_70B = ModelProfile("llama-3.3-70b-versatile", context_window=131_072, max_output=32_768)
_LOCAL_LLAMA_70B = ModelProfile(
    "llama-3.3-70b-versatile", context_window=8_192, max_output=2_048, latency=Latency(1_500, 4_000, 12)
)
_LOCAL_LLAMA_8B = ModelProfile("llama3.1:8b", context_window=8_192, max_output=2_048, latency=Latency(300, 800, 45))
_LOCAL_EMBED = ModelProfile(
    "nomic-embed-text", context_window=2_048, max_output=1, tools=False, json_mode=False, embedding_dim=256
)

# Rare failures of a healthy paid API: about 1 call in 60 goes wrong somehow.
_HEALTHY = Faults(
    error_rate=0.005, rate_limit_rate=0.008, timeout_rate=0.001, malformed_rate=0.001, cut_rate=0.002, hang_s=10.0
)


def demo_fleet() -> tuple[ProviderProfile, ...]:
    """The demo fleet's providers with realistic latency and rare faults."""
    return (
        ProviderProfile(
            "openai",
            (_GPT_4O, _GPT_4O_MINI, _OPENAI_EMBED),
            region="us-east",
            latency=Latency(450, 1_200, 90),
            faults=_HEALTHY,
            prompt_caching="automatic",
        ),
        ProviderProfile(
            "azure",
            (_GPT_4O, replace(_GPT_4O_MINI, latency=Latency(550, 1_500, 75))),
            region="eu-west",
            latency=Latency(700, 2_000, 60),
            faults=_HEALTHY,
            # Two bad minutes in every ten, starting two minutes into a run,
            # so a demo shows routing moving traffic away and back.
            degradations=(Degradation(offset_s=120, duration_s=120, period_s=600, slowdown=3.0, error_rate=0.3),),
            prompt_caching="automatic",
        ),
        ProviderProfile(
            "anthropic",
            (_SONNET, _HAIKU),
            region="us-west",
            latency=Latency(900, 2_200, 70),
            faults=_HEALTHY,
            prompt_caching="explicit",
            api="anthropic",
        ),
        ProviderProfile(
            "gemini",
            (_FLASH, _PRO, _GEMINI_EMBED),
            region="us-central",
            latency=Latency(600, 1_500, 180),
            faults=Faults(
                error_rate=0.006, rate_limit_rate=0.02, timeout_rate=0.001, malformed_rate=0.001, cut_rate=0.002,
                hang_s=10.0,
            ),
            prompt_caching="automatic",
            api="gemini",
        ),
        ProviderProfile(
            "groq",
            (_LLAMA_70B,),
            region="us-east",
            latency=Latency(150, 400, 350),
            faults=Faults(error_rate=0.004, rate_limit_rate=0.03, timeout_rate=0.001, cut_rate=0.002, hang_s=10.0,
                          retry_after_s=5.0),
        ),
        ProviderProfile(
            "local",
            (_LOCAL_LLAMA_70B, _LOCAL_LLAMA_8B, _LOCAL_EMBED),
            region="local",
            latency=Latency(800, 2_000, 25),
            faults=Faults(error_rate=0.002, timeout_rate=0.002, hang_s=10.0),
        ),
    )


def demo_providers() -> list[ProviderConfig]:
    """Provider configs for the demo fleet: kind ``sim``, profile ``demo``.

    Returns:
        One config per demo provider, with its region and models set, in
        the order of the table above.
    """
    return [
        ProviderConfig(name=p.name, kind="sim", profile=DEMO_PROFILE, region=p.region, models=p.model_names)
        for p in demo_fleet()
    ]


def demo_aliases() -> dict[str, list[str]]:
    """The demo's aliases: each names logical models across providers.

    Returns:
        ``fast`` (quick first tokens), ``smart`` (the strongest models) and
        ``cheap`` (the lowest price per token first).
    """
    return {
        "fast": ["llama-3.3-70b-versatile", "gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"],
        "smart": ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"],
        "cheap": ["llama3.1:8b", "gemini-2.5-flash", "gpt-4o-mini", "llama-3.3-70b-versatile"],
    }


def demo_price_overrides() -> dict[str, PriceOverride]:
    """The local provider's models at $0, keyed ``local/<model>``.

    The key is a deployment id (``provider/upstream_model``): the same
    model is billed at list price on groq and free on local.
    """
    local = next(p for p in demo_fleet() if p.name == "local")
    return {f"local/{name}": PriceOverride(input=Decimal(0), output=Decimal(0)) for name in local.model_names}
