"""Anthropic's wire format: the Messages API, its event stream, models.

Served at ``/v1/messages`` and, for clients that send ``anthropic-version``,
``/v1/models``. ``usage.input_tokens`` counts only the prompt tokens that
were neither read from nor written to the prompt cache; those are
``cache_read_input_tokens`` and ``cache_creation_input_tokens``. A stream
is ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``…, ``content_block_stop``, ``message_delta`` (stop
reason and usage), ``message_stop``. Errors are
``{"type": "error", "error": {"type", "message"}}``; an overloaded
provider answers 529.
"""

from __future__ import annotations

import json
from typing import Any

from axtui.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from axtui.providers.anthropic import anthropic_usage_body
from axtui.providers.sim.simulate import ChatPlan, EmbedPlan
from axtui.providers.sim.spec import ProviderProfile
from axtui.providers.sim.wire import ChatCall, EmbedCall, Wire, bad_request, chat_request, overflow_of, sse, status_of
from axtui.types import Usage

__all__ = ["AnthropicWire"]

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens"}


def _usage(usage: Usage, *, output_tokens: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = dict(anthropic_usage_body(usage))
    # What Anthropic adds that ax's answers leave out, as Anthropic sends it.
    body["cache_creation"] = {"ephemeral_5m_input_tokens": usage.cache_write_tokens, "ephemeral_1h_input_tokens": 0}
    body["service_tier"] = "standard"
    if output_tokens is not None:
        body["output_tokens"] = output_tokens
    return body


def _block_text(block: Any) -> dict[str, Any]:
    """A content block as an OpenAI-shaped part (text, or an image marker)."""
    if not isinstance(block, dict):
        raise bad_request("messages: each content block must be an object with a 'type'")
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind in ("image", "document"):
        return {"type": "image"}
    if kind == "tool_result":
        inner = block.get("content")
        text = inner if isinstance(inner, str) else json.dumps(inner)
        return {"type": "text", "text": text}
    # tool_use, thinking, … count by their JSON, as the real tokenizer would see them.
    return {"type": "text", "text": json.dumps(block)}


class AnthropicWire(Wire):
    """Anthropic's Messages API."""

    name = "anthropic"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A Messages body as a `ChatCall`; ``max_tokens`` is required, as upstream."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object with 'model', 'max_tokens' and 'messages'")
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                raise bad_request(f"{key}: Field required")
        messages: list[dict[str, Any]] = []
        system = body.get("system")
        if isinstance(system, str) and system:
            messages.append({"role": "system", "content": system})
        elif isinstance(system, list):
            messages.append({"role": "system", "content": [_block_text(b) for b in system]})
        raw = body["messages"]
        if not isinstance(raw, list) or not raw:
            raise bad_request("messages: at least one message is required")
        for m in raw:
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise bad_request("messages: each message needs a role of 'user' or 'assistant'")
            content = m.get("content")
            parts = content if isinstance(content, str) else [_block_text(b) for b in content or []]
            messages.append({"role": m["role"], "content": parts})
        data: dict[str, Any] = {
            "model": body["model"],
            "messages": messages,
            "max_tokens": body["max_tokens"],
            "stop": body.get("stop_sequences") or None,
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "tools": body.get("tools") or None,
        }
        request = chat_request(data)
        return ChatCall(request=request, model=request.model, stream=bool(body.get("stream")))

    def _message(self, plan: ChatPlan, call: ChatCall, *, content: list[Any], done: bool,
                 usage: dict[str, Any]) -> dict[str, Any]:
        stop = None
        if done:
            stop = "stop_sequence" if plan.stop_sequence else _STOP_REASON.get(plan.finish_reason, "end_turn")
        return {
            "id": f"msg_{plan.response_id}",
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": plan.stop_sequence if done else None,
            "usage": usage,
        }

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A ``message`` object with one text block."""
        return self._message(plan, call, content=[{"type": "text", "text": plan.text}], done=True,
                             usage=_usage(plan.usage))

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``message_start`` (input usage known, one output token), the text block's start, a ping."""
        start = self._message(plan, call, content=[], done=False, usage=_usage(plan.usage, output_tokens=1))
        return [
            sse({"type": "message_start", "message": start}, event="message_start"),
            sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                event="content_block_start"),
            sse({"type": "ping"}, event="ping"),
        ]

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """A ``content_block_delta`` with a ``text_delta``."""
        return sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                   event="content_block_delta")

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``content_block_stop``, ``message_delta`` with the final usage, ``message_stop``."""
        stop = "stop_sequence" if plan.stop_sequence else _STOP_REASON.get(plan.finish_reason, "end_turn")
        return [
            sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
            sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": plan.stop_sequence},
                 "usage": _usage(plan.usage)}, event="message_delta"),
            sse({"type": "message_stop"}, event="message_stop"),
        ]

    def stream_garbage(self, plan: ChatPlan) -> bytes:
        """A delta event whose data is cut mid-string."""
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"te\n\n'


    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """Anthropic has no embeddings endpoint."""
        raise bad_request("Anthropic's API has no embeddings endpoint", status=404)

    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """Never called: `parse_embed` refuses."""
        raise bad_request("Anthropic's API has no embeddings endpoint", status=404)

    def models_body(self, providers: list[ProviderProfile]) -> Any:
        """A page of ``model`` objects."""
        names = list(dict.fromkeys(m.name for p in providers for m in p.models if not m.is_embedding))
        data = [{"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"} for n in names]
        return {"data": data, "has_more": False, "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None}

    def error_status(self, exc: ProviderError) -> int:
        """As `status_of`, but overload is Anthropic's own 529."""
        status = status_of(exc)
        return 529 if status == 503 else status

    def error_body(self, exc: ProviderError, status: int) -> Any:
        """``{"type": "error", "error": {...}}`` with Anthropic's error type."""
        overflow = overflow_of(exc)
        message = exc.message
        if overflow is not None and overflow.prompt_tokens > overflow.context_window:
            message = f"prompt is too long: {overflow.prompt_tokens} tokens > {overflow.context_window} maximum"
        elif overflow is not None:
            message = (
                f"input length and `max_tokens` exceed context limit: {overflow.prompt_tokens} + "
                f"{overflow.output_tokens} > {overflow.context_window}, decrease input length or `max_tokens` "
                f"and try again"
            )
        kind = "api_error"
        if isinstance(exc, ProviderBadRequest):
            kind = "not_found_error" if status == 404 else "invalid_request_error"
        elif isinstance(exc, ProviderRateLimited):
            kind = "rate_limit_error"
        elif isinstance(exc, ProviderAuthError):
            kind = "authentication_error"
        elif isinstance(exc, ProviderTimeout):
            kind = "timeout_error"
        elif isinstance(exc, ProviderServerError) and status == 529:
            kind = "overloaded_error"
        return {"type": "error", "error": {"type": kind, "message": message}}
