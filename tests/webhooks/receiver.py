"""A webhook receiver on 127.0.0.1 that answers from a script and remembers what it got."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Receiver:
    """Replies with ``replies`` in turn (then 200); ``hits`` holds (path, body) of every request."""

    replies: list[int] = field(default_factory=list)
    hits: list[tuple[str, bytes]] = field(default_factory=list)
    base: str = ""
    #: Where a 3xx reply points (``Location``).
    location: str = "/internal"
    #: The body of every reply (a receiver may answer anything; it must not be kept).
    reply_body: str = "ok"

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append((request.path_qs, await request.read()))
        status = self.replies.pop(0) if self.replies else 200
        headers = {"Location": self.location} if 300 <= status < 400 else {}
        return web.Response(status=status, text=self.reply_body, headers=headers)


@asynccontextmanager
async def receiver(**kw: object) -> AsyncIterator[Receiver]:
    """A running `Receiver`; ``base`` is its ``http://127.0.0.1:PORT``."""
    r = Receiver(**kw)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", r.handle)
    runner = web.AppRunner(app, access_log=None)  # the receiver's own log is not ax's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    r.base = f"http://127.0.0.1:{port}"
    try:
        yield r
    finally:
        await runner.cleanup()
