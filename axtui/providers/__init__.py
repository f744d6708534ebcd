"""Providers: one interface, a registry, and the built-in adapters."""

from axtui.providers.base import Provider, UpstreamLimits, make_client
from axtui.providers.registry import create_provider, kinds, register

__all__ = ["Provider", "UpstreamLimits", "create_provider", "kinds", "make_client", "register"]
