"""A fake upstream for the adapters: `httpx.MockTransport` with a memory.

`Upstream` answers each request with the next prepared answer (the last
one repeats) and keeps every request it received, so a test can assert on
what the adapter sent. Streamed answers arrive in small pieces, as over a
real network, and can be cut short or broken.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

PAYLOADS = Path(__file__).parent / "payloads"

Answer = Callable[[httpx.Request], httpx.Response]


def payload(name: str) -> Any:
    """A JSON payload file, parsed."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def sse_text(name: str) -> str:
    """An SSE payload file, as text."""
    return (PAYLOADS / name).read_text(encoding="utf-8")


class PiecewiseStream(httpx.AsyncByteStream):
    """A body delivered a few bytes at a time; it may break, and it knows if it was closed."""

    def __init__(self, body: bytes, *, piece: int = 7, error: Exception | None = None) -> None:
        self.body = body
        self.piece = piece
        self.error = error
        self.closed = False
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.piece):
            self.sent = start + self.piece
            yield self.body[start : start + self.piece]
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


def json_answer(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    """An answer with a JSON body."""
    return lambda request: httpx.Response(status, json=data, headers=headers)


def raw_answer(status: int, body: bytes | str, headers: dict[str, str] | None = None) -> Answer:
    """An answer with a body taken as it is."""
    content = body.encode() if isinstance(body, str) else body
    return lambda request: httpx.Response(status, content=content, headers=headers)


def sse_answer(text: str, *, error: Exception | None = None, stream: PiecewiseStream | None = None) -> Answer:
    """A streamed ``text/event-stream`` answer, in small pieces."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = stream or PiecewiseStream(text.encode(), error=error)
        return httpx.Response(200, stream=body, headers={"content-type": "text/event-stream"})

    return answer


def raising(exc_type: type[httpx.RequestError], message: str = "boom") -> Answer:
    """An answer that never comes: the transport raises ``exc_type``."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return answer


class Upstream:
    """A fake provider server that records requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        """The transport to hand to a provider."""
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request)

    @property
    def last(self) -> httpx.Request:
        """The last request received."""
        return self.requests[-1]

    @property
    def body(self) -> Any:
        """The JSON body of the last request."""
        return json.loads(self.last.content)


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    """Every chunk of a stream."""
    return [chunk async for chunk in stream]
