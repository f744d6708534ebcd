"""Provider kinds by name: built-in and plugin kinds register the same way.

A plugin package declares an entry point in the ``axtui.providers`` group
whose object is a `Provider` subclass; it is loaded the first time a kind
is looked up that is not built in.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from axtui.config import ProviderConfig
from axtui.errors import ConfigError
from axtui.providers.base import Provider

__all__ = ["create_provider", "kind_class", "kinds", "register"]

_KINDS: dict[str, type[Provider]] = {}
_BUILTIN = {
    "openai": "axtui.providers.openai:OpenAIProvider",
    "anthropic": "axtui.providers.anthropic:AnthropicProvider",
    "gemini": "axtui.providers.gemini:GeminiProvider",
    "azure": "axtui.providers.azure:AzureProvider",
    "vertex": "axtui.providers.vertex:VertexProvider",
    "bedrock": "axtui.providers.bedrock:BedrockProvider",
    "sim": "axtui.providers.sim:SimProvider",
}
_plugins_loaded = False


def register(kind: str, cls: type[Provider]) -> None:
    """Make ``kind`` available to the config's ``[[providers]] kind = …``."""
    _KINDS[kind] = cls


def _load(kind: str) -> type[Provider] | None:
    global _plugins_loaded
    if kind in _KINDS:
        return _KINDS[kind]
    if kind in _BUILTIN:
        module, _, attr = _BUILTIN[kind].partition(":")
        register(kind, getattr(import_module(module), attr))
        return _KINDS[kind]
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in entry_points(group="axtui.providers"):
            register(ep.name, ep.load())
    return _KINDS.get(kind)


def kinds() -> list[str]:
    """Every kind known now: built-in ones and loaded plugins."""
    _load("")
    return sorted(set(_BUILTIN) | set(_KINDS))


def kind_class(kind: str) -> type[Provider] | None:
    """The adapter class of ``kind``, or None when no built-in kind or plugin has that name."""
    return _load(kind)


def create_provider(config: ProviderConfig, **kwargs: Any) -> Provider:
    """An adapter for one configured provider.

    Raises:
        ConfigError: the kind is unknown; the message lists the known ones.
    """
    cls = _load(config.kind)
    if cls is None:
        raise ConfigError(
            f"provider {config.name!r} has unknown kind {config.kind!r}; known kinds: {', '.join(kinds())}"
        )
    return cls(config, **kwargs)
