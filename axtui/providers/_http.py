"""The request plumbing of the HTTP adapters.

`HTTPProvider` does one JSON exchange, or one streamed exchange that always
closes its response, through the provider's `Exchange` (aiohttp on the
network, httpx over a test transport), and turns transport failures and
error answers into the most specific `ProviderError`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ProviderConfig
from axtui.errors import (
    InvalidRequest,
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers._exchange import StreamReply, TransportFailure
from axtui.providers._wire import (
    SSEEvent,
    error_for_status,
    excerpt,
    iter_sse,
    learn_limits,
    parse_error_body,
    redact,
    status_for_type,
    strict_json,
)
from axtui.providers.base import Provider
from axtui.tracecontext import outbound_headers

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPProvider"]

_JSON_HEADERS = {"Content-Type": "application/json"}


# What httpx's json= sends: compact, UTF-8, and no NaN (not JSON). One encoder for every body
# (``json.dumps`` with options builds a new one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _dumps(payload: Any) -> bytes:
    """``payload`` as the JSON body a provider is sent.

    Raises:
        InvalidRequest: it holds what JSON cannot carry, which only the client's request can have put there
            (a number the client sent as NaN, Infinity or 1e999; half a surrogate pair in JSON text it sent
            inside a string, tool arguments): the message says where.
    """
    try:
        return _ENCODE(payload).encode()
    except ValueError:  # UnicodeEncodeError is one
        where = _unsendable(payload, "") or "a value"
        raise InvalidRequest(
            f"the request holds what JSON cannot carry ({where}); send numbers as finite numbers (not NaN, "
            "Infinity or past 1.8e308) and text as whole Unicode characters (a \\u escape of a UTF-16 surrogate "
            "only with its pair)") from None


def _unsendable(value: Any, path: str) -> str | None:
    """Where in ``value`` (a body for a provider) the first thing JSON cannot carry is, said for people."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'the body'} is {value!r}"
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return f"{path or 'the body'} holds half a UTF-16 surrogate pair"
        return None
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, member in items:
        where = f"{path}.{key}" if path else str(key)
        found = _unsendable(key, path) if isinstance(key, str) else None
        found = found or _unsendable(member, where)
        if found is not None:
            return found
    return None


#: Bodies that are not an event stream, whatever the status says: a server that ignored ``stream``, a proxy's page.
_NOT_A_STREAM = frozenset({"application/json", "text/html"})


