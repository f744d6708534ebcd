"""Google Vertex AI: Gemini models (and Anthropic's Claude) in a Google Cloud project.

Gemini calls are the Gemini adapter's bodies, usage and streams at
Vertex's address::

    https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}
        /publishers/google/models/{model}:generateContent
        (:streamGenerateContent?alt=sse, :predict for embeddings)

(``location = "global"`` uses ``https://aiplatform.googleapis.com``;
``endpoint_url`` replaces the host part). A model whose name starts with
``claude`` is Anthropic's on Vertex: the Messages API body without
``model`` and with ``anthropic_version = "vertex-2023-10-16"``, sent to
``publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict``).

Authentication: the access token in the variable ``api_key_env`` names,
when set (``gcloud auth print-access-token``; it expires within the hour);
else a bearer token from google-auth's application default credentials (``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account
file, ``gcloud auth application-default login``, or the metadata server
of the machine); the optional ``vertex`` extra. Tokens are fetched and
refreshed in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from axtui.clock import Clock
from axtui.config import ProviderConfig
from axtui.errors import ConfigError, ProviderAuthError, ProviderError
from axtui.providers._cloud import TokenCache, import_extra
from axtui.providers._wire import SHAPE_ERRORS, SSEEvent
from axtui.providers.anthropic import AnthropicProvider
from axtui.providers.gemini import GeminiProvider
from axtui.tokens import estimate_tokens
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage, token_count

if TYPE_CHECKING:
    import httpx

__all__ = ["ANTHROPIC_VERTEX_VERSION", "SCOPE", "VertexProvider"]

#: The scope a token for Vertex AI is asked for.
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The ``anthropic_version`` Claude on Vertex takes in the body.
ANTHROPIC_VERTEX_VERSION = "vertex-2023-10-16"
_DEFAULT_LOCATION = "us-central1"


def _is_claude(model: str) -> bool:
    return model.startswith("claude")


class _Credentials:
    """google-auth's application default credentials, refreshed in a thread by a `TokenCache`."""

    def __init__(self, provider: str, clock: Clock) -> None:
        self._provider = provider
        self.project: str | None = None
        auth = import_extra("google.auth", extra="vertex", provider=provider,
                            purpose="Google Cloud credentials (application default credentials)")
        try:
            self._credentials, self.project = auth.default(scopes=[SCOPE])
        except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
            raise ProviderAuthError(
                f"provider {provider!r} found no Google Cloud credentials ({exc}); set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account file, or run "
                "gcloud auth application-default login",
                provider=provider,
            ) from exc
        self.tokens = TokenCache(self._fetch, clock)

    def _fetch(self) -> tuple[str, float | None]:
        credentials = self._credentials
        if not credentials.valid:
            transport = import_extra("google.auth.transport.requests", extra="vertex", provider=self._provider,
                                     purpose="refreshing Google Cloud tokens")
            try:
                credentials.refresh(transport.Request())
            except Exception as exc:  # google.auth.exceptions.RefreshError, transport errors
                raise ProviderAuthError(
                    f"provider {self._provider!r} could not refresh its Google Cloud token ({exc}); check the "
                    "credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login)",
                    provider=self._provider,
                ) from exc
        expiry = credentials.expiry
        # google-auth keeps expiry as a naive datetime in UTC.
        expires = expiry.replace(tzinfo=datetime.UTC).timestamp() if isinstance(expiry, datetime.datetime) else None
        return str(credentials.token), expires


