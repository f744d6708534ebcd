"""Keeping a stream's connection open while its first chunk is awaited.

A streamed answer's headers wait for its first chunk (`CallStream.start`),
so that a failure before it can still fall back to another deployment or
reach the client as an HTTP error, and the headers can name the provider
and cache status. Some first chunks take minutes (hidden reasoning, a
server-side web search), and a proxy between the client and ax drops a
connection idle for 60 s (nginx, AWS ALB) or 100 s (Cloudflare).

So after ``server.stream_keepalive_s`` without a first chunk, `KeepAlive`
commits to the stream: it sends the 200 with the headers known by then,
and an SSE comment (`KEEP_ALIVE`, which every SSE client skips), and one
more every as long until the first chunk comes. The call goes on as
before: a deployment failing before its first chunk still falls back to
the next, whose answer is the only one the client sees. What the commit
costs: when every deployment fails, the client gets the error as the
stream's error event instead of an HTTP status.

Never before the call waits on a deployment (`KeepAlive.upstream`): a
refusal by a rate limit or a budget keeps its 429 or 402, and a cached
answer its ``x-ax-cache``, however long a slow store took to give them.
Nor once the first chunk or the failure is in hand, even when the wait
has just run out: that answer goes with its own status and headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from axtui.server._asgi import Send
from axtui.server.errors import Headers

__all__ = ["KEEP_ALIVE", "KeepAlive"]

log = logging.getLogger(__name__)

#: An SSE comment: it keeps the connection busy, and clients skip it.
KEEP_ALIVE = b": keep-alive\n\n"


class KeepAlive:
    """Until a stream's first chunk: after ``every`` seconds its headers, then a keep-alive every ``every`` seconds.

    The headers never go before `upstream` (the call waits on a deployment): past ``every`` seconds, they go then.

    Args:
        send: the ASGI send of the response.
        headers: the headers to commit with (called when the time comes).
        every: seconds to wait, and between keep-alives; 0 never commits.
    """

    def __init__(self, send: Send, headers: Callable[[], Headers], every: float) -> None:
        self._send = send
        self._headers = headers
        self._every = every
        self._first = asyncio.Event()
        self._due = False  # ``every`` seconds have passed
        self._upstream = False  # the call waits on a deployment
        self._sent = False
        self._beat: asyncio.Task[None] | None = None
        # A timer, not a task: a stream whose first chunk comes in time pays for no more.
        self._timer = asyncio.get_running_loop().call_later(every, self._elapsed) if every > 0 else None

    def upstream(self) -> None:
        """The call now waits on a deployment (`CallStream.on_upstream`): from here on the headers may go."""
        self._upstream = True
        if self._due:
            self._commit()

    def _elapsed(self) -> None:
        self._due = True
        if self._upstream:
            self._commit()

    def _commit(self) -> None:
        if self._beat is None:
            self._beat = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        if self._first.is_set():
            return  # the first chunk, or the failure, came before this ran: it goes with its own headers
        self._sent = True
        try:
            await self._send({"type": "http.response.start", "status": 200, "headers": self._headers()})
            while not self._first.is_set():
                await self._send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._every):
                        await self._first.wait()
        except Exception as exc:  # the connection broke: the stream's own sends meet it, or the client's leaving
            log.debug("keep-alive stopped: %r", exc)

    async def stop(self) -> bool:
        """The first chunk came, or the call failed: no more keep-alives, once one being sent is.

        Returns:
            Whether the headers were sent.
        """
        if self._timer is not None:
            self._timer.cancel()
        self._first.set()
        if self._beat is not None:
            await self._beat
        return self._sent

    def cancel(self) -> None:
        """Stop at once (the client went away)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._beat is not None:
            self._beat.cancel()
