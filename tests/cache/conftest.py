"""Fixtures for the cache tests: a store on disk, a fake clock, caches closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from axtui.cache import AnswerCache, BuiltinEmbedder
from axtui.clock import FakeClock
from axtui.config import CacheConfig
from axtui.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'ax.db'}")
    yield s
    s.close()


@pytest.fixture
async def make_cache(store: Store, clock: FakeClock) -> AsyncIterator[Callable[..., AnswerCache]]:
    """Builds caches over the test's store (or none), closed at the end."""
    made: list[AnswerCache] = []

    def factory(*, persistent: bool = True, embedder: Any = "builtin", **config: Any) -> AnswerCache:
        emb = BuiltinEmbedder() if embedder == "builtin" else embedder
        cache = AnswerCache(CacheConfig(**config), store if persistent else None, clock=clock, embedder=emb)
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        await cache.aclose()