class _Addressing:
    """Where a project's models live, and the token that opens them."""

    def __init__(self, config: ProviderConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.location = config.location or _DEFAULT_LOCATION
        self._credentials: _Credentials | None = None

    @property
    def base_url(self) -> str:
        if self.config.endpoint_url:
            return self.config.endpoint_url.rstrip("/")
        if self.location == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{self.location}-aiplatform.googleapis.com"

    def credentials(self) -> _Credentials:
        if self._credentials is None:
            self._credentials = _Credentials(self.config.name, self.clock)
        return self._credentials

    def model_path(self, publisher: str, model: str, method: str) -> str:
        return (f"/v1/projects/{quote(self.project(), safe='')}/locations/{quote(self.location, safe='')}"
                f"/publishers/{publisher}/models/{quote(model, safe='@.-_')}:{method}")

    def given_token(self) -> str | None:
        """The access token in the variable ``api_key_env`` names, if it is set."""
        env = self.config.api_key_env
        return (os.environ.get(env) or None) if env else None

    async def token(self) -> str:
        return self.given_token() or await self.credentials().tokens.refresh()

    def project(self) -> str:
        project = self.config.project or (None if self.given_token() else self.credentials().project)
        if not project:
            raise ConfigError(
                f"provider {self.config.name!r} (vertex) names no Google Cloud project and the credentials carry "
                "none: set project = \"my-project\" in its config"
            )
        return project

    def auth_headers(self) -> dict[str, str]:
        token = self.given_token() or (self._credentials.tokens.token if self._credentials is not None else "")
        return {"Authorization": f"Bearer {token}"} if token else {}


def _with_google_advice(error: ProviderError, addressing: _Addressing) -> ProviderError:
    """An auth error's advice pointed at Google credentials rather than an API key."""
    if not isinstance(error, ProviderAuthError):
        return error
    head = str(error).rpartition("; ")[0] or str(error)
    source = (f"the access token in {addressing.config.api_key_env}" if addressing.given_token()
              else "the application default credentials (GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth "
                   "application-default login)")
    return ProviderAuthError(
        f"{head}; check {source}, and that the principal may call Vertex AI (roles/aiplatform.user) in project "
        f"{addressing.config.project or 'of the credentials'}",
        provider=error.provider, http_status=error.http_status)


class _ClaudeOnVertex(AnthropicProvider):
    """Anthropic's adapter, addressed and authenticated as Vertex wants."""

    kind: ClassVar[str] = "vertex"

    def __init__(self, config: ProviderConfig, addressing: _Addressing, *,
                 transport: httpx.AsyncBaseTransport | None, clock: Clock) -> None:
        super().__init__(config, transport=transport, clock=clock)
        self._at = addressing

    @property
    def base_url(self) -> str:
        """The Vertex endpoint of the project's location."""
        return self._at.base_url

    @property
    def auth_headers_sent(self) -> bool:
        """A token is always sent, and there is no key variable to name."""
        return False

    def auth_headers(self) -> dict[str, str]:
        """The bearer token; no x-api-key, no anthropic-version header (it goes in the body)."""
        return self._at.auth_headers()

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return _with_google_advice(super()._status_error(status, headers, body), self._at)

    def _vertex(self, path: str, payload: Any, *, stream: bool) -> tuple[str, Any]:
        if path != "/messages" or not isinstance(payload, Mapping):
            raise ConfigError(f"provider {self.name!r}: Claude on Vertex AI serves messages only, not {path}")
        body = {k: v for k, v in payload.items() if k not in ("model", "stream")}
        body["anthropic_version"] = ANTHROPIC_VERTEX_VERSION
        if stream:
            body["stream"] = True
        method = "streamRawPredict" if stream else "rawPredict"
        return self._at.model_path("anthropic", str(payload.get("model", "")), method), body

    async def _request(
        self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """``POST …/publishers/anthropic/models/{model}:rawPredict``."""
        await self._at.token()
        path, body = self._vertex(path, payload, stream=False)
        return await super()._request(method, path, payload=body, params=params, headers=headers)

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Any, *, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """``POST …/publishers/anthropic/models/{model}:streamRawPredict``."""
        await self._at.token()
        path, body = self._vertex(path, payload, stream=True)
        async with super()._open_stream(path, body, params=params, headers=headers) as events:
            yield events


class VertexProvider(GeminiProvider):
    """Gemini (and Claude) models of one Google Cloud project on Vertex AI."""

    kind: ClassVar[str] = "vertex"
    default_key_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""
    stream_end_marker: ClassVar[str] = "its end marker (a chunk with finishReason)"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(config, transport=transport, clock=clock)
        self._at = _Addressing(config, self.clock)
        self._claude = _ClaudeOnVertex(config, self._at, transport=transport, clock=self.clock)

    @property
    def base_url(self) -> str:
        """The Vertex endpoint of the project's location (or ``endpoint_url``)."""
        return self._at.base_url

    @property
    def auth_headers_sent(self) -> bool:
        """A token is always sent, and there is no key variable to name."""
        return False

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer`` with the token fetched last."""
        return self._at.auth_headers()

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return _with_google_advice(super()._status_error(status, headers, body), self._at)

    def _route(self, path: str) -> str:
        model, _, method = path.removeprefix("/models/").rpartition(":")
        return self._at.model_path("google", model, method)

    async def _request(
        self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One exchange at the project's model path, with a fresh token."""
        await self._at.token()
        return await super()._request(method, self._route(path), payload=payload, params=params, headers=headers)

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Any, *, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """A streamed call at the project's model path, with a fresh token."""
        await self._at.token()
        async with super()._open_stream(self._route(path), payload, params=params, headers=headers) as events:
            yield events

    def speaks(self, api: str, model: str = "") -> bool:
        """Anthropic's Messages API for Claude models: a ``/v1/messages`` request goes to ``:rawPredict`` as sent."""
        return bool(model) and _is_claude(model) and self._claude.speaks(api, model)

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One answer: ``:generateContent``, or ``:rawPredict`` for a Claude model."""
        if _is_claude(deployment.upstream_model):
            return await self._claude.chat(request, deployment)
        return await super().chat(request, deployment)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer as chunks: ``:streamGenerateContent?alt=sse``, or ``:streamRawPredict`` for Claude."""
        chunks = self._claude.stream if _is_claude(deployment.upstream_model) else super().stream
        async with contextlib.aclosing(chunks(request, deployment)) as source:  # type: ignore[type-var]
            async for chunk in source:
                yield chunk

    async def count_tokens(self, request: ChatRequest, deployment: Deployment) -> int | None:
        """Not offered here: ax estimates."""
        return None

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Vectors from ``:predict`` (Vertex's embedding models), in input order."""
        payload: dict[str, Any] = {"instances": [{"content": t} for t in inputs]}
        if dimensions is not None:
            payload["parameters"] = {"outputDimensionality": dimensions}
        data = await self._request("POST", f"/models/{model}:predict", payload=payload)
        try:
            rows = [p["embeddings"] for p in data["predictions"]]
            vectors = [[float(x) for x in row["values"]] for row in rows]
            counted = [row.get("statistics", {}).get("token_count") for row in rows]
        except SHAPE_ERRORS as exc:
            raise self._malformed("an embeddings answer", exc) from None
        if len(vectors) != len(inputs):
            raise self._malformed(f"{len(vectors)} vectors for {len(inputs)} inputs")
        if all(isinstance(c, int | float) for c in counted):
            usage = Usage(input_tokens=sum(token_count(c) for c in counted))
        else:
            usage = Usage(input_tokens=sum(estimate_tokens(t) for t in inputs), estimated=True)
        return EmbeddingResponse(vectors=vectors, model=model, usage=usage)

    async def list_models(self) -> list[str]:
        """The configured models: Vertex lists no project's publisher models."""
        return list(self.config.models)

    async def aclose(self) -> None:
        """Close both exchanges (Gemini's and Claude's)."""
        await self._claude.aclose()
        await super().aclose()
