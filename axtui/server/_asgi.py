"""Raw ASGI plumbing for the hot routes: read a bounded body, send bytes.

The hot routes skip Starlette's request objects: a body read into one
bytes object, headers as one dict, a response as two ASGI messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from axtui.server.errors import Headers, HTTPProblem

__all__ = ["Receive", "Scope", "Send", "header_dict", "read_body", "send_bytes", "too_large"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


def header_dict(scope: Scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name (ASGI servers lower-case them)."""
    return dict(scope["headers"])


def too_large(limit: int) -> HTTPProblem:
    """The 413 for a body over ``limit`` bytes."""
    return HTTPProblem(
        413,
        f"the request body is larger than this gateway accepts ({limit:,} bytes); send less, "
        "or raise server.max_body_bytes in the config",
        error_type="invalid_request_error",
        code="request_too_large",
    )


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The whole request body, refusing one over ``limit`` bytes early.

    Raises:
        HTTPProblem: 413 when the declared or actual length is over ``limit``.
        ClientGone: the client went away mid-body.
    """
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = JSON) -> None:
    """One complete response."""
    headers.append((b"content-type", content_type))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
