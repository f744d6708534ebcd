"""Checks of the configured providers that need the provider registry (config.py cannot import it)."""

from __future__ import annotations

import os

from axtui.config import Settings, where_in_file
from axtui.errors import ConfigError

__all__ = ["check_providers"]


def check_providers(settings: Settings) -> list[str]:
    """Refuse a provider of an unknown kind; return a warning for each enabled one whose key variable is unset.

    Raises:
        ConfigError: a provider's ``kind`` is not a built-in kind or plugin;
            the message names the line and the known kinds.
    """
    from axtui.providers.registry import kind_class, kinds

    warnings: list[str] = []
    for i, provider in enumerate(settings.providers):
        cls = kind_class(provider.kind)
        if cls is None:
            raise ConfigError(
                f"{where_in_file(('providers', i, 'kind'))}: provider {provider.name!r} has unknown kind "
                f"{provider.kind!r}; known kinds: {', '.join(kinds())}"
            )
        # A provider pointed at its own server (Ollama, vLLM) may need no key unless the config names one.
        env = provider.api_key_env or (None if provider.base_url else cls.default_key_env)
        if provider.enabled and env and not os.environ.get(env):
            warnings.append(f"provider {provider.name!r} needs its key in the environment variable {env}, which is "
                            "not set: calls to it fail until it is")
    return warnings
