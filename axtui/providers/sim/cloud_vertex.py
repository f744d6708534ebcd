"""The simulated fleet answering as Google Vertex AI, under ``/vertex``.

| route (under ``/vertex/v1/projects/{project}/locations/{location}/publishers``) | what |
| ----- | ---- |
| ``POST /google/models/{model}:generateContent`` / ``:streamGenerateContent`` | Gemini chat (``?alt=sse`` streams events) |
| ``POST /google/models/{model}:predict`` | embeddings (``instances[].content``) |
| ``POST /anthropic/models/{model}:rawPredict`` / ``:streamRawPredict`` | Claude's Messages API, ``anthropic_version = "vertex-2023-10-16"`` in the body |

Models are served by whichever simulated provider has them (Gemini's by
``gemini``, Claude's by ``anthropic``; a ``@version`` suffix is dropped).
Every call must carry ``Authorization: Bearer`` with some token (else
Google's 401 ``UNAUTHENTICATED``); ``X-Sim-Fault: 403`` plays a principal
without ``aiplatform.endpoints.predict`` (``PERMISSION_DENIED``); the other
faults are the fleet's. Errors have Google's ``{"error": {"code", "message",
"status"}}`` shape.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from axtui.errors import ProviderAuthError
from axtui.providers.sim.server import FAULT_HEADER, _chat, _embed, _error
from axtui.providers.sim.simulate import EmbedPlan
from axtui.providers.sim.wire import ChatCall, EmbedCall, bad_request
from axtui.providers.sim.wire_anthropic import AnthropicWire
from axtui.providers.sim.wire_gemini import GeminiWire

__all__ = ["ANTHROPIC_VERTEX_VERSION", "VertexClaudeWire", "VertexGeminiWire", "mount_vertex"]

ANTHROPIC_VERTEX_VERSION = "vertex-2023-10-16"
_BASE = "/vertex/v1/projects/{project}/locations/{location}/publishers"


class VertexGeminiWire(GeminiWire):
    """Gemini's wire format; embeddings are Vertex's ``:predict``."""

    name = "vertex"

    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """``{"instances": [{"content": …}], "parameters": {"outputDimensionality"}}``."""
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances or not all(
                isinstance(i, dict) and isinstance(i.get("content"), str) for i in instances):
            raise bad_request("instances: a non-empty list of {\"content\": text} is required")
        parameters = body.get("parameters") or {}
        dims = parameters.get("outputDimensionality") if isinstance(parameters, dict) else None
        return EmbedCall(model=path_model or "", inputs=[i["content"] for i in instances],
                         dimensions=dims if isinstance(dims, int) else None)

    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """``{"predictions": [{"embeddings": {"values", "statistics": {"token_count"}}}]}``."""
        share = plan.usage.input_tokens // max(1, len(plan.vectors))
        counts = [share] * len(plan.vectors)
        if counts:
            counts[0] += plan.usage.input_tokens - share * len(counts)
        return {"predictions": [{"embeddings": {"values": v, "statistics": {"token_count": n, "truncated": False}}}
                                for v, n in zip(plan.vectors, counts, strict=True)],
                "metadata": {"billableCharacterCount": sum(len(t) for t in call.inputs)}}


class VertexClaudeWire(AnthropicWire):
    """Anthropic's Messages API as Vertex serves it: the model in the URL, the version in the body."""

    name = "vertex-anthropic"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A Messages body without ``model``, with ``anthropic_version``."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        if body.get("anthropic_version") != ANTHROPIC_VERTEX_VERSION:
            raise bad_request(f"anthropic_version: must be {ANTHROPIC_VERTEX_VERSION!r}")
        if "model" in body:
            raise bad_request("model: Extra inputs are not permitted (the model is named in the URL)")
        rest = {k: v for k, v in body.items() if k != "anthropic_version"}
        return super().parse_chat({**rest, "model": path_model}, path_model, stream=stream)


_GEMINI, _CLAUDE = VertexGeminiWire(), VertexClaudeWire()


def _refusal(request: web.Request, wire: GeminiWire | AnthropicWire) -> web.Response | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not token:
        return _error(_GEMINI, ProviderAuthError(
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.", provider="vertex", http_status=401))
    if request.headers.get(FAULT_HEADER, "").strip() == "403":
        return _error(wire, ProviderAuthError(
            f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/"
            f"{request.match_info['project']}/locations/{request.match_info['location']}' (or it may not exist).",
            provider="vertex", http_status=403))
    return None


async def vertex_google(request: web.Request) -> web.StreamResponse:
    """``POST …/publishers/google/models/{model}:{method}``."""
    if (refused := _refusal(request, _GEMINI)) is not None:
        return refused
    model, _, method = request.match_info["target"].rpartition(":")
    model = model.split("@", 1)[0]
    if method == "generateContent":
        return await _chat(request, _GEMINI, model, stream=False)
    if method == "streamGenerateContent":
        return await _chat(request, _GEMINI, model, stream=True)
    if method == "predict":
        return await _embed(request, _GEMINI, model, batch=True)
    return _error(_GEMINI, bad_request(f"unknown method {method!r}; this server knows generateContent, "
                                       "streamGenerateContent and predict", status=404))


async def vertex_anthropic(request: web.Request) -> web.StreamResponse:
    """``POST …/publishers/anthropic/models/{model}:{method}``."""
    if (refused := _refusal(request, _CLAUDE)) is not None:
        return refused
    model, _, method = request.match_info["target"].rpartition(":")
    model = model.split("@", 1)[0]
    if method in ("rawPredict", "streamRawPredict"):
        return await _chat(request, _CLAUDE, model, stream=None)
    return _error(_CLAUDE, bad_request(f"unknown method {method!r}; Claude on Vertex knows rawPredict and "
                                       "streamRawPredict", status=404))


def mount_vertex(app: web.Application) -> None:
    """Add the Vertex AI routes to a sim app."""
    app.router.add_post(_BASE + "/google/models/{target}", vertex_google)
    app.router.add_post(_BASE + "/anthropic/models/{target}", vertex_anthropic)
