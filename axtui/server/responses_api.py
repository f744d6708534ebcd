"""``/v1/responses`` (+ ``GET|DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``) and
``POST /v1/messages/count_tokens``.

Raw ASGI handlers beside the hot routes (`axtui.server.v1`), through the
same gate: the key is checked by the same `Authenticator`, the body read
with the same size limit and JSON checks, errors answered in the same
shapes. A Responses request is translated to chat at this edge
(`axtui.server.responses_wire`) and served by the engine's ordinary
``call``/``stream``, recorded with ``endpoint = responses``. When a
deployment of the model speaks the API natively, the request also carries
the client's own body (`axtui.types.NativeRequest`): that deployment sends
it upstream as it came and its answer (or its events) comes back as the
upstream sent it, with ax's response id.

Stored responses belong to the user of the key that made them: another
user's id answers 404, as an unknown one does, so ids reveal nothing.
They are kept 30 days (`RETENTION_S`), as OpenAI keeps them. Each keeps
its input items, worked out when it is stored
(`axtui.server.responses_items`), listed through the same check as the
response itself.

``count_tokens`` counts against the caller's rate limits (not its
budgets: it costs nothing) and asks the first deployment of the model
whose provider counts tokens itself (Anthropic); otherwise ax estimates,
and the answer says so (``"estimated": true`` and
``x-ax-tokens-estimated: true``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json, to_json
from sqlalchemy import delete, insert, select

from axtui.bedrock_ids import model_behind
from axtui.engine.gateway import CallOptions, Gateway
from axtui.errors import AxError, InvalidRequest, ProviderError
from axtui.server import anthropic_wire as aw
from axtui.server import responses_items as ri
from axtui.server import responses_wire as rw
from axtui.server._asgi import ClientGone, Receive, Scope, Send, header_dict, read_body, send_bytes
from axtui.server.errors import HTTPProblem, invalid_from_validation, invalid_json, limit_headers
from axtui.server.responses_stream import ResponseEvents
from axtui.server.v1 import V1Routes, _request_id, _traceparent, chat_cache_directive, record_headers
from axtui.store import Store
from axtui.store.tables_responses import StoredResponse
from axtui.tokens import estimate_prompt_tokens
from axtui.types import Caller, Message

__all__ = ["ResponsesRoutes"]

_RESPONSES = "/v1/responses"
_COUNT = "/v1/messages/count_tokens"
_INPUT_ITEMS = "input_items"


def _served_natively(gateway: Gateway, model: str) -> bool:
    """Whether a deployment of ``model`` has a provider that speaks the Responses API natively."""
    try:
        deployments = gateway.catalog.resolve(model)
    except AxError:
        return False  # the engine refuses an unknown model, naming what is served
    return any((p := gateway.providers.get(d.provider)) is not None and p.speaks("responses", d.upstream_model)
               for d in deployments)


def _models_behind(gateway: Gateway, model: str) -> dict[str, str]:
    """The model each upstream id of ``model``'s deployments serves (a Bedrock ARN's: `model_behind`); none
    when the model is unknown. Whether thinking is a summary is the served model's trait, not its id's."""
    try:
        return {d.upstream_model: model_behind(d.upstream_model, d.base_model) for d in gateway.catalog.resolve(model)}
    except AxError:
        return {}


def _translated_deployments(gateway: Gateway, model: str) -> list[tuple[str, str]]:
    """(provider, the model served) of each deployment of ``model`` (none when the model is unknown)."""
    try:
        return [(d.provider, model_behind(d.upstream_model, d.base_model)) for d in gateway.catalog.resolve(model)]
    except AxError:
        return []


def _not_found(response_id: str, param: str | None = None) -> HTTPProblem:
    return HTTPProblem(404, f"no stored response with id {response_id!r} for this key's user (it was made with "
                            f"store=false, deleted, or by another user)",
                       error_type="invalid_request_error", code="not_found", param=param)


# -- the store ----------------------------------------------------------------------------------


_TABLE = StoredResponse.__table__  # type: ignore[attr-defined]


#: How long a stored response is kept: 30 days, as OpenAI keeps them.
RETENTION_S = 30 * 86_400


def _save(store: Store, row: StoredResponse) -> None:
    """Keep ``row``, and forget the user's responses older than `RETENTION_S` (an indexed delete)."""

    def work(conn: Any) -> None:
        conn.execute(insert(_TABLE).values(**row.model_dump()))
        conn.execute(delete(_TABLE).where(_TABLE.c.user == row.user, _TABLE.c.created < row.created - RETENTION_S))

    # store.run retries while SQLite is locked by the recorder's batch writes.
    store.run(work)


