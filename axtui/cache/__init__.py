"""The response cache: exact and semantic, two tiers, TTL, eviction, invalidation.

`build_cache` makes the engine's cache from the ``[cache]`` settings;
`stats`, `invalidate` and `clear` work on the store for the CLI, the server
and the dashboard; `evaluate` measures the semantic matcher on labelled
pairs (``ax cache eval``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from axtui.cache.admin import CacheStats, clear, invalidate, stats
from axtui.cache.eval import EvalReport, evaluate, read_pairs
from axtui.cache.guards import GuardFeatures, features, mismatch
from axtui.cache.keys import cache_key, partition_key, scope_for
from axtui.cache.policy import EffectivePolicy, PolicyBook, directive_for
from axtui.cache.semantic import BuiltinEmbedder, Embedder, ProviderEmbedder
from axtui.cache.service import AnswerCache, LiveCounters
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import CacheConfig
from axtui.errors import ConfigError
from axtui.ports import NullCache, ResponseCache
from axtui.store import Store
from axtui.types import Caller

__all__ = [
    "AnswerCache",
    "BuiltinEmbedder",
    "CacheStats",
    "EffectivePolicy",
    "EmbedCall",
    "Embedder",
    "EvalReport",
    "GuardFeatures",
    "LiveCounters",
    "PolicyBook",
    "ProviderEmbedder",
    "build_cache",
    "cache_key",
    "clear",
    "directive_for",
    "embedder_model",
    "evaluate",
    "features",
    "invalidate",
    "make_embedder",
    "mismatch",
    "partition_key",
    "read_pairs",
    "scope_for",
    "stats",
]

#: The gateway's embedding entry point: (texts, model, caller) -> one vector per text.
EmbedCall = Callable[[list[str], str, Caller], Awaitable[list[list[float]]]]


def embedder_model(config: CacheConfig) -> str | None:
    """The model (or ``provider/model`` deployment) the provider embedder calls, if configured."""
    if config.embedder != "provider" or not config.embedder_model:
        return None
    if config.embedder_provider:
        return f"{config.embedder_provider}/{config.embedder_model}"
    return config.embedder_model


def make_embedder(name: str, embed: EmbedCall | None) -> Embedder:
    """An embedder by name: ``builtin``, or any embedding model the gateway serves.

    Raises:
        ConfigError: a model was named but no gateway is there to call it.
    """
    if name == "builtin":
        return BuiltinEmbedder()
    if embed is None:
        raise ConfigError(f"the embedder {name!r} is a model, and calling it needs a gateway")

    async def call(texts: list[str], caller: Caller) -> list[list[float]]:
        return await embed(texts, name, caller)

    return ProviderEmbedder(name, call)


def build_cache(
    config: CacheConfig,
    store: Store | None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    embed: EmbedCall | None = None,
    closers: list[Any] | None = None,
    behind: Callable[[str], Sequence[str]] | None = None,
) -> ResponseCache:
    """The engine's response cache for these settings.

    Args:
        config: the ``[cache]`` settings.
        store: the store for the persistent tier (None: memory only).
        clock: for TTLs.
        embed: the gateway's embedding call, for ``embedder = "provider"``.
        closers: where to register the cache's close (the gateway runs them on close).
        behind: the models an alias or a deployment stands for (`Catalog.models_behind`), whose
            cache policies apply to it.

    Returns:
        `NullCache` when no model has the cache on, else an `AnswerCache`.

    Raises:
        ConfigError: ``embedder = "provider"`` without a way to call the model.
    """
    rules = config.models.values()
    if not config.enabled and not any(p.enabled for p in rules):
        return NullCache()
    embedder: Embedder | None = None
    if config.semantic or any(p.semantic for p in rules):
        embedder = make_embedder(embedder_model(config) or "builtin", embed)
    cache = AnswerCache(config, store, clock=clock, embedder=embedder, behind=behind)
    if closers is not None:
        closers.append(cache.aclose)
    return cache
