"""What the cloud adapters share: optional extras and short-lived tokens.

Azure's Entra ID tokens and Google's access tokens come from libraries that
block (they may call a metadata server or read a file); `TokenCache` fetches
them in a worker thread, one fetch at a time, and keeps each until shortly
before it expires.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from types import ModuleType

from axtui.clock import Clock
from axtui.errors import ConfigError

__all__ = ["TokenCache", "import_extra"]

#: A token is renewed this long before the expiry its issuer named.
REFRESH_MARGIN_S = 300.0


def import_extra(module: str, *, extra: str, provider: str, purpose: str) -> ModuleType:
    """Import ``module`` from an optional extra, or say how to install it.

    Raises:
        ConfigError: the module is not installed; the message names the
            ``pip install 'axtui[extra]'`` that adds it.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"provider {provider!r} needs {module} for {purpose}, which is not installed; "
            f"install it with: pip install 'axtui[{extra}]'"
        ) from None


class TokenCache:
    """A bearer token fetched off the event loop and reused until near its expiry.

    Args:
        fetch: blocking; returns the token and its expiry (epoch seconds,
            None when the issuer named none: then it is fetched again after
            ``REFRESH_MARGIN_S``).
        clock: tells the time.
    """

    def __init__(self, fetch: Callable[[], tuple[str, float | None]], clock: Clock) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str:
        """The token last fetched (empty before the first `refresh`)."""
        return self._token

    async def refresh(self) -> str:
        """The current token, fetched in a thread when missing or about to expire."""
        if self._token and self._clock.now() < self._expires - REFRESH_MARGIN_S:
            return self._token
        async with self._lock:
            if self._token and self._clock.now() < self._expires - REFRESH_MARGIN_S:
                return self._token
            token, expires = await asyncio.to_thread(self._fetch)
            self._token = token
            self._expires = expires if expires is not None else self._clock.now() + 2 * REFRESH_MARGIN_S
            return token
