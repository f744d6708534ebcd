"""The hot routes: ``POST /v1/chat/completions``, ``/v1/embeddings``, ``/v1/messages``.

They are raw ASGI handlers: the body is read once, validated by pydantic
straight from bytes, served by the engine, and answered with one
serialisation. FastAPI's request machinery would halve the throughput;
``/openapi.json`` still documents them (see `axtui.server.openapi`).

Every chat and messages answer carries ``x-ax-request-id`` (the id the
call is recorded under), also as ``request-id`` and ``x-request-id``,
where the Anthropic and OpenAI SDKs read a request's id; a served call adds
``x-ax-provider``, ``x-ax-model``, ``x-ax-cache`` (``miss``, ``exact`` or
``semantic``, with ``x-ax-cache-similarity``), ``x-ax-cost-usd`` (exact
dollars; left out when the price is unknown, and on streams, whose cost
is known only at the end) and ``X-RateLimit-*``; embeddings answers too.

A stream's headers go with its first chunk; one slower than
``server.stream_keepalive_s`` is sent before it once the call waits on a
deployment, without the headers only the first chunk tells
(`axtui.server.keepalive`). A client that
disconnects mid-stream, or while the first chunk is awaited, cancels the
upstream call; the engine records it as ``cancelled``. Once the call has
its outcome (`CallStream.ended`: served in full, or failed), a disconnect
changes nothing: it is recorded once, as what it was.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from axtui.engine.gateway import CallOptions, CallStream, Gateway
from axtui.errors import InvalidRequest
from axtui.money import usd_text
from axtui.ports import CacheDirective, LimitState
from axtui.server import anthropic_wire as aw
from axtui.server import wire
from axtui.server._asgi import ClientGone, Receive, Scope, Send, header_dict, read_body, send_bytes
from axtui.server.anthropic_stream import MessageStreamEncoder
from axtui.server.errors import Headers, HTTPProblem, error_payload, invalid_from_validation, limit_headers
from axtui.server.guard import current_identity
from axtui.server.keepalive import KeepAlive
from axtui.server.state import ServerState
from axtui.tracecontext import valid_traceparent
from axtui.types import Caller, CallRecord, ChatRequest, Chunk

__all__ = ["HOT_PATHS", "V1Routes", "request_id_headers"]

log = logging.getLogger(__name__)

HOT_PATHS = ("/v1/chat/completions", "/v1/embeddings", "/v1/messages")
_SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                         (b"x-accel-buffering", b"no")]


# Request ids only need to be unique, not secret: a random per-process part
# and a counter cost a fraction of a uuid4 (which reads os.urandom each time).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


class StreamEncoding(Protocol):
    """What `V1Routes._pump` needs of a wire format's stream encoder."""

    def encode(self, chunk: Chunk) -> bytes:
        """The bytes for one chunk."""

    def finish(self) -> bytes:
        """The closing bytes."""

    def error_event(self, body: dict[str, Any]) -> bytes:
        """The bytes ending the stream on a failure after its headers: an event the SDKs raise on."""


def _request_id(prefix: str) -> str:
    return f"{prefix}{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def request_id_headers(request_id: str) -> Headers:
    """The call's id as ``x-ax-request-id``, and where the SDKs read it: ``request-id`` (Anthropic's),
    ``x-request-id`` (OpenAI's), so an SDK's ``request_id`` and its errors name the call ax recorded."""
    value = request_id.encode("latin-1", "replace")
    return [(b"x-ax-request-id", value), (b"request-id", value), (b"x-request-id", value)]


def record_headers(rec: CallRecord, limits: list[LimitState], *, cost: bool = True) -> Headers:
    """The x-ax-* (with `request_id_headers`) and X-RateLimit-* headers of a served call."""
    headers = request_id_headers(rec.request_id)
    if rec.provider:
        headers.append((b"x-ax-provider", rec.provider.encode("latin-1", "replace")))
    if rec.model:
        headers.append((b"x-ax-model", rec.model.encode("latin-1", "replace")))
    headers.append((b"x-ax-cache", rec.cache.encode()))
    if rec.similarity is not None:
        headers.append((b"x-ax-cache-similarity", f"{rec.similarity:.4f}".encode()))
    if cost and rec.cost_nanos is not None:
        headers.append((b"x-ax-cost-usd", usd_text(rec.cost_nanos).encode()))
    if limits:
        headers.extend(limit_headers(limits))
    return headers


def _early_headers(stream: CallStream) -> Headers:
    """The headers of a stream sent before its first chunk: its id and rate limits, not yet what the first
    chunk tells (provider, model, cache status)."""
    headers = request_id_headers(stream.record.request_id)
    if stream.limits:
        headers.extend(limit_headers(stream.limits))
    return headers + _SSE_HEADERS


