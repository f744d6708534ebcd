"""Making a rate limiter from the settings: which backend, which store, which providers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import RateLimitConfig, Settings
from axtui.errors import ConfigError
from axtui.ratelimit.backends.base import Backend
from axtui.ratelimit.limiter import RateLimiter

__all__ = ["build_limiter", "effective_backend", "make_backend", "open_limiter"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def effective_backend(config: RateLimitConfig, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``(backend, redis_url)`` in force.

    ``AX_REDIS_URL`` wins over ``[ratelimit] redis_url``; with a URL and no
    explicit ``backend``, the backend is ``redis``.

    Raises:
        ConfigError: Redis is chosen without a URL, or the URL is not a Redis URL.
    """
    env = os.environ if environ is None else environ
    url = env.get("AX_REDIS_URL") or config.redis_url
    backend = config.backend or ("redis" if url else "store")
    if backend == "redis":
        if not url:
            raise ConfigError('[ratelimit] backend = "redis" needs a Redis URL: set AX_REDIS_URL or [ratelimit] '
                              "redis_url, such as redis://127.0.0.1:6379/0")
        if not url.startswith(_REDIS_SCHEMES):
            from axtui.ratelimit.backends.redis import redact_url

            raise ConfigError(f"the rate-limit Redis URL {redact_url(url)!r} is not a Redis URL; write "
                              "redis://HOST:PORT/DB (rediss:// for TLS, unix:///path/to/socket)")
    return backend, url


def make_backend(
    config: RateLimitConfig, store: Any = None, environ: Mapping[str, str] | None = None, *, clock: Clock = SYSTEM_CLOCK
) -> Backend:
    """The backend the settings name (``store`` needs an open store; ``clock`` is the limiter's).

    Raises:
        ConfigError: the settings cannot work (no store for ``store``, no URL for ``redis``).
    """
    backend, url = effective_backend(config, environ)
    if backend == "memory":
        from axtui.ratelimit.backends.memory import MemoryBackend

        return MemoryBackend()
    if backend == "redis":
        from axtui.ratelimit.backends.redis import RedisBackend

        return RedisBackend(url)  # type: ignore[arg-type]
    if store is None:
        raise ConfigError('[ratelimit] backend = "store" keeps limits in the database, but none is open')
    from axtui.ratelimit.backends.store import StoreBackend

    return StoreBackend(store, clock=clock)


def build_limiter(
    settings: Settings,
    *,
    store: Any = None,
    clock: Clock = SYSTEM_CLOCK,
    providers: Mapping[str, Any] | None = None,
    bus: Any = None,
) -> RateLimiter:
    """The engine's limiter: backend from the settings, limits from config and store.

    Args:
        settings: the settings (``[ratelimit]`` is read).
        store: the open store (per-subject limits; state for the ``store`` backend).
        clock: the clock decisions use.
        providers: provider instances, whose upstream limits become provider limits.
        bus: an event bus; new settings published on ``config`` replace the defaults.
    """
    config = settings.ratelimit
    limiter = RateLimiter(make_backend(config, store, clock=clock), config, store=store, clock=clock, providers=providers)
    if bus is not None:
        bus.subscribe(limiter.on_event)
    return limiter


@asynccontextmanager
async def open_limiter(
    settings: Settings | None = None, *, store: Any = None, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[RateLimiter]:
    """A limiter for front-ends that run no gateway (the CLI, a dashboard), closed on exit.

    Opens the default store when none is given (and closes it after).
    """
    from axtui.config import load_settings

    settings = settings or load_settings()
    owns = store is None
    if store is None:
        from axtui.store import Store

        store = Store.open()
    limiter = None
    try:
        limiter = build_limiter(settings, store=store, clock=clock)
        yield limiter
    finally:
        if limiter is not None:
            await limiter.aclose()
        if owns:
            store.close()
