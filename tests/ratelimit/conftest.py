"""Fixtures for rate-limit tests: limiters on each backend, a fake provider, Redis when CI has one."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from axtui.clock import FakeClock
from axtui.config import RateLimitConfig
from axtui.ratelimit.backends.memory import MemoryBackend
from axtui.ratelimit.limiter import RateLimiter
from axtui.store import Store

REDIS_SKIP = "no Redis for tests: set AX_TEST_REDIS_URL=redis://127.0.0.1:PORT/0 (CI starts one)"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open()
    yield s
    s.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis with ax's rate-limit keys cleared before and after the test."""
    url = os.environ.get("AX_TEST_REDIS_URL")
    if not url:
        pytest.skip(REDIS_SKIP)
    import redis

    client = redis.Redis.from_url(url)

    def wipe() -> None:
        keys = list(client.scan_iter(match="ax:rl:*", count=1000))
        if keys:
            client.delete(*keys)

    wipe()
    yield url
    wipe()
    client.close()


@pytest.fixture
async def make_limiter(clock: FakeClock, store: Store, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., RateLimiter]]:
    """``make_limiter(backend, **config)``: a limiter on ``memory``, ``store`` or ``redis``."""
    made: list[RateLimiter] = []

    def factory(backend: str = "memory", providers: Any = None, **config: Any) -> RateLimiter:
        cfg = RateLimitConfig(**config)
        if backend == "memory":
            be: Any = MemoryBackend()
        elif backend == "store":
            from axtui.ratelimit.backends.store import StoreBackend

            be = StoreBackend(store, clock=clock)
        else:
            from axtui.ratelimit.backends.redis import RedisBackend

            be = RedisBackend(request.getfixturevalue("redis_url"))
        limiter = RateLimiter(be, cfg, store=store, clock=clock, providers=providers)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.aclose()
