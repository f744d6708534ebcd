"""Azure OpenAI: the OpenAI adapter, addressed by deployment and API version.

``base_url`` is the resource endpoint (``https://NAME.openai.azure.com``);
a call to model ``M`` goes to
``/openai/deployments/{deployments[M] or M}/chat/completions?api-version=…``
(and ``/embeddings``). The body, stream and usage are OpenAI's. With
``responses = "native"``, ``/v1/responses`` goes to the resource's v1 API,
``/openai/v1/responses`` with the deployment as the body's model (no
``api-version``); otherwise it is served as chat completions.

Authentication: the ``api-key`` header from ``api_key_env`` (default
``AZURE_API_KEY``); when that variable is unset, an Entra ID bearer token
from azure-identity's ``DefaultAzureCredential`` (the optional ``azure``
extra: environment, workload or managed identity, Azure CLI…).

Errors: Azure's ``{"error": {"code", "message"}}`` bodies; a 429 says when
to retry in ``retry-after-ms``/``Retry-After`` or only in its message
("Please retry after 20 seconds"); a prompt its content filter refused is a
400 with code ``content_filter``, and an answer it cut short ends with
finish reason ``content_filter``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from axtui.clock import Clock
from axtui.config import ProviderConfig
from axtui.errors import ConfigError, ProviderAuthError, ProviderBadRequest, ProviderError, ProviderRateLimited
from axtui.providers._cloud import TokenCache, import_extra
from axtui.providers._wire import SSEEvent, parse_error_body
from axtui.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_API_VERSION", "ENTRA_SCOPE", "AzureProvider"]

#: The GA data-plane version used when the config names none.
DEFAULT_API_VERSION = "2024-10-21"
#: The scope an Entra ID token for Azure OpenAI is asked for.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

_DEPLOYMENT_OPERATIONS = ("/chat/completions", "/embeddings")
#: Served by the resource's v1 API (``/openai/v1/responses``), when ``responses = "native"``.
_V1_RESPONSES = "/responses"
_RETRY_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


def _deployment_of(payload: Any) -> str:
    return str(payload.get("model", "")) if isinstance(payload, Mapping) else ""


class AzureProvider(OpenAIProvider):
    """One Azure OpenAI resource.

    Raises (on construction):
        ConfigError: ``base_url`` (the resource endpoint) is missing.
    """

    kind: ClassVar[str] = "azure"
    #: Azure OpenAI's embeddings take token ids, as OpenAI's do.
    embeds_token_ids = True
    default_key_env: ClassVar[str | None] = "AZURE_API_KEY"
    default_base_url: ClassVar[str] = ""
    stream_end_marker: ClassVar[str] = "its end marker (data: [DONE])"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not config.base_url:
            raise ConfigError(
                f"provider {config.name!r} (azure) has no base_url: set it to the resource endpoint, "
                "like base_url = \"https://my-resource.openai.azure.com\""
            )
        super().__init__(config, transport=transport, clock=clock)
        self._entra: TokenCache | None = None

    @property
    def base_url(self) -> str:
        """The resource endpoint (a trailing ``/openai``, as some tools write it, is dropped)."""
        return super().base_url.removesuffix("/openai")

    @property
    def api_version(self) -> str:
        """The ``api-version`` sent with every call."""
        return self.config.api_version or DEFAULT_API_VERSION

    def deployment_for(self, model: str) -> str:
        """The Azure deployment serving ``model``: the configured one, else a deployment named like the model."""
        return self.config.deployments.get(model, model)

    def speaks(self, api: str, model: str = "") -> bool:
        """The Responses API natively only when ``responses = "native"`` (the resource's v1 API serves it
        in some regions, for some models); otherwise it is served translated, as chat completions."""
        return api == "responses" and self.config.responses == "native"

    @property
    def auth_headers_sent(self) -> bool:
        """Always: Azure refuses calls without a key or token."""
        return True

    def _key(self) -> str | None:
        env = self.key_env
        return os.environ.get(env) or None if env else None

    def auth_headers(self) -> dict[str, str]:
        """``api-key`` when its variable is set, else the Entra ID token fetched last."""
        key = self._key()
        if key:
            return {"api-key": key}
        if self._entra is not None and self._entra.token:
            return {"Authorization": f"Bearer {self._entra.token}"}
        return {}

    def _entra_cache(self) -> TokenCache:
        if self._entra is None:
            identity = import_extra(
                "azure.identity", extra="azure", provider=self.name,
                purpose=f"Entra ID sign-in (or set {self.key_env} to an API key of the resource)",
            )
            credential = identity.DefaultAzureCredential()

            def fetch() -> tuple[str, float | None]:
                try:
                    token = credential.get_token(ENTRA_SCOPE)
                except Exception as exc:  # azure-identity raises its own tree; any failure is a sign-in failure
                    raise ProviderAuthError(
                        f"provider {self.name!r} has no API key ({self.key_env} is unset) and Entra ID sign-in "
                        f"failed: {exc}; set {self.key_env}, or sign in (az login, a managed identity, or "
                        "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)",
                        provider=self.name,
                    ) from exc
                return str(token.token), float(token.expires_on)

            self._entra = TokenCache(fetch, self.clock)
        return self._entra

    async def _authenticate(self) -> None:
        if not self._key():
            await self._entra_cache().refresh()

    def _route(self, path: str, payload: Any, params: Mapping[str, str] | None) -> tuple[str, Any, dict[str, str]]:
        """Path, body and query of a call: by deployment with ``api-version``, or on the v1 API (Responses)."""
        if path == _V1_RESPONSES:
            # The v1 API: the deployment is the body's model, and no dated api-version is sent.
            return "/openai/v1" + path, {**payload, "model": self.deployment_for(_deployment_of(payload))}, \
                dict(params or {})
        if path in _DEPLOYMENT_OPERATIONS:
            path = f"/openai/deployments/{quote(self.deployment_for(_deployment_of(payload)), safe='')}{path}"
        else:
            path = "/openai" + path
        return path, payload, {**(params or {}), "api-version": self.api_version}

    async def _request(
        self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One exchange at the deployment's (or the resource's) path, with ``api-version``."""
        await self._authenticate()
        path, payload, query = self._route(path, payload, params)
        return await super()._request(method, path, payload=payload, params=query, headers=headers)

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Any, *, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """A streamed call at the deployment's path, a token fetched first when one is needed."""
        await self._authenticate()
        path, payload, query = self._route(path, payload, params)
        async with super()._open_stream(path, payload, params=query, headers=headers) as events:
            yield events

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        error = super()._status_error(status, headers, body)
        info = parse_error_body(body)
        if isinstance(error, ProviderAuthError) and not self._key():
            head = str(error).rpartition("; ")[0] or str(error)
            return ProviderAuthError(
                f"{head}; the Entra ID token was refused: give the signed-in identity the Cognitive Services "
                f"OpenAI User role on the resource, or set {self.key_env} to a key of the resource",
                provider=self.name, http_status=status)
        if isinstance(error, ProviderRateLimited) and error.retry_after is None:
            found = _RETRY_IN_MESSAGE.search(info.message)
            if found:
                seconds = float(found.group(1))
                return ProviderRateLimited(f"{error} (retry after {seconds:g}s)", provider=self.name,
                                           http_status=status, retry_after=seconds)
        if status == 400 and (info.code == "content_filter" or "ResponsibleAIPolicyViolation" in body.decode(
                "utf-8", "replace")):
            return ProviderBadRequest(
                f"provider {self.name!r} refused the prompt: Azure's content filter flagged it "
                f"({info.message or 'content_filter'}); rephrase it, or ask the resource's owner about its "
                "content filtering policy",
                provider=self.name,
                http_status=status,
            )
        if status == 404 and info.code == "DeploymentNotFound":
            return ProviderBadRequest(
                f"provider {self.name!r} has no such deployment ({info.message}); map the model to a "
                "deployment of the resource in this provider's deployments table",
                provider=self.name,
                http_status=status,
            )
        return error

    async def list_models(self) -> list[str]:
        """The configured models (those in ``models`` and ``deployments``), else the resource's model list."""
        configured = sorted({*self.config.models, *self.config.deployments})
        if configured:
            return configured
        return await super().list_models()