def cache_directive(headers: dict[bytes, bytes], request: ChatRequest) -> CacheDirective:
    """The caller's cache wishes: ``X-Ax-Cache``, else ``metadata.ax_cache``.

    ``ax_cache`` is taken out of the metadata so the provider never sees it.

    Raises:
        InvalidRequest: an unknown directive; the message lists the valid ones.
    """
    raw = headers.get(b"x-ax-cache")
    param = "X-Ax-Cache"
    value: str | None = raw.decode("latin-1") if raw else None
    if request.metadata and "ax_cache" in request.metadata:
        meta = dict(request.metadata)
        from_meta = meta.pop("ax_cache")
        request.metadata = meta or None
        if value is None:
            value, param = str(from_meta), "metadata.ax_cache"
    try:
        return CacheDirective.parse(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=param) from None


def chat_cache_directive(headers: dict[bytes, bytes], request: ChatRequest) -> CacheDirective:
    """`cache_directive`, with the cache left out for ``n > 1`` and log-probabilities.

    The cache keeps one answer per prompt; several choices, or the
    probabilities of one sampling, are not answers to serve again.
    """
    directive = cache_directive(headers, request)
    extra = request.passthrough()
    if (request.n or 1) > 1 or extra.get("logprobs") or extra.get("top_logprobs") is not None:
        directive.read = directive.write = False
    return directive


