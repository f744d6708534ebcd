"""How an HTTP adapter's requests travel: the exchange layer.

`HTTPProvider` speaks to an `Exchange`: one JSON exchange (`Exchange.request`)
or one streamed POST (`Exchange.open_stream`). Two implementations:

- `axtui.providers._aiohttp.AiohttpExchange`, the network path: one pooled
  ``aiohttp.ClientSession`` per provider (measured: about a quarter of the
  CPU per call of httpx over httpx-aiohttp's transport);
- `HttpxExchange`, used only when a provider is given an httpx transport,
  which is what tests do with ``httpx.MockTransport``.

Either raises `TransportFailure` (a timeout, an unreachable host, a broken
connection, an undecodable body) in neutral terms; `HTTPProvider` turns it
into the `ProviderError` a user sees, so both paths read alike.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from axtui.config import ProviderConfig

if TYPE_CHECKING:
    import httpx

__all__ = ["Exchange", "FailureKind", "HttpxExchange", "Reply", "StreamReply", "TransportFailure", "make_exchange"]

#: What went wrong, in the terms the error messages use: no answer in time,
#: no connection could be made, the connection broke, or the body could not
#: be decoded (a bad content encoding).
FailureKind = Literal["timeout", "connect", "broken", "decode"]


class TransportFailure(Exception):
    """A failure of the transport itself, raised with the library's error as cause.

    Attributes:
        kind: what went wrong (see `FailureKind`).
        detail: the library's own description (may name the URL, never a header).
    """

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail


@dataclass(slots=True)
class Reply:
    """A complete answer: status, headers (case-insensitive) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class StreamReply(abc.ABC):
    """An answer whose body is read as it arrives; `aclose` must always be called."""

    status: int
    headers: Mapping[str, str]

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The whole body (for an error answer).

        Raises:
            TransportFailure: the connection failed while reading.
        """

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive.

        Raises:
            TransportFailure: the connection failed mid-way.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the connection (closing it if the body was not read to its end)."""


class Exchange(abc.ABC):
    """Requests to one provider's base URL over one connection pool."""

    @abc.abstractmethod
    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> Reply:
        """One exchange, its body read whole.

        Raises:
            TransportFailure: no answer came, or it broke before its end.
        """

    @abc.abstractmethod
    async def open_stream(
        self, path: str, *, body: bytes, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> StreamReply:
        """A POST whose answer is read as it arrives.

        Raises:
            TransportFailure: no answer (status and headers) came.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the pool and its connections."""


def make_exchange(
    config: ProviderConfig, *, base_url: str, transport: httpx.AsyncBaseTransport | None = None
) -> Exchange:
    """The exchange for a provider: aiohttp, or httpx over ``transport`` when one is given."""
    if transport is not None:
        return HttpxExchange(config, base_url=base_url, transport=transport)
    from axtui.providers._aiohttp import AiohttpExchange

    return AiohttpExchange(config, base_url=base_url)


# --- httpx, over a given transport -------------------------------------------------------


def _httpx_failure(exc: Exception) -> TransportFailure:
    import httpx

    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure("timeout", detail)
    if isinstance(exc, httpx.DecodingError):
        return TransportFailure("decode", detail)
    if isinstance(exc, httpx.ConnectError):
        return TransportFailure("connect", detail)
    return TransportFailure("broken", detail)


class _HttpxStream(StreamReply):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers

    async def read(self) -> bytes:
        import httpx

        try:
            return await self._response.aread()
        except httpx.RequestError as exc:
            raise _httpx_failure(exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.RequestError as exc:
            raise _httpx_failure(exc) from exc

    async def aclose(self) -> None:
        import httpx

        # A connection that broke is already gone; failing to close it is not news.
        with contextlib.suppress(httpx.HTTPError):
            await self._response.aclose()


class HttpxExchange(Exchange):
    """httpx's `AsyncClient` over a given transport (tests pass ``httpx.MockTransport``)."""

    def __init__(self, config: ProviderConfig, *, base_url: str, transport: httpx.AsyncBaseTransport) -> None:
        from axtui.providers.base import make_client

        self._client = make_client(config, transport=transport, base_url=base_url)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> Reply:
        """One exchange through the client."""
        import httpx

        try:
            response = await self._client.request(method, path, content=body, params=params, headers=headers)
        except httpx.RequestError as exc:
            raise _httpx_failure(exc) from exc
        return Reply(response.status_code, response.headers, response.content)

    async def open_stream(
        self, path: str, *, body: bytes, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> StreamReply:
        """A streamed POST through the client."""
        import httpx

        request = self._client.build_request("POST", path, content=body, params=params, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.RequestError as exc:
            raise _httpx_failure(exc) from exc
        return _HttpxStream(response)

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()