class HTTPProvider(Provider):
    """A provider spoken to over HTTP with JSON bodies and SSE streams.

    Subclasses set ``stream_end_marker`` (named when a stream is cut) and
    implement the four operations with `_request` and `_open_stream`.
    """

    stream_end_marker: ClassVar[str] = "its end marker"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(config, transport=transport)
        self.clock: Clock = clock or SYSTEM_CLOCK

    @property
    def key_env(self) -> str | None:
        """The environment variable the key is read from, if any."""
        return self.config.api_key_env or self.default_key_env

    def _secret(self) -> str | None:
        try:
            return self.api_key(required=False)
        except ProviderError:
            return None

    def _transport_error(self, failure: TransportFailure, *, streaming: bool = False) -> ProviderError:
        name = self.name
        detail = redact(failure.detail, self._secret())
        if failure.kind == "timeout":
            return ProviderTimeout(
                f"provider {name!r} did not answer within {self.config.timeout_s:g}s ({detail}); "
                f"try again, or raise timeout_s in its config",
                provider=name,
            )
        if failure.kind == "decode":
            return MalformedResponse(
                f"provider {name!r} sent a body that could not be decoded ({detail})", provider=name
            )
        if streaming:
            return self._interrupted(f"the connection broke: {detail}")
        if failure.kind == "connect":
            return ProviderConnectionError(
                f"cannot reach provider {name!r} at {self.base_url} ({detail}); "
                f"check that it is running and that base_url is right",
                provider=name,
            )
        return ProviderConnectionError(
            f"the connection to provider {name!r} broke before the answer was complete ({detail}); try again",
            provider=name,
        )

    def _interrupted(self, why: str = "") -> StreamInterrupted:
        because = f" ({why})" if why else ""
        return StreamInterrupted(
            f"provider {self.name!r} closed the stream before {self.stream_end_marker}{because}; "
            f"the answer is incomplete, try again or another deployment",
            provider=self.name,
        )

    def _status_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return error_for_status(
            self.name,
            status,
            headers,
            body,
            now=self.clock.now(),
            secret=self._secret(),
            key_env=self.key_env if self.auth_headers_sent else None,
        )

    def _event_error(self, payload: Mapping[str, Any]) -> ProviderError:
        """The error a provider sent as an event inside a stream."""
        status = status_for_type(parse_error_body(payload))
        return error_for_status(
            self.name, status, {}, payload, now=self.clock.now(), secret=self._secret(), in_stream=True
        )

    @property
    def auth_headers_sent(self) -> bool:
        """Whether requests carry a key (auth errors then name its variable)."""
        return True

    def _malformed(self, what: str, exc: BaseException | None = None) -> MalformedResponse:
        because = f": {exc!r}" if exc is not None else ""
        return MalformedResponse(f"provider {self.name!r} sent {what} that ax cannot read{because}", provider=self.name)

    def _json(self, content: bytes, status: int) -> dict[str, Any]:
        why = ""
        try:
            data = strict_json(content)
        except ValueError as exc:
            data, why = None, f", {exc}"
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"provider {self.name!r} answered HTTP {status} with a body that is not a JSON object "
                f"({excerpt(content, self._secret())!r}{why})",
                provider=self.name,
                http_status=status,
            )
        return data

    async def _request(
        self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One JSON exchange, ``headers`` sent beside the provider's own; errors are converted into the
        `ProviderError` tree."""
        sent = {**self.auth_headers(), **(headers or {})}
        body = None
        if payload is not None:
            body = _dumps(payload)
            sent = {**sent, **_JSON_HEADERS}
        if (trace := outbound_headers()) is not None:
            sent = {**sent, **trace}
        try:
            reply = await self.exchange.request(method, path, body=body, params=params, headers=sent)
        except TransportFailure as failure:
            raise self._transport_error(failure) from failure
        learn_limits(self.upstream_limits, reply.headers, self.clock.now())
        if not 200 <= reply.status < 300:
            raise self._status_error(reply.status, reply.headers, reply.body)
        return self._json(reply.body, reply.status)

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Any, *, params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """A streamed POST (``headers`` sent beside the provider's own) whose events are yielded; the
        response always closes.

        Failures before the answer and failures while reading it map to
        different errors. Leaving the block early (a consumer that stops
        iterating) closes the response, and so the upstream call.
        """
        sent = {**self.auth_headers(), **(headers or {}), **_JSON_HEADERS, **(outbound_headers() or {})}
        try:
            reply = await self.exchange.open_stream(path, body=_dumps(payload), params=params, headers=sent)
        except TransportFailure as failure:
            raise self._transport_error(failure) from failure
        try:
            learn_limits(self.upstream_limits, reply.headers, self.clock.now())
            if not 200 <= reply.status < 300:
                try:
                    body = await reply.read()
                except TransportFailure as failure:
                    raise self._transport_error(failure) from failure
                raise self._status_error(reply.status, reply.headers, body)
            kind = str(reply.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
            if kind in _NOT_A_STREAM:
                try:
                    body = await reply.read()
                except TransportFailure as failure:
                    raise self._transport_error(failure) from failure
                raise MalformedResponse(f"provider {self.name!r} answered a stream request with {kind} instead of an "
                                        f"event stream ({excerpt(body, self._secret())!r})", provider=self.name)
            async with contextlib.aclosing(self._events(reply)) as events:
                yield events
        finally:
            await reply.aclose()

    async def _events(self, reply: StreamReply) -> AsyncGenerator[SSEEvent, None]:
        try:
            async for event in iter_sse(reply.chunks()):
                yield event
        except TransportFailure as failure:
            raise self._transport_error(failure, streaming=True) from failure

    def _event_json(self, event: SSEEvent) -> dict[str, Any]:
        """An event's data as a JSON object."""
        why = ""
        try:
            data = strict_json(event.data)
        except ValueError as exc:
            data, why = None, f", {exc}"
        if not isinstance(data, dict):
            raise self._malformed(f"a stream event that is not a JSON object ({excerpt(event.data, self._secret())!r}"
                                  f"{why})")
        return data
