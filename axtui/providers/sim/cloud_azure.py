"""The simulated fleet answering as an Azure OpenAI resource, under ``/azure``.

| route | what |
| ----- | ---- |
| ``POST /azure/openai/deployments/{deployment}/chat/completions?api-version=…`` | chat, played by the profile's ``azure`` provider |
| ``POST /azure/openai/deployments/{deployment}/embeddings?api-version=…`` | embeddings, by whichever provider has the model |
| ``GET /azure/openai/models?api-version=…`` | the azure provider's models |
| ``POST /azure/openai/v1/responses`` | the Responses API on the v1 API (no ``api-version``; the body's model names the deployment) |

A deployment serves the model it is named after: ``gpt-4o``, or the
longest model name it starts with (``gpt-4o-mini-eu`` serves
``gpt-4o-mini``); any other name is Azure's 404 ``DeploymentNotFound``.
Every call must carry an ``api-key`` header or an ``Authorization: Bearer``
token (any value: the fault header plays a wrong one) and, but on the v1
API, an ``api-version`` (else Azure's 404 "Resource not found"). Errors have
Azure's shape; a 429 names its wait in ``Retry-After``, ``retry-after-ms``
and the message. ``X-Sim-Fault: 403`` plays an identity without access to
the resource; the other faults are the fleet's. Answers carry Azure's
content-filter verdicts (``prompt_filter_results``, and a stream's first
chunk has no choices), as the real service's do.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from axtui.errors import ProviderAuthError, ProviderError, ProviderRateLimited
from axtui.providers.sim.server import (
    FAULT_HEADER,
    RESPONSES_WIRE,
    _body,
    _chat,
    _embed,
    _error,
    _models,
    server_state,
)
from axtui.providers.sim.simulate import ChatPlan
from axtui.providers.sim.wire import ChatCall, EmbedCall, bad_request, sse
from axtui.providers.sim.wire_openai import OpenAIWire

__all__ = ["AzureWire", "mount_azure", "served_model"]

PREFIX = "/azure"
_FILTERED_SAFE = {category: {"filtered": False, "severity": "safe"}
                  for category in ("hate", "self_harm", "sexual", "violence")}


def served_model(deployment: str, models: list[str]) -> str | None:
    """The model a deployment name serves: the same name, else the longest model it starts with."""
    if deployment in models:
        return deployment
    prefixes = [m for m in models if deployment.startswith(m + "-")]
    return max(prefixes, key=len) if prefixes else None


class AzureWire(OpenAIWire):
    """OpenAI's wire format with Azure's addressing (the model comes from the deployment) and error bodies."""

    name = "azure"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A chat body whose model is the deployment's, whatever the body says."""
        if isinstance(body, dict) and path_model:
            body = {**body, "model": path_model}
        return super().parse_chat(body, path_model, stream=stream)

    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """An embeddings body whose model is the deployment's."""
        if isinstance(body, dict) and path_model:
            body = {**body, "model": path_model}
        return super().parse_embed(body, path_model, batch=batch)

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """OpenAI's answer plus the content-filter verdicts Azure adds to the prompt and each choice."""
        body = super().chat_body(plan, call, created)
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTERED_SAFE}]
        for choice in body["choices"]:
            choice["content_filter_results"] = _FILTERED_SAFE
        return body

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Azure's first chunk: no choices, no model, only the prompt's filter verdicts."""
        return [sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                     "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTERED_SAFE}]})]

    def error_body(self, exc: ProviderError, status: int) -> Any:
        """Azure's ``{"error": {"code", "message"}}``; 429 and 401 worded as Azure words them."""
        if isinstance(exc, ProviderRateLimited):
            wait = math.ceil(exc.retry_after or 1)
            return {"error": {"code": "429", "message": (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version have exceeded "
                f"token rate limit of your current pricing tier. Please retry after {wait} seconds.")}}
        if isinstance(exc, ProviderAuthError) and status == 401:
            return {"error": {"code": "401", "message": (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource.")}}
        if isinstance(exc, ProviderAuthError):
            return {"error": {"code": "PermissionDenied", "message": (
                "The principal lacks the required data action Microsoft.CognitiveServices/accounts/OpenAI/"
                "deployments/chat/completions/action to perform this operation.")}}
        body = super().error_body(exc, status)
        if status == 404 and isinstance(body, dict):
            body["error"]["code"] = "DeploymentNotFound"
        return body


_WIRE = AzureWire()


def _refusal(request: web.Request, *, versioned: bool = True) -> web.Response | None:
    """Azure's answer to a call without a key or api-version (or with the 403 fault), else None."""
    auth = request.headers.get("api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not auth:
        return _error(_WIRE, ProviderAuthError("no api-key header", provider="azure", http_status=401))
    if versioned and not request.query.get("api-version"):
        return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
    if request.headers.get(FAULT_HEADER, "").strip() == "403":
        return _error(_WIRE, ProviderAuthError("no access", provider="azure", http_status=403))
    return None


def _with_retry_ms(response: web.StreamResponse) -> web.StreamResponse:
    retry = response.headers.get("Retry-After")
    if response.status == 429 and retry:
        response.headers["retry-after-ms"] = str(int(float(retry) * 1000))
    return response


async def azure_chat(request: web.Request) -> web.StreamResponse:
    """``POST /azure/openai/deployments/{deployment}/chat/completions``."""
    if (refused := _refusal(request)) is not None:
        return refused
    sim = server_state(request.app)
    provider = sim.profile.provider("azure")
    models = provider.model_names if provider is not None else sim.profile.model_names
    model = served_model(request.match_info["deployment"], models)
    if model is None:
        return _error(_WIRE, bad_request(
            "The API deployment for this resource does not exist. If you created the deployment within the last "
            "5 minutes, please wait a moment and try again.", status=404))
    return _with_retry_ms(await _chat(request, _WIRE, model))


async def azure_responses(request: web.Request) -> web.StreamResponse:
    """``POST /azure/openai/v1/responses``: the body's model is the deployment."""
    if (refused := _refusal(request, versioned=False)) is not None:
        return refused
    sim = server_state(request.app)
    provider = sim.profile.provider("azure")
    models = provider.model_names if provider is not None else sim.profile.model_names
    body = await _body(request)
    model = served_model(str(body.get("model") or ""), models) if isinstance(body, dict) else None
    if model is None:
        return _error(_WIRE, bad_request(
            "The API deployment for this resource does not exist. If you created the deployment within the last "
            "5 minutes, please wait a moment and try again.", status=404))
    return _with_retry_ms(await _chat(request, RESPONSES_WIRE, model))


async def azure_embeddings(request: web.Request) -> web.StreamResponse:
    """``POST /azure/openai/deployments/{deployment}/embeddings``."""
    if (refused := _refusal(request)) is not None:
        return refused
    sim = server_state(request.app)
    model = served_model(request.match_info["deployment"], sim.profile.model_names)
    if model is None:
        return _error(_WIRE, bad_request("The API deployment for this resource does not exist.", status=404))
    return _with_retry_ms(await _embed(request, _WIRE, model))


async def azure_models(request: web.Request) -> web.StreamResponse:
    """``GET /azure/openai/models``."""
    if (refused := _refusal(request)) is not None:
        return refused
    return await _models(request, _WIRE)


def mount_azure(app: web.Application) -> None:
    """Add the Azure routes to a sim app."""
    # {provider:azure} puts "azure" in match_info, so the profile's azure provider plays the chat calls.
    app.router.add_post("/{provider:azure}/openai/deployments/{deployment}/chat/completions", azure_chat)
    app.router.add_post(PREFIX + "/openai/deployments/{deployment}/embeddings", azure_embeddings)
    app.router.add_get("/{provider:azure}/openai/models", azure_models)
    app.router.add_post("/{provider:azure}/openai/v1/responses", azure_responses)
