"""The network path of the HTTP adapters: one pooled aiohttp session per provider.

The session is made on first use, inside the running loop (aiohttp binds a
session to its loop), and lives until `AiohttpExchange.aclose`. Timeouts
follow the provider's config the way httpx's did: ``connect_timeout_s`` to
open a connection, ``timeout_s`` for each wait on the provider (the answer's
headers, then each read of its body), so a long stream that keeps flowing
never times out but one that stalls does.

aiohttp's exceptions become `TransportFailure` here, at the edge:

- `ServerTimeoutError` (socket read or connect) and a plain
  `asyncio.TimeoutError` are a timeout;
- `ClientConnectorError` (refused, DNS, TLS) means the host cannot be reached;
- a `ClientPayloadError` caused by a bad content encoding is an
  undecodable body;
- anything else (`ServerDisconnectedError`, a payload cut short, a reset)
  is a broken connection, which `HTTPProvider` reports as an interrupted
  stream when it happens mid-stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError
from yarl import URL

from axtui.config import ProviderConfig
from axtui.providers._exchange import Exchange, Reply, StreamReply, TransportFailure

__all__ = ["KEEPALIVE_S", "POOL_LIMIT", "AiohttpExchange"]

#: Connections open at once per provider. A worker at 1,000 calls/s against
#: answers taking a second holds about that many; beyond it, calls wait for
#: a free connection (within ``timeout_s``) rather than run out of sockets.
POOL_LIMIT = 1000
#: Seconds an idle connection is kept for reuse.
KEEPALIVE_S = 30.0
#: Distinct request URLs remembered (parsed once, not per call).
_URL_CACHE = 256

_ERRORS = (aiohttp.ClientError, TimeoutError)


def _failure(exc: BaseException) -> TransportFailure:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        # ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors too.
        return TransportFailure("timeout", detail)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportFailure("connect", detail)
    if isinstance(exc, aiohttp.ClientPayloadError) and isinstance(exc.__cause__, ContentEncodingError):
        return TransportFailure("decode", detail)
    return TransportFailure("broken", detail)


class _AiohttpStream(StreamReply):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _ERRORS as exc:
            raise _failure(exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _ERRORS as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        response = self._response
        if response.content.is_eof():
            # Read to its end: the connection goes back to the pool.
            response.release()
        else:
            # Left mid-way (a consumer that stopped, or an error): the
            # connection has unread bytes and cannot be reused; closing it
            # also tells the provider to stop generating.
            response.close()


class AiohttpExchange(Exchange):
    """Requests to one base URL over one lazily made, pooled `aiohttp.ClientSession`."""

    def __init__(self, config: ProviderConfig, *, base_url: str) -> None:
        self._config = config
        self._base_url = base_url
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use (inside the running loop)."""
        session = self._session
        if session is None or session.closed:
            config = self._config
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=KEEPALIVE_S),
                # connect covers waiting for a free pooled connection too,
                # so it gets the longer budget; the socket's own connect the shorter.
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=max(config.timeout_s, config.connect_timeout_s),
                    sock_connect=config.connect_timeout_s,
                    sock_read=config.timeout_s,
                ),
                headers=config.headers,
            )
        return session

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[path] = URL(self._base_url + path)
        return url

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> Reply:
        """One exchange; the connection goes back to the pool once the body is read."""
        try:
            response = await self.session.request(method, self._url(path), data=body, params=params, headers=headers)
        except _ERRORS as exc:
            raise _failure(exc) from exc
        try:
            content = await response.read()
        except _ERRORS as exc:
            raise _failure(exc) from exc
        finally:
            response.release()
        return Reply(response.status, response.headers, content)

    async def open_stream(
        self, path: str, *, body: bytes, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> StreamReply:
        """A POST whose body is read as it arrives."""
        try:
            response = await self.session.request("POST", self._url(path), data=body, params=params, headers=headers)
        except _ERRORS as exc:
            raise _failure(exc) from exc
        return _AiohttpStream(response)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
