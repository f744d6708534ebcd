"""Anthropic's wire format: the Messages API, its event stream, models.

Served at ``/v1/messages`` and, for clients that send ``anthropic-version``,
``/v1/models``. ``usage.input_tokens`` counts only the prompt tokens that
were neither read from nor written to the prompt cache; those are
``cache_read_input_tokens`` and ``cache_creation_input_tokens``. A stream
is ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta``…, ``content_block_stop``, ``message_delta`` (stop
reason and usage), ``message_stop``. Structured outputs
(``output_config.format``, a JSON schema) are answered with a value of the
schema. Errors are
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
from axtui.providers.sim.simulate import ChatPlan, EmbedPlan, thinking_signature
from axtui.providers.sim.spec import ProviderProfile
from axtui.providers.sim.wire import ChatCall, EmbedCall, Wire, bad_request, chat_request, overflow_of, sse, status_of
from axtui.types import Usage

__all__ = ["AnthropicWire"]

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _check_thinking(messages: list[Any], thinking_on: bool) -> None:
    """Refuse thinking blocks that were altered, and a tool turn that lost its thinking, as Anthropic does."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant" or not isinstance(m.get("content"), list):
            continue
        for j, block in enumerate(m["content"]):
            if (isinstance(block, dict) and block.get("type") == "thinking"
                    and block.get("signature") != thinking_signature(str(block.get("thinking", "")))):
                raise bad_request(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    if not thinking_on or last is None or not isinstance(last.get("content"), list):
        return
    blocks = [b for b in last["content"] if isinstance(b, dict)]
    if any(b.get("type") == "tool_use" for b in blocks) and blocks[0].get("type") not in ("thinking",
                                                                                          "redacted_thinking"):
        raise bad_request(
            f"messages.{messages.index(last)}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with a "
            f"thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
        )


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


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """Structured outputs' ``output_config.format`` (or the beta's ``output_format``) as a chat ``response_format``."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise bad_request("output_config.format: must be {\"type\": \"json_schema\", \"schema\": {...}}")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


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
            role = m["role"]
            if role == "user" and isinstance(content, list) and content and all(
                    isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
                role = "tool"  # tool results: the model answers them in words
            messages.append({"role": role, "content": parts})
        thinking = body.get("thinking")
        thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        if thinking_on and isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise bad_request("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= body["max_tokens"]:
                raise bad_request("`max_tokens` must be greater than `thinking.budget_tokens`")
        _check_thinking(raw, thinking_on)
        choice = body.get("tool_choice")
        if thinking_on and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            raise bad_request("Thinking may not be enabled when tool_choice forces tool use.")
        data: dict[str, Any] = {
            "model": body["model"],
            "messages": messages,
            "max_tokens": body["max_tokens"],
            "stop": body.get("stop_sequences") or None,
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "tools": body.get("tools") or None,
            "tool_choice": body.get("tool_choice") or None,
        }
        if thinking_on:
            data["thinking"] = thinking
        data["response_format"] = _response_format(body)
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

    @staticmethod
    def _shows_thinking(plan: ChatPlan, call: ChatCall) -> bool:
        return bool(plan.thinking) and isinstance(call.request.passthrough().get("thinking"), dict)

    def _text_index(self, plan: ChatPlan, call: ChatCall) -> int:
        return 1 if self._shows_thinking(plan, call) else 0

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A ``message``: thinking (when enabled), the text, then any ``tool_use`` blocks."""
        content: list[dict[str, Any]] = []
        if self._shows_thinking(plan, call):
            content.append({"type": "thinking", "thinking": plan.thinking,
                            "signature": thinking_signature(plan.thinking)})
        if plan.text or not plan.tool_calls:
            content.append({"type": "text", "text": plan.text})
        content += [{"type": "tool_use", "id": c.id.replace("call_", "toolu_", 1), "name": c.name,
                     "input": json.loads(c.arguments)} for c in plan.tool_calls]
        return self._message(plan, call, content=content, done=True, usage=_usage(plan.usage))

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``message_start``, the thinking block (when enabled), the text block's start, a ping."""
        start = self._message(plan, call, content=[], done=False, usage=_usage(plan.usage, output_tokens=1))
        events = [sse({"type": "message_start", "message": start}, event="message_start")]
        if self._shows_thinking(plan, call):
            events += [
                sse({"type": "content_block_start", "index": 0,
                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                    event="content_block_start"),
                sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "thinking_delta", "thinking": plan.thinking}}, event="content_block_delta"),
                sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "signature_delta", "signature": thinking_signature(plan.thinking)}},
                    event="content_block_delta"),
                sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
            ]
        if plan.chunks or not plan.tool_calls:
            events.append(sse({"type": "content_block_start", "index": self._text_index(plan, call),
                               "content_block": {"type": "text", "text": ""}}, event="content_block_start"))
        events.append(sse({"type": "ping"}, event="ping"))
        return events

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """A ``content_block_delta`` with a ``text_delta``."""
        return sse({"type": "content_block_delta", "index": self._text_index(plan, call),
                    "delta": {"type": "text_delta", "text": piece}}, event="content_block_delta")

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Each call as a ``tool_use`` block whose input arrives as ``input_json_delta`` fragments."""
        events: list[bytes] = []
        index = self._text_index(plan, call)
        if plan.chunks and plan.tool_calls:
            events.append(sse({"type": "content_block_stop", "index": index}, event="content_block_stop"))
            index += 1
        for c, pieces in zip(plan.tool_calls, plan.fragments, strict=True):
            block = {"type": "tool_use", "id": c.id.replace("call_", "toolu_", 1), "name": c.name, "input": {}}
            events.append(sse({"type": "content_block_start", "index": index, "content_block": block},
                              event="content_block_start"))
            events += [sse({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": p}}, event="content_block_delta")
                       for p in pieces]
            events.append(sse({"type": "content_block_stop", "index": index}, event="content_block_stop"))
            index += 1
        return events

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """``content_block_stop`` (of the text), ``message_delta`` with the final usage, ``message_stop``."""
        stop = "stop_sequence" if plan.stop_sequence else _STOP_REASON.get(plan.finish_reason, "end_turn")
        events = []
        if not plan.tool_calls:
            events.append(sse({"type": "content_block_stop", "index": self._text_index(plan, call)},
                              event="content_block_stop"))
        events.append(sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": plan.stop_sequence},
                           "usage": _usage(plan.usage)}, event="message_delta"))
        events.append(sse({"type": "message_stop"}, event="message_stop"))
        return events

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