def _owned(conn: Any, response_id: str, user: str) -> StoredResponse | None:
    """The stored response ``response_id`` if ``user`` owns it: the one check every read of a stored response
    (retrieve, continue, list its input items) goes through."""
    found = conn.execute(select(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.user == user)).mappings().first()
    return StoredResponse.model_validate(dict(found)) if found is not None else None


def _load(store: Store, response_id: str, user: str) -> StoredResponse | None:
    return store.run(lambda conn: _owned(conn, response_id, user))


def _chain(store: Store, response_id: str, user: str) -> list[StoredResponse] | None:
    """The user's stored response and those it continues while they are kept, oldest first (None: no such
    response of this user's): the input items of a response stored before they were kept are read from it."""

    def work(conn: Any) -> list[StoredResponse] | None:
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        wanted: str | None = response_id
        while wanted is not None and wanted not in seen:
            row = _owned(conn, wanted, user)
            if row is None:
                break  # deleted, or past RETENTION_S: its turns are read as the next one's input
            chain.append(row)
            seen.add(wanted)
            wanted = row.previous_id
        return chain[::-1] or None

    return store.run(work)


def _kept_items(store: Store, row: StoredResponse) -> str:
    """The input items of stored ``row`` as a JSON array, oldest first: those it keeps, or for a row stored
    before responses kept them, those read from its chain."""
    if row.input_items is not None:
        return row.input_items
    return json.dumps(ri.context_items(_chain(store, row.id, row.user) or [row]))


def _listed(store: Store, response_id: str, user: str) -> list[dict[str, Any]] | None:
    """The input items of the user's stored response ``response_id``, oldest first (None: no such response)."""
    row = _load(store, response_id, user)
    return None if row is None else list(json.loads(_kept_items(store, row)))


def _delete(store: Store, response_id: str, user: str) -> bool:
    done = store.run(lambda conn: conn.execute(
        delete(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.user == user)))
    return bool(done.rowcount)


