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
from axtui.server.constraints import CACHE_DIRECTIVE
from axtui.server.errors import ErrorResponse
from axtui.server.responses_api import openapi_paths
from axtui.types import ChatRequest

__all__ = ["install_openapi"]

_REF = "#/components/schemas/{model}"

_ERRORS: dict[str, str] = {
    "400": "Invalid request: malformed JSON or a field that fails validation (`param` names it), "
    "or a request the provider refused",
    "401": "No gateway key, or a wrong or revoked one (checked before the body is read); `key_expired` for "
    "an expired key or a rotated secret past its grace",
    "402": "A hard budget would be exceeded; `Retry-After` says when its period ends, if it does",
    "403": "A write that needs the admin key, a gateway key reading another tenant's data, a write "
    "sent from a web page of another site (`Origin`), or a model outside the key's or its team's allow-list "
    "(`model_not_allowed`; the message lists the models it may use)",
    "404": "Unknown model; the message lists the models served here",
    "409": "It exists already",
    "413": "The body is larger than `server.max_body_bytes`",
    "415": "The body is not JSON (`Content-Type: application/json`)",
    "421": "The `Host` names neither the address the gateway listens on, a loopback name, nor one of "
    "`server.allowed_hosts`",
    "429": "Rate limited by ax (`Retry-After`, `X-RateLimit-*`) or by the provider",
    "502": "The provider failed (5xx, a malformed answer, a dropped connection)",
    "503": "The gateway is starting or stopping, or its store is unusable",
    "504": "The provider did not answer in time",
}

_HEADER = {"schema": {"type": "string"}}
_CALL_HEADERS = {
    "x-ax-request-id": {"description": "The call's id, as recorded", **_HEADER},
    "request-id": {"description": "The call's id again, where the Anthropic SDK reads it", **_HEADER},
    "x-request-id": {"description": "The call's id again, where the OpenAI SDK reads it", **_HEADER},
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
    {"name": "X-Ax-Cache", "in": "header", "required": False,
     "schema": {"type": "string", "pattern": CACHE_DIRECTIVE},
     "description": "Cache wishes: `no-cache` (do not read), `no-store` (neither read nor write), "
                    "`ttl=SECONDS`; comma-separated. Also accepted as `metadata.ax_cache`."},
    {"name": "X-Ax-Tags", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Comma-separated tags recorded with the call (cost breakdowns by tag)."},
]


def sse_event(name: str | None, data: dict[str, Any], *, done: bool = False) -> dict[str, Any]:
    """One server-sent event as schemathesis and OpenAPI 3.2's ``itemSchema`` read it: ``event`` and ``data``.

    Args:
        name: the ``event:`` field it carries (None: any).
        data: the schema of the JSON in its ``data:`` field.
        done: the stream may end with ``data: [DONE]``.
    """
    json_data: dict[str, Any] = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
    payload = {"anyOf": [json_data, {"const": "[DONE]"}]} if done else json_data
    event: dict[str, Any] = {"type": "string"} if name is None else {"const": name}
    return {"type": "object", "required": ["data"], "properties": {"event": event, "data": payload}}


def _metrics_schemas() -> dict[str, Any]:
    """The live snapshot and the metrics stream's events, from the dataclasses that make them."""
    from pydantic import TypeAdapter

    from axtui.cost.alerts import BudgetAlert
    from axtui.metrics.alerts.model import AlertEvent
    from axtui.metrics.snapshot import Snapshot

    out: dict[str, Any] = {}
    for name, kind in (("MetricsSnapshot", Snapshot), ("AlertEventData", AlertEvent), ("BudgetEventData", BudgetAlert)):
        schema = TypeAdapter(kind).json_schema(mode="serialization", ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        schema["title"] = name
        if name == "MetricsSnapshot":
            schema["properties"]["view"] = {"type": "string", "description": "Whose calls: `all` (the admin) "
                                            "or `user:NAME` (a gateway key's own)"}
        else:
            # A gateway key's copy leaves out how the webhook delivery went.
            schema["required"] = [f for f in schema.get("required", []) if f not in ("delivery", "attempts")]
        out[name] = schema
    out["MetricsStreamEvent"] = {"anyOf": [
        sse_event("snapshot", {"$ref": _REF.format(model="MetricsSnapshot")}),
        sse_event("alert", {"$ref": _REF.format(model="AlertEventData")}),
        sse_event("budget", {"$ref": _REF.format(model="BudgetEventData")}),
    ]}
    return out


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
            "responses": {"200": ok, **_errors("400", "401", "402", "403", "404", "413", "415", "421", "429", "502",
                                               "503", "504")},
        }
    }


def _hot_paths() -> dict[str, Any]:
    chat_ok = {
        "description": "The answer; with `stream: true`, server-sent events of `ChatCompletionChunk` "
        "ending with `data: [DONE]` (and a usage chunk first when `stream_options.include_usage` is set)",
        "headers": _CALL_HEADERS,
        "content": {
            "application/json": {"schema": _ref(wire.ChatCompletion)},
            "text/event-stream": {"itemSchema": sse_event(None, _ref(wire.ChatCompletionChunk), done=True)},
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
                    "text/event-stream": {"itemSchema": sse_event(None, {"type": "object"})}},
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


_WRITES = ("post", "put", "patch", "delete")


def _document_refusals(paths: dict[str, Any]) -> None:
    """Every refusal the guard and the routes can answer, on every operation they apply to."""
    from axtui.server.guard import OPEN_PATHS

    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            codes = ["421", "503"]
            if path not in OPEN_PATHS:
                codes += ["401", "403"]
            if operation.get("parameters") or operation.get("requestBody"):
                codes.append("400")
            if "{" in path:
                codes.append("404")
            if method in _WRITES:
                codes.append("413")
            if operation.get("requestBody"):
                codes.append("415")
            for code, answer in _errors(*codes).items():
                responses.setdefault(code, answer)


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
        _document_refusals(paths)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.update(_schemas(
            ChatRequest, wire.ChatCompletion, wire.ChatCompletionChunk, wire.EmbeddingRequest, wire.EmbeddingList,
            aw.AnthropicRequest, aw.AnthropicMessage, ErrorResponse, *more_models,
        ))
        schemas.update(_metrics_schemas())
        security = components.setdefault("securitySchemes", {})
        security.setdefault("bearerAuth", {"type": "http", "scheme": "bearer"})
        security["apiKeyHeader"] = {"type": "apiKey", "in": "header", "name": "x-api-key"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
