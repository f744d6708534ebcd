"""ax: a local-first gateway for LLM provider calls, with a terminal dashboard.

The public Python API::

    from axtui import Gateway, ChatRequest, Caller

    async with Gateway.open() as gateway:
        response = await gateway.chat(
            ChatRequest(model="fast", messages=[{"role": "user", "content": "Hi"}]),
            Caller(user="alice"),
        )
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CallOptions",
    "CallRecord",
    "Caller",
    "ChatRequest",
    "ChatResponse",
    "Chunk",
    "Gateway",
    "Message",
    "Usage",
    "__version__",
]

from axtui.types import Caller, CallRecord, ChatRequest, ChatResponse, Chunk, Message, Usage

if TYPE_CHECKING:
    from axtui.engine import CallOptions, Gateway


def __getattr__(name: str) -> Any:
    # The engine pulls in HTTP clients and the store; load it on first use so
    # `import axtui` stays cheap for the CLI.
    if name in ("Gateway", "CallOptions"):
        from axtui import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'axtui' has no attribute {name!r}")
