"""The request plumbing of the HTTP adapters.

`HTTPProvider` does one JSON exchange, or one streamed exchange that always
closes its response, and converts httpx's exceptions at the edge into the
most specific `ProviderError`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ProviderConfig
from axtui.errors import (
    MalformedResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers._wire import (
    SSEEvent,
    error_for_status,
    iter_sse,
    learn_limits,
    parse_error_body,
    status_for_type,
)
from axtui.providers.base import Provider

__all__ = ["HTTPProvider"]



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

    def _transport_error(self, exc: httpx.RequestError, *, streaming: bool = False) -> ProviderError:
        name = self.name
        detail = str(exc) or type(exc).__name__
        # httpx-aiohttp reports any aiohttp connection error (a server that
        # hung up, say) as ConnectTimeout; only a real timeout there is one.
        cause = exc.__cause__
        from_aiohttp = cause is not None and type(cause).__module__.startswith("aiohttp")
        timed_out = isinstance(exc, httpx.TimeoutException) and not (
            from_aiohttp and not isinstance(cause, TimeoutError)
        )
        if timed_out:
            return ProviderTimeout(
                f"provider {name!r} did not answer within {self.config.timeout_s:g}s ({detail}); "
                f"try again, or raise timeout_s in its config",
                provider=name,
            )
        if isinstance(exc, httpx.DecodingError):
            return MalformedResponse(
                f"provider {name!r} sent a body that could not be decoded ({detail})", provider=name
            )
        if streaming:
            return self._interrupted(f"the connection broke: {detail}")
        if isinstance(exc, httpx.ConnectError) or type(cause).__name__.startswith("ClientConnector"):
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

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        return error_for_status(
            self.name,
            response.status_code,
            response.headers,
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
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"provider {self.name!r} answered HTTP {status} with a body that is not a JSON object "
                f"({content[:80].decode('utf-8', 'replace')!r})",
                provider=self.name,
                http_status=status,
            )
        return data

    async def _request(
        self, method: str, path: str, *, payload: Any = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One JSON exchange; errors are converted into the `ProviderError` tree."""
        headers = self.auth_headers()
        try:
            response = await self.client.request(method, path, json=payload, params=params, headers=headers)
        except httpx.RequestError as exc:
            raise self._transport_error(exc) from exc
        learn_limits(self.upstream_limits, response.headers, self.clock.now())
        if not response.is_success:
            raise self._status_error(response, response.content)
        return self._json(response.content, response.status_code)

    @contextlib.asynccontextmanager
    async def _open_stream(
        self, path: str, payload: Any, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[AsyncIterator[SSEEvent]]:
        """A streamed POST whose events are yielded; the response always closes.

        This is what ``client.stream(...)`` does, with the error conversion
        split so that failures before the answer and failures while reading
        it map to different errors. Leaving the block early (a consumer that
        stops iterating) closes the response, and so the upstream call.
        """
        headers = self.auth_headers()
        request = self.client.build_request("POST", path, json=payload, params=params, headers=headers)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.RequestError as exc:
            raise self._transport_error(exc) from exc
        try:
            learn_limits(self.upstream_limits, response.headers, self.clock.now())
            if not response.is_success:
                try:
                    body = await response.aread()
                except httpx.RequestError as exc:
                    raise self._transport_error(exc) from exc
                raise self._status_error(response, body)
            async with contextlib.aclosing(self._events(response)) as events:
                yield events
        finally:
            # A connection that broke is already gone; failing to close it is not news.
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()

    async def _events(self, response: httpx.Response) -> AsyncGenerator[SSEEvent, None]:
        try:
            async for event in iter_sse(response.aiter_bytes()):
                yield event
        except httpx.RequestError as exc:
            raise self._transport_error(exc, streaming=True) from exc

    def _event_json(self, event: SSEEvent) -> dict[str, Any]:
        """An event's data as a JSON object."""
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._malformed(f"a stream event that is not a JSON object ({event.data[:80]!r})")
        return data
