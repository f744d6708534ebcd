"""Calls a graceful stop cuts off: answered with a 503 that says so, never a bare 500 and a traceback.

A graceful stop lets the calls in flight finish for ``server.drain_timeout_s``
(uvicorn's ``timeout_graceful_shutdown``); then uvicorn cancels what still
runs. A cancellation left to it is a plain-text 500 for the client and a
traceback per call in the log (and a stream already begun, say with
keep-alive comments while its first token was slow, simply ends, as if its
answer were complete). The engine records such a call as cancelled on its
way out; `answer_when_cut_off` tells the client: a 503, or the stream's own
error event, which the SDKs raise on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from axtui.server import anthropic_stream, responses_stream, wire
from axtui.server._asgi import Receive, Scope, Send, send_bytes
from axtui.server.errors import HTTPProblem, encode, error_payload

__all__ = ["CUT_OFF", "answer_when_cut_off"]

#: What a call still running when the drain time ran out is answered.
CUT_OFF = HTTPProblem(
    503, "the gateway stopped before this call finished (its drain time, server.drain_timeout_s, ran out); "
    "it is recorded as cancelled. Retry it", error_type="unavailable", code="stopping",
)


async def answer_when_cut_off(
    handle: Callable[[Scope, Receive, Send], Awaitable[None]],
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    anthropic: Callable[[Scope], bool],
) -> None:
    """Run ``handle``; if the web server cancels it as it stops, answer 503 (or end a begun stream with an error).

    Args:
        handle: the route's ASGI handler.
        scope: the request.
        receive: its body.
        send: where the answer goes.
        anthropic: whether the request is answered in Anthropic's error shape.
    """
    try:
        await handle(scope, receive, send)
    except asyncio.CancelledError:
        status, body, headers = error_payload(CUT_OFF, anthropic=anthropic(scope))
        try:
            await send_bytes(send, status, encode(body), headers)
        except RuntimeError:
            # The answer had begun (a stream): it ends with its wire's error event.
            with contextlib.suppress(RuntimeError):
                await send({"type": "http.response.body", "body": _stream_error(scope["path"], body),
                            "more_body": False})
        # Not logged per call: uvicorn's log says how many it cancelled ("Cancel N running task(s)").


def _stream_error(path: str, body: dict[str, Any]) -> bytes:
    """The event that ends a begun stream of ``path`` with the error ``body``."""
    path = path.rstrip("/")
    if path == "/v1/messages":
        return anthropic_stream.error_event(body)
    if path.startswith("/v1/responses"):
        return responses_stream.error_event(body)
    return wire.error_event(body) + wire.DONE
