"""The OpenAPI document: FastAPI's own, plus the hot routes written by hand.

The hot routes are raw ASGI handlers FastAPI never sees, so their
operations are added here from the same pydantic models that validate
the requests and describe the answers. FastAPI's 422 validation answers
are rewritten as the 400 the server really sends, and every error is
documented with the one error shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from axtui import __version__
from axtui.server import anthropic_wire as aw
from axtui.server import wire
from axtui.server.errors import ErrorResponse
from axtui.server.responses_api import openapi_paths
from axtui.types import ChatRequest

__all__ = ["install_openapi"]

_REF = "#/components/schemas/{model}"

_ERRORS: dict[str, str] = {
    "400": "Invalid request: malformed JSON or a field that fails validation (`param` names it), "
    "or a request the provider refused",
    "401": "No gateway key, or a wrong or revoked one",
    "402": "A hard budget would be exceeded; `Retry-After` says when its period ends, if it does",
    "404": "Unknown model; the message lists the models served here",
    "413": "The body is larger than `server.max_body_bytes`",
    "429": "Rate limited by ax (`Retry-After`, `X-RateLimit-*`) or by the provider",
    "502": "The provider failed (5xx, a malformed answer, a dropped connection)",
    "503": "The gateway is starting or stopping, or its store is unusable",
    "504": "The provider did not answer in time",
}

_HEADER = {"schema": {"type": "string"}}
_CALL_HEADERS = {
    "x-ax-request-id": {"description": "The call's id, as recorded", **_HEADER},
    "x-ax-provider": {"description": "The provider that answered (or whose answer the cache kept)", **_HEADER},
    "x-ax-model": {"description": "The upstream model that answered", **_HEADER},
    "x-ax-cache": {"description": "miss, exact or semantic", "schema": {"type": "string",
                                                                        "enum": ["miss", "exact", "semantic"]}},
    "x-ax-cache-similarity": {"description": "Similarity of a semantic hit, 0 to 1", **_HEADER},
    "x-ax-cost-usd": {"description": "Exact cost in dollars; absent when the price is unknown and on streamed "
                                     "misses (known only at the end)", **_HEADER},
    "X-RateLimit-Limit": {"description": "The tightest limit that applied", **_HEADER},
    "X-RateLimit-Remaining": {"description": "What is left of it", **_HEADER},
    "X-RateLimit-Reset": {"description": "Seconds until it is whole again", **_HEADER},
}
_REQUEST_HEADERS = [
    {"name": "X-Ax-Cache", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Cache wishes: `no-cache` (do not read), `no-store` (neither read nor write), "
                    "`ttl=SECONDS`; comma-separated. Also accepted as `metadata.ax_cache`."},
    {"name": "X-Ax-Tags", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Comma-separated tags recorded with the call (cost breakdowns by tag)."},
]


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _errors(*codes: str) -> dict[str, Any]:
    return {
        code: {"description": _ERRORS[code], "content": {"application/json": {"schema": _ref(ErrorResponse)}}}
        for code in codes
    }


def _operation(
    summary: str, description: str, request: type[BaseModel], ok: dict[str, Any], tag: str, *, anthropic: bool = False
) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = (
        [{"apiKeyHeader": []}, {"bearerAuth": []}] if anthropic else [{"bearerAuth": []}]
    )
    return {
        "post": {
            "tags": [tag],
            "summary": summary,
            "description": description,
            "operationId": summary.lower().replace(" ", "_"),
            "security": security,
            "parameters": _REQUEST_HEADERS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {"200": ok, **_errors("400", "401", "402", "404", "413", "429", "502", "503", "504")},
        }
    }


def _hot_paths() -> dict[str, Any]:
    chat_ok = {
        "description": "The answer; with `stream: true`, server-sent events of `ChatCompletionChunk` "
        "ending with `data: [DONE]` (and a usage chunk first when `stream_options.include_usage` is set)",
        "headers": _CALL_HEADERS,
        "content": {
            "application/json": {"schema": _ref(wire.ChatCompletion)},
            "text/event-stream": {"schema": _ref(wire.ChatCompletionChunk)},
        },
    }
    embed_ok = {
        "description": "Vectors in input order",
        "headers": {"x-ax-model": _CALL_HEADERS["x-ax-model"]},
        "content": {"application/json": {"schema": _ref(wire.EmbeddingList)}},
    }
    messages_ok = {
        "description": "The message; with `stream: true`, the Messages event stream "
        "(message_start … message_stop)",
        "headers": _CALL_HEADERS,
        "content": {"application/json": {"schema": _ref(aw.AnthropicMessage)},
                    "text/event-stream": {"schema": {"type": "string"}}},
    }
    return {
        "/v1/chat/completions": _operation(
            "Create chat completion",
            "OpenAI-compatible chat completions, plain or streamed. `model` is a model or alias from "
            "`GET /v1/models`; parameters ax does not name pass through to the provider. The call is "
            "rate-limited, budgeted, answered from the cache when it can, routed, priced and recorded.",
            ChatRequest, chat_ok, "OpenAI-compatible",
        ),
        "/v1/embeddings": _operation(
            "Create embeddings", "OpenAI-compatible embeddings of text inputs (float or base64).",
            wire.EmbeddingRequest, embed_ok, "OpenAI-compatible",
        ),
        "/v1/messages": _operation(
            "Create message",
            "Anthropic-compatible Messages API, for Claude SDK users; the key may come as `x-api-key`.",
            aw.AnthropicRequest, messages_ok, "Anthropic-compatible", anthropic=True,
        ),
    }


def _fix_validation_errors(paths: dict[str, Any]) -> None:
    """FastAPI documents 422; ax answers invalid input with 400 in the error shape."""
    for item in paths.values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                del responses["422"]
                responses.setdefault("400", _errors("400")["400"])


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the hot routes too."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title="ax gateway",
            version=__version__,
            description=(
                "An OpenAI-compatible (and Anthropic-compatible) gateway for LLM provider calls, with the "
                "metrics and admin API of ax. Send the gateway key as `Authorization: Bearer axk_…`. "
                "Writes under `/api` need the admin key."
            ),
            routes=app.routes,
        )
        paths = schema.setdefault("paths", {})
        _fix_validation_errors(paths)
        paths.update(_hot_paths())
        more_paths, more_models = openapi_paths(_ref, _errors, _CALL_HEADERS)
        paths.update(more_paths)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.update(_schemas(
            ChatRequest, wire.ChatCompletion, wire.ChatCompletionChunk, wire.EmbeddingRequest, wire.EmbeddingList,
            aw.AnthropicRequest, aw.AnthropicMessage, ErrorResponse, *more_models,
        ))
        security = components.setdefault("securitySchemes", {})
        security.setdefault("bearerAuth", {"type": "http", "scheme": "bearer"})
        security["apiKeyHeader"] = {"type": "apiKey", "in": "header", "name": "x-api-key"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
