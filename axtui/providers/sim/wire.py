"""What a wire format must say, for the simulated server to speak it.

A `Wire` turns a provider's request body into a `ChatRequest` (or the
inputs of an embeddings call) and a `ChatPlan` back into that provider's
answer: the plain body, the events of its stream, its error shape. The
server (`server.py`) plays the plan out over HTTP; each of
`wire_openai.py` (with `wire_responses.py`), `wire_anthropic.py` and
`wire_gemini.py` is one `Wire`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from axtui.errors import (
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
)
from axtui.providers.sim.simulate import ChatPlan, ContextOverflow, EmbedPlan
from axtui.providers.sim.spec import ProviderProfile
from axtui.types import ChatRequest

__all__ = ["ChatCall", "EmbedCall", "Wire", "bad_request", "chat_request", "overflow_of", "sse", "status_of"]


@dataclass(slots=True)
class ChatCall:
    """A parsed chat request and how the client wants the answer."""

    request: ChatRequest
    model: str
    stream: bool
    #: OpenAI's ``stream_options.include_usage``: a usage chunk before [DONE].
    include_usage: bool = False
    #: What a wire keeps while it streams this call (the Responses API's event numbers).
    scratch: dict[str, Any] = field(default_factory=dict)


def token_text(ids: list[int]) -> str:
    """What the simulated fleet embeds for token ids: their digits (stable, if meaningless)."""
    return " ".join(map(str, ids))


@dataclass(slots=True)
class EmbedCall:
    """A parsed embeddings request."""

    model: str
    inputs: list[str]
    dimensions: int | None = None
    #: OpenAI's ``encoding_format``: ``float`` or ``base64``.
    encoding: str = "float"


def bad_request(message: str, *, status: int = 400) -> ProviderBadRequest:
    """A refusal of the request itself, worded for the client."""
    return ProviderBadRequest(message, provider="sim", http_status=status)


def chat_request(data: dict[str, Any]) -> ChatRequest:
    """Validate a chat request built from a body; a bad one is a 400."""
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        from axtui.validation import field_problems

        raise bad_request(f"invalid request: {field_problems(exc)[0]}") from None


def status_of(exc: ProviderError) -> int:
    """The HTTP status a simulated failure is answered with."""
    if exc.http_status and exc.http_status >= 400:
        return exc.http_status
    if isinstance(exc, ProviderRateLimited):
        return 429
    if isinstance(exc, ProviderAuthError):
        return 401
    if isinstance(exc, ProviderBadRequest):
        return 400
    if isinstance(exc, ProviderTimeout):
        return 504
    return 500


def overflow_of(exc: ProviderError) -> ContextOverflow | None:
    """The numbers behind a context-window refusal, when that is what it is."""
    if isinstance(exc, ContextTooLong) and isinstance(exc.__cause__, ContextOverflow):
        return exc.__cause__
    return None


def sse(data: Any, *, event: str | None = None, crlf: bool = False) -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    end = "\r\n" if crlf else "\n"
    head = f"event: {event}{end}" if event else ""
    return f"{head}data: {payload}{end}{end}".encode()


class Wire(abc.ABC):
    """One provider's wire format."""

    #: Short name, used in logs and the root listing.
    name: ClassVar[str]

    @abc.abstractmethod
    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """The chat call a body asks for.

        Args:
            body: the decoded JSON body.
            path_model: the model named in the URL (Gemini), if any.
            stream: whether the URL asked for a stream (Gemini), if it says.

        Raises:
            ProviderBadRequest: the body is not a valid request.
        """

    @abc.abstractmethod
    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """The plain (non-streamed) answer's JSON."""

    @abc.abstractmethod
    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Events sent as soon as the stream starts, before any text."""

    @abc.abstractmethod
    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """The event carrying one piece of text."""

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Events carrying the plan's tool calls, after the text (none by default)."""
        return []

    @abc.abstractmethod
    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Events after the last piece: finish, usage, end marker."""

    def streams_events(self, query: Mapping[str, str]) -> bool:
        """Whether a stream request gets server-sent events (else `stream_json`)."""
        return True

    def stream_json(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A whole stream as one JSON document, for formats that offer one."""
        return self.chat_body(plan, call, created)

    def stream_garbage(self, plan: ChatPlan) -> bytes:
        """An event whose data is not valid JSON (the ``malformed`` fault)."""
        return f'data: {{"id": "{plan.response_id}", "choices": [{{"delta": {{"content": "'.encode() + b"\n\n"


    @abc.abstractmethod
    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """The embeddings call a body asks for.

        Raises:
            ProviderBadRequest: the body is not a valid request.
        """

    @abc.abstractmethod
    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """The embeddings answer's JSON."""

    @abc.abstractmethod
    def models_body(self, providers: list[ProviderProfile]) -> Any:
        """The model listing's JSON."""

    @abc.abstractmethod
    def error_body(self, exc: ProviderError, status: int) -> Any:
        """The provider's error JSON for ``exc`` answered with ``status``."""

    def error_status(self, exc: ProviderError) -> int:
        """The HTTP status for ``exc`` (a format may use its own, e.g. 529)."""
        return status_of(exc)
