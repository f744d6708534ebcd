"""Fixtures of the adapter tests: providers wired to a fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from axtui.config import ProviderConfig
from axtui.providers.base import Provider

from .fake_upstream import Upstream


@pytest.fixture
async def make_provider() -> AsyncIterator[Callable[..., Any]]:
    """Build a provider of a class over an `Upstream`; closed after the test."""
    made: list[Provider] = []

    def make(cls: type[Provider], upstream: Upstream, **config: Any) -> Any:
        settings = ProviderConfig(name=config.pop("name", "acme"), kind=cls.kind, **config)
        provider = cls(settings, transport=upstream.transport())
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()
