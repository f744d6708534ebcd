"""The provider interface: chat, stream, embed, list models.

An adapter speaks one wire protocol over one pooled `httpx.AsyncClient`
(aiohttp transport by default; tests pass ``transport=httpx.MockTransport``).
It maps the provider's usage into `Usage` and its failures into the
`ProviderError` tree, and it learns the provider's own rate-limit headers
into `Provider.upstream_limits`.
"""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

import httpx

from axtui.config import ProviderConfig
from axtui.errors import ProviderAuthError
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse

__all__ = ["Provider", "UpstreamLimits", "make_client"]


@dataclass(slots=True)
class UpstreamLimits:
    """What the provider last said about its own limits (x-ratelimit-*)."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    updated_at: float = 0.0


def make_client(
    config: ProviderConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """One pooled client for a provider: aiohttp transport unless one is given."""
    if transport is None:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport()
    timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
    return httpx.AsyncClient(
        base_url=base_url,
        headers={**(headers or {}), **config.headers},
        timeout=timeout,
        transport=transport,
    )


class Provider(abc.ABC):
    """One configured provider account.

    Subclasses set ``kind`` and implement the four operations. ``deployment``
    arguments name the upstream model to call (``deployment.upstream_model``).
    """

    kind: ClassVar[str] = ""
    #: Environment variable read for the key when the config names none.
    default_key_env: ClassVar[str | None] = None
    #: Base URL used when the config names none.
    default_base_url: ClassVar[str] = ""

    def __init__(self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.name = config.name
        self.upstream_limits = UpstreamLimits()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        """The configured base URL, or the provider's public one."""
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def api_key(self, *, required: bool = True) -> str | None:
        """The key from the environment variable the config names.

        Raises:
            ProviderAuthError: the variable is named but unset, and a key is required.
        """
        env = self.config.api_key_env or self.default_key_env
        if not env:
            return None
        key = os.environ.get(env)
        if not key and required:
            raise ProviderAuthError(
                f"provider {self.name!r} needs an API key: set the environment variable {env}",
                provider=self.name,
            )
        return key or None

    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the key; adapters override for their scheme."""
        return {}

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client, made on first use (inside the running loop)."""
        if self._client is None or self._client.is_closed:
            self._client = make_client(self.config, transport=self._transport, base_url=self.base_url)
        return self._client

    @abc.abstractmethod
    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer."""

    @abc.abstractmethod
    def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks; the last ones carry finish reason and usage."""

    @abc.abstractmethod
    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        """Vectors for ``inputs``."""

    @abc.abstractmethod
    async def list_models(self) -> list[str]:
        """The models the provider says it serves."""

    async def aclose(self) -> None:
        """Close the pooled client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
