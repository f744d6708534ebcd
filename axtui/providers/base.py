"""The provider interface: chat, stream, embed, list models.

An adapter speaks one wire protocol through one pooled exchange
(`axtui.providers._exchange`): aiohttp on the network; httpx when given a
transport (tests pass ``transport=httpx.MockTransport``). It maps the
provider's usage into `Usage` and its failures into the `ProviderError`
tree, and it learns the provider's own rate-limit headers into
`Provider.upstream_limits`.
"""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from axtui.config import ProviderConfig
from axtui.errors import ProviderKeyMissing
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse

if TYPE_CHECKING:
    import httpx

    from axtui.providers._exchange import Exchange

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
    """An `httpx.AsyncClient` set up from a provider's config (timeouts, headers).

    The built-in adapters use it only over a given transport (tests pass
    ``httpx.MockTransport``); on the network they speak aiohttp directly.
    A plugin adapter may use it as its own pooled client.
    """
    import httpx

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
        self._exchange: Exchange | None = None

    @property
    def base_url(self) -> str:
        """The configured base URL, or the provider's public one."""
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def api_key(self, *, required: bool = True) -> str | None:
        """The key from the environment variable the config names.

        Raises:
            ProviderKeyMissing: the variable is named but unset, and a key is required.
        """
        env = self.config.api_key_env or self.default_key_env
        if not env:
            return None
        key = os.environ.get(env)
        if not key and required:
            raise ProviderKeyMissing(
                f"provider {self.name!r} needs an API key: set the environment variable {env}",
                provider=self.name,
            )
        return key or None

    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the key; adapters override for their scheme."""
        return {}

    @property
    def exchange(self) -> Exchange:
        """The pooled exchange, made on first use: aiohttp, or httpx over the given transport."""
        if self._exchange is None:
            from axtui.providers._exchange import make_exchange

            self._exchange = make_exchange(self.config, base_url=self.base_url, transport=self._transport)
        return self._exchange

    @abc.abstractmethod
    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer."""

    @abc.abstractmethod
    def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks; the last ones carry finish reason and usage."""

    #: Whether `embed` takes token ids (lists of ints, as OpenAI's API does) beside texts; the engine sends
    #: token ids only to adapters that say so, and the call moves on from the others.
    embeds_token_ids: bool = False

    @abc.abstractmethod
    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        """Vectors for ``inputs`` (texts; token ids too where `embeds_token_ids`).

        Adapters whose models can shorten their vectors also take a keyword
        ``dimensions``; the engine passes it only when the caller set it.
        """

    @abc.abstractmethod
    async def list_models(self) -> list[str]:
        """The models the provider says it serves."""

    def speaks(self, api: str, model: str = "") -> bool:
        """Whether this provider serves ``api`` (``responses``) natively for ``model`` (the deployment's
        upstream model; any, when left out), so a request that came through it goes upstream as sent
        (`axtui.types.NativeRequest`); otherwise it is translated."""
        return False

    async def count_tokens(self, request: ChatRequest, deployment: Deployment) -> int | None:
        """The provider's own count of the request's input tokens, or None when it offers none.

        Only providers with a counting endpoint (Anthropic) override this;
        the caller then falls back to ax's estimate and says so.
        """
        return None

    async def aclose(self) -> None:
        """Close the pooled exchange; a later call opens a new one."""
        if self._exchange is not None:
            exchange, self._exchange = self._exchange, None
            await exchange.aclose()