class ResponsesRoutes:
    """The Responses API and Anthropic's token count, as raw ASGI handlers.

    Args:
        v1: the hot routes, whose gate (gateway readiness, auth, errors, streaming) these share.
    """

    def __init__(self, v1: V1Routes) -> None:
        self.v1 = v1
        self.state = v1.state

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` is one of these routes."""
        path = path.rstrip("/")
        if path in (_COUNT, _RESPONSES):
            return True
        if not path.startswith(_RESPONSES + "/"):
            return False
        response_id, _, rest = path[len(_RESPONSES) + 1:].partition("/")
        return bool(response_id) and rest in ("", _INPUT_ITEMS)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request to these routes."""
        path = scope["path"].rstrip("/")
        method = scope["method"]
        counting = path == _COUNT
        request_id = _request_id("resp_ax") if path == _RESPONSES else None
        listing = path.endswith("/" + _INPUT_ITEMS) and path.count("/") == 4
        allowed = b"POST" if path in (_RESPONSES, _COUNT) else b"GET" if listing else b"GET, DELETE"
        state = self.state
        state.enter()
        try:
            if method.encode() not in allowed.split(b", "):
                raise HTTPProblem(405, f"{path} takes {allowed.decode()}", error_type="invalid_request_error",
                                  code="method_not_allowed")
            gateway = self.v1._gateway()
            headers = header_dict(scope)
            if counting:
                body = await read_body(receive, headers, state.max_body)
                await self._count(gateway, headers, body, send)
            elif path == _RESPONSES:
                body = await read_body(receive, headers, state.max_body)
                assert request_id is not None
                await self._create(gateway, headers, body, request_id, receive, send)
            elif listing:
                response_id = path[len(_RESPONSES) + 1:-len(_INPUT_ITEMS) - 1]
                await self._input_items(gateway, headers, response_id, scope.get("query_string", b""), send)
            else:
                await self._stored(gateway, headers, method, path[len(_RESPONSES) + 1:], send)
        except ClientGone:
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.v1._send_error(send, exc, request_id, anthropic=counting, allow=allowed)
        finally:
            state.leave()

    async def _owner(self, headers: dict[bytes, bytes]) -> Caller:
        """The key's own user (not an end user it names): who stored responses belong to."""
        auth = self.state.auth
        assert auth is not None  # checked by _gateway
        return await auth.caller(headers, None)

    # -- POST /v1/responses -----------------------------------------------------------------

    async def _create(self, gateway: Gateway, headers: dict[bytes, bytes], body: bytes, response_id: str,
                      receive: Receive, send: Send) -> None:
        try:
            request = rw.ResponsesRequest.model_validate_json(body)
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None
        store = gateway.store
        assert store is not None  # the server needs one for its keys
        owner = await self._owner(headers)
        history: list[Message] = []
        previous: StoredResponse | None = None
        if request.previous_response_id:
            previous = await asyncio.to_thread(_load, store, request.previous_response_id, owner.user)
            if previous is None:
                raise _not_found(request.previous_response_id, "previous_response_id")
            history = [Message.model_validate(m) for m in json.loads(previous.conversation)]
        if _served_natively(gateway, request.model):
            problems: list[InvalidRequest] = []
            chat = rw.to_chat_request(request, history, problems)
            chat.with_native(rw.native_request(json.loads(body), history, problems))
        else:
            chat = rw.to_chat_request(request, history)
            refusal = rw.summary_refusal(request, _translated_deployments(gateway, request.model))
            if refusal is not None:
                raise refusal
        caller = await self.v1._caller(headers, chat.user, chat.model)
        options = CallOptions(cache=chat_cache_directive(headers, chat), request_id=response_id,
                              endpoint="responses", traceparent=_traceparent(headers))
        created = int(time.time())
        if request.stream:
            stream = gateway.stream(chat, caller, options)
            encoder: ResponseEvents | None = None  # made once the stream started
            kept = not request.store

            def encoding() -> ResponseEvents:
                nonlocal encoder
                encoder = ResponseEvents(request, response_id, stream.record.model or chat.model, created,
                                         behind=_models_behind(gateway, chat.model))
                return encoder

            async def send_kept(message: MutableMapping[str, Any]) -> None:
                # Kept before the event that completes it leaves: a client that goes on from it at once finds it.
                nonlocal kept
                if not kept and encoder is not None and encoder.body is not None:
                    kept = True
                    await self._keep(store, owner, request, previous, history, encoder.body)
                await send(message)

            await self.v1._pump(stream, encoding, receive, send_kept)
            return
        result = await gateway.call(chat, caller, options)
        answer = result.response
        if answer.native is not None:
            out = rw.native_body(answer.native, request, response_id)
        else:
            out = rw.response_body(request, response_id, created, model=answer.model,
                                   output=rw.output_items(answer, summary=rw.wants_summary(request),
                                                          behind=_models_behind(gateway, chat.model)),
                                   usage=answer.usage,
                                   status=rw.status_of(answer.finish_reason), finish_reason=answer.finish_reason)
        if request.store:
            await self._keep(store, owner, request, previous, history, out)
        await send_bytes(send, 200, to_json(out), record_headers(result.record, result.limits))

    async def _keep(self, store: Store, owner: Caller, request: rw.ResponsesRequest,
                    previous: StoredResponse | None, history: list[Message], body: dict[str, Any]) -> None:
        conversation = rw.conversation_after(history, request, body["output"])

        def work() -> None:
            # Its input items are fixed now, from the response it continues as that one stands: a later
            # listing reads them alone, so no deletion of an earlier turn changes them or their ids.
            earlier = "[]" if previous is None else _kept_items(store, previous)
            added = ri.turn_items(conversation, len(history), body, None if previous is None else previous.body)
            _save(store, StoredResponse(
                id=body["id"], user=owner.user, key=owner.key, model=str(body["model"]),
                created=float(body["created_at"]), previous_id=request.previous_response_id, body=json.dumps(body),
                conversation=json.dumps(conversation), input_items=ri.appended(earlier, added)))

        await asyncio.to_thread(work)

    # -- GET / DELETE /v1/responses/{id} ----------------------------------------------------

    async def _stored(self, gateway: Gateway, headers: dict[bytes, bytes], method: str, response_id: str,
                      send: Send) -> None:
        store = gateway.store
        assert store is not None
        owner = await self._owner(headers)
        if method == "GET":
            row = await asyncio.to_thread(_load, store, response_id, owner.user)
            if row is None:
                raise _not_found(response_id)
            await send_bytes(send, 200, row.body.encode(), [])
            return
        if not await asyncio.to_thread(_delete, store, response_id, owner.user):
            raise _not_found(response_id)
        await send_bytes(send, 200, to_json({"id": response_id, "object": "response.deleted", "deleted": True}), [])

    # -- GET /v1/responses/{id}/input_items ---------------------------------------------------

    async def _input_items(self, gateway: Gateway, headers: dict[bytes, bytes], response_id: str,
                           query_string: bytes, send: Send) -> None:
        store = gateway.store
        assert store is not None
        # Read as the response itself is: only the key's own user's, another's answering 404 as an unknown one.
        owner = await self._owner(headers)
        query = ri.ItemsQuery.parse(query_string)
        items = await asyncio.to_thread(_listed, store, response_id, owner.user)
        if items is None:
            raise _not_found(response_id)
        await send_bytes(send, 200, to_json(ri.page(items, query, response_id)), [])

    # -- POST /v1/messages/count_tokens -------------------------------------------------------

    async def _count(self, gateway: Gateway, headers: dict[bytes, bytes], body: bytes, send: Send) -> None:
        try:
            data = from_json(body)  # as strict as every other route: no lone surrogates, no nesting to recurse on
        except ValueError as exc:
            raise invalid_json(str(exc)) from None
        if not isinstance(data, dict):
            raise InvalidRequest("the request body must be a JSON object with model and messages")
        try:
            # count_tokens takes no max_tokens; the Messages model requires one.
            native = aw.AnthropicRequest.model_validate({**data, "max_tokens": 1, "stream": False})
            request = aw.to_chat_request(native, beta=aw.client_beta(headers))
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None
        caller = await self.v1._caller(headers, request.user, request.model, aw.USER_FIELD)
        # A count calls no model and costs nothing, but it is a request: the caller's rate limits count it.
        limits = await gateway.admit_request(caller)
        count: int | None = None
        for dep in gateway.catalog.resolve(request.model):
            provider = gateway.providers.get(dep.provider)
            if provider is None:
                continue
            try:
                count = await provider.count_tokens(request, dep)
            except ProviderError:
                continue  # another deployment, or the estimate
            if count is not None:
                break
        estimated = count is None
        tokens = estimate_prompt_tokens(request) if count is None else count
        answer: dict[str, Any] = {"input_tokens": tokens}
        if estimated:
            answer["estimated"] = True
        await send_bytes(send, 200, to_json(answer), [(b"x-ax-tokens-estimated", b"true" if estimated else b"false"),
                                                      *limit_headers(limits)])


# -- the OpenAPI description --------------------------------------------------------------------


class CountTokensRequest(aw.AnthropicRequest):
    """A ``count_tokens`` body: a Messages request without ``max_tokens``."""

    max_tokens: int = 1


_LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "after", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "List the items after this one (an id an earlier page gave)."},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    {"name": "order", "in": "query", "required": False,
     "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"}},
    {"name": "include", "in": "query", "required": False,
     "schema": {"type": "array", "items": {"type": "string", "enum": sorted(ri.INCLUDABLE)}},
     "description": "`message.input_image.image_url` and `reasoning.encrypted_content` add what they name."},
]


def openapi_paths(ref: Any, errors: Any, call_headers: dict[str, Any]) -> tuple[dict[str, Any], list[type]]:
    """The OpenAPI operations of these routes, and the models their schemas come from.

    Args:
        ref: makes a ``$ref`` to a model's schema.
        errors: makes the documented error answers for the given status codes.
        call_headers: the ``x-ax-*`` headers of a served call.
    """
    security: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    path_id = [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    stored = {"description": "The stored response", "content": {"application/json": {"schema": {"type": "object"}}}}
    paths = {
        _RESPONSES: {"post": {
            "tags": ["OpenAI-compatible"], "summary": "Create response", "operationId": "create_response",
            "description": "OpenAI's Responses API: passed through as sent to a provider that speaks it natively "
                           "(`responses = \"native\"`), translated to chat for every other; streamed as Responses "
                           "events with `stream: true`. Stored per key user unless `store` is false.",
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(rw.ResponsesRequest)}}},
            "responses": {"200": {"description": "The response object, or its event stream", "headers": call_headers,
                                  "content": {"application/json": {"schema": {"type": "object"}},
                                              "text/event-stream": {"schema": {"type": "string"}}}},
                          **errors("400", "401", "402", "404", "413", "429", "502", "503", "504")},
        }},
        _RESPONSES + "/{response_id}": {
            "get": {"tags": ["OpenAI-compatible"], "summary": "Retrieve response", "operationId": "get_response",
                    "description": "A stored response of this key's user.", "security": security,
                    "parameters": path_id, "responses": {"200": stored, **errors("401", "404", "503")}},
            "delete": {"tags": ["OpenAI-compatible"], "summary": "Delete response", "operationId": "delete_response",
                       "description": "Forget a stored response of this key's user.", "security": security,
                       "parameters": path_id, "responses": {"200": stored, **errors("401", "404", "503")}},
        },
        _RESPONSES + "/{response_id}/" + _INPUT_ITEMS: {
            "get": {"tags": ["OpenAI-compatible"], "summary": "List input items", "operationId": "list_input_items",
                    "description": "What a stored response of this key's user was given, instructions aside: the "
                                   "earlier turns it continues and its own input, as items with stable ids.",
                    "security": security, "parameters": [*path_id, *_LIST_PARAMETERS],
                    "responses": {"200": {"description": "`{\"object\": \"list\", \"data\": [...], \"first_id\", "
                                                         "\"last_id\", \"has_more\"}`",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **errors("400", "401", "404", "503")}},
        },
        _COUNT: {"post": {
            "tags": ["Anthropic-compatible"], "summary": "Count message tokens", "operationId": "count_tokens",
            "description": "Anthropic's own count for models an Anthropic deployment serves; otherwise ax's "
                           "estimate, marked `estimated: true` and `x-ax-tokens-estimated: true`.",
            "security": [{"apiKeyHeader": []}, {"bearerAuth": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(CountTokensRequest)}}},
            "responses": {"200": {"description": "`{\"input_tokens\": N}`",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          **errors("400", "401", "404", "413", "503")},
        }},
    }
    return paths, [rw.ResponsesRequest, CountTokensRequest]