class V1Routes:
    """The hot routes of one server process, as raw ASGI handlers."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def _gateway(self) -> Gateway:
        gateway = self.state.gateway
        if gateway is None or self.state.auth is None:
            raise HTTPProblem(503, "the gateway is starting or stopping; retry in a moment",
                              error_type="unavailable", code="unavailable")
        return gateway

    async def _send_error(
        self, send: Send, exc: BaseException, request_id: str | None, *, anthropic: bool = False,
        allow: bytes = b"POST",
    ) -> None:
        """The error's answer; ``allow``: the methods a 405's path takes."""
        status, body, headers = error_payload(exc, anthropic=anthropic)
        if request_id is not None:
            headers += request_id_headers(request_id)
        if status == 405:
            headers.append((b"allow", allow))
        await send_bytes(send, status, to_json(body), headers)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request to a hot path."""
        path = scope["path"].rstrip("/")
        anthropic = path == "/v1/messages"
        request_id = _request_id("msg_ax" if anthropic else "chatcmpl-ax")
        if scope["method"] != "POST":
            exc = HTTPProblem(405, f"{path} takes POST", error_type="invalid_request_error", code="method_not_allowed")
            await self._send_error(send, exc, request_id, anthropic=anthropic)
            return
        state = self.state
        state.enter()
        try:
            gateway = self._gateway()
            headers = scope.get("ax.headers") or header_dict(scope)  # the guard's copy, when it made one
            body = await read_body(receive, headers, state.max_body)
            if path == "/v1/chat/completions":
                await self._chat(gateway, headers, body, request_id, receive, send)
            elif path == "/v1/embeddings":
                await self._embeddings(gateway, headers, body, request_id, send)
            else:
                await self._messages(gateway, headers, body, request_id, receive, send)
        except ClientGone:
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._send_error(send, exc, request_id, anthropic=anthropic)
        finally:
            state.leave()

    # -- chat ---------------------------------------------------------------------------------

    async def _chat(
        self, gateway: Gateway, headers: dict[bytes, bytes], body: bytes, request_id: str, receive: Receive, send: Send
    ) -> None:
        try:
            request = ChatRequest.model_validate_json(body)
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None
        caller = await self._caller(headers, request.user, request.model)
        options = CallOptions(cache=chat_cache_directive(headers, request), request_id=request_id,
                              traceparent=_traceparent(headers))
        if request.stream:
            include_usage = bool((request.stream_options or {}).get("include_usage"))
            stream = gateway.stream(request, caller, options)
            await self._pump(stream, lambda: wire.StreamEncoder(request_id, stream.record.model or request.model,
                                                                int(time.time()), include_usage=include_usage),
                             receive, send)
            return
        result = await gateway.call(request, caller, options)
        out = to_json(wire.completion_body(result.response, request_id))
        await send_bytes(send, 200, out, record_headers(result.record, result.limits))

    async def _caller(
        self, headers: dict[bytes, bytes], user: str | None, model: str, user_field: str = "user"
    ) -> Caller:
        """The caller, from the identity the guard found before the body was read (``user_field``: see `Authenticator.caller`).

        Raises:
            ModelNotAllowed: the key (or its team) may not call ``model``.
        """
        auth = self.state.auth
        assert auth is not None  # checked by _gateway
        return await auth.caller(headers, user, current_identity.get(), model=model,
                                 catalog=self._gateway().catalog, user_field=user_field)

    # -- streams ------------------------------------------------------------------------------

    async def _pump(
        self, stream: CallStream, encoding: Callable[[], StreamEncoding], receive: Receive, send: Send
    ) -> None:
        """Run ``stream`` and send it as server-sent events, watching for the client leaving.

        ``encoding`` makes the wire format's encoder once the stream has started. The headers go with the
        first chunk, so a failure before it is raised here (the caller answers it with its HTTP status);
        when the first chunk is slow, a `KeepAlive` sends them before it, and then a failure of every
        deployment is the stream's error event.
        """
        task = asyncio.current_task()
        assert task is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            # Only a call still running is the client's to cancel. Once it has its outcome (its failure
            # being recorded, its last bytes being sent, which uvicorn answers with a disconnect at once),
            # cancelling would record it as cancelled and cut short what settles it.
            if not stream.ended:
                gone = True
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        keepalive = KeepAlive(send, lambda: _early_headers(stream), self.state.settings.server.stream_keepalive_s)
        stream.on_upstream = keepalive.upstream
        try:
            await self._send_stream(stream, encoding, keepalive, send)
        except asyncio.CancelledError:
            if not gone:
                raise
            task.uncancel()
        finally:
            keepalive.cancel()
            watcher.cancel()
        if gone:
            # Closing the stream cancels the upstream call; the engine records it as cancelled.
            await stream.aclose()

    @staticmethod
    async def _send_stream(
        stream: CallStream, encoding: Callable[[], StreamEncoding], keepalive: KeepAlive, send: Send
    ) -> None:
        try:
            await stream.start()
        except Exception as exc:
            if not await keepalive.stop():
                raise  # nothing was sent: the error's own answer
            # Every deployment failed after the keep-alives began (the call is recorded): the error is an event.
            await send({"type": "http.response.body", "body": _error_tail(encoding(), exc), "more_body": False})
            return
        encoder = encoding()
        if not await keepalive.stop():
            headers = record_headers(stream.record, stream.limits, cost=stream.record.cache != "miss") + _SSE_HEADERS
            await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            async for chunk in stream:
                data = encoder.encode(chunk)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": encoder.finish(), "more_body": False})
        except Exception as exc:
            # A chunk this side could not encode: the call ends now, recorded with the error the client gets,
            # before it gets it (the upstream closed, nothing held while a slow client reads the event). A
            # failure the call raised itself is recorded already, and `fail` does nothing.
            await stream.fail(exc)
            # Headers are gone: the error travels as an event the SDKs raise on.
            await send({"type": "http.response.body", "body": _error_tail(encoder, exc), "more_body": False})

    # -- embeddings ---------------------------------------------------------------------------

    async def _embeddings(
        self, gateway: Gateway, headers: dict[bytes, bytes], body: bytes, request_id: str, send: Send
    ) -> None:
        try:
            request = wire.EmbeddingRequest.model_validate_json(body)
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None
        caller = await self._caller(headers, request.user, request.model)
        options = CallOptions(request_id=request_id, traceparent=_traceparent(headers))
        done = await gateway.embed_call(request.inputs(), request.model, caller, options,
                                        dimensions=request.dimensions)
        result = done.response
        out = to_json(wire.embedding_body(result.vectors, result.model, result.usage.input_tokens,
                                          request.encoding_format))
        await send_bytes(send, 200, out, record_headers(done.record, done.limits))

    # -- Anthropic messages -------------------------------------------------------------------

    async def _messages(
        self, gateway: Gateway, headers: dict[bytes, bytes], body: bytes, request_id: str, receive: Receive, send: Send
    ) -> None:
        try:
            native = aw.AnthropicRequest.model_validate_json(body)
            request = aw.to_chat_request(native, beta=aw.client_beta(headers))
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None
        caller = await self._caller(headers, request.user, request.model, aw.USER_FIELD)
        options = CallOptions(cache=cache_directive(headers, request), request_id=request_id, endpoint="messages",
                              traceparent=_traceparent(headers))
        if request.stream:
            stream = gateway.stream(request, caller, options)
            # message_start goes with the first chunk, which says whether it is the upstream's own (its model
            # and usage are the deployment's that answers), so keep-alives are comments, not early events.
            await self._pump(stream, lambda: MessageStreamEncoder(request_id, stream.record.model or request.model),
                             receive, send)
            return
        result = await gateway.call(request, caller, options)
        out = to_json(aw.message_body(result.response, request_id))
        await send_bytes(send, 200, out, record_headers(result.record, result.limits))


def _error_tail(encoder: StreamEncoding, exc: Exception) -> bytes:
    """The event ending a stream that failed with ``exc``, in Anthropic's error terms on a Messages stream."""
    _, payload, _ = error_payload(exc, anthropic=isinstance(encoder, MessageStreamEncoder))
    return encoder.error_event(payload)


def _traceparent(headers: dict[bytes, bytes]) -> str | None:
    """The client's W3C trace context, when it sent a well-formed one."""
    raw = headers.get(b"traceparent")
    return valid_traceparent(raw.decode("latin-1")) if raw else None
