"""OpenAI's wire format: chat completions, SSE chunks, embeddings, models.

Served at ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/models``.
A stream is ``data: {chunk}`` events ending with ``data: [DONE]``; with
``stream_options.include_usage`` every chunk carries ``"usage": null`` and
a last chunk with empty ``choices`` carries the usage. Errors are
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from axtui.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
)
from axtui.providers.openai import openai_usage_body
from axtui.providers.sim.simulate import ChatPlan, EmbedPlan
from axtui.providers.sim.spec import ProviderProfile
from axtui.providers.sim.wire import ChatCall, EmbedCall, Wire, bad_request, chat_request, overflow_of, sse, token_text
from axtui.types import ChatRequest, Usage

__all__ = ["OpenAIWire", "logprobs_for", "logprobs_of"]

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
_TOKEN = re.compile(r"\S+\s*|\s+")
# The runners-up a token's top_logprobs list after it (top_logprobs is at most 20).
_ALTERNATIVES = tuple(w + " " for w in (
    "the", "a", "and", "of", "to", "in", "is", "it", "that", "for", "on", "with", "as", "at", "by", "this", "be",
    "or", "from", "an", "so"))


def _tool_calls(plan: ChatPlan) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in plan.tool_calls]


def logprobs_of(text: str, top: int = 0) -> dict[str, Any]:
    """Token log-probabilities of a text (words and the space after them as tokens), in OpenAI's shape.

    Each token lists ``top`` most likely tokens, most likely first: itself,
    then common words it beat.
    """
    content = []
    for token in _TOKEN.findall(text):
        likely = [token, *(w for w in _ALTERNATIVES if w != token)][:top]
        content.append({"token": token, "logprob": -0.25, "bytes": list(token.encode()), "top_logprobs": [
            {"token": t, "logprob": -0.25 if t == token else -2.0 - 0.5 * i, "bytes": list(t.encode())}
            for i, t in enumerate(likely)]})
    return {"content": content, "refusal": None}


def logprobs_for(request: ChatRequest, text: str) -> dict[str, Any] | None:
    """The ``logprobs`` of ``text`` when ``request`` asks for them (with its ``top_logprobs``), else None."""
    extra = request.passthrough()
    if not extra.get("logprobs"):
        return None
    return logprobs_of(text, int(extra.get("top_logprobs") or 0))


def _usage(usage: Usage) -> dict[str, Any]:
    body = openai_usage_body(usage)
    # The counts OpenAI reports that ax has no use for, as OpenAI sends them.
    body["prompt_tokens_details"]["audio_tokens"] = 0
    body["completion_tokens_details"].update(audio_tokens=0, accepted_prediction_tokens=0, rejected_prediction_tokens=0)
    return body


class OpenAIWire(Wire):
    """OpenAI chat completions and embeddings (also Groq, Ollama, vLLM …)."""

    name = "openai"

    def parse_chat(self, body: Any, path_model: str | None, *, stream: bool | None) -> ChatCall:
        """A chat completions body as a `ChatCall`."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object with 'model' and 'messages'")
        request = chat_request(body)
        options = body.get("stream_options") or {}
        return ChatCall(
            request=request,
            model=request.model,
            stream=bool(request.stream),
            include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        )

    def _chunk(self, plan: ChatPlan, call: ChatCall, created: int, *, choices: list[Any], usage: Any = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-{plan.response_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model,
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
            "choices": choices,
        }
        # With include_usage, every chunk says "usage": null but the last.
        if call.include_usage:
            chunk["usage"] = usage
        return chunk

    def chat_body(self, plan: ChatPlan, call: ChatCall, created: int) -> Any:
        """A ``chat.completion`` object: ``n`` choices (the same answer), logprobs when asked."""
        message: dict[str, Any] = {"role": "assistant", "content": plan.text or None, "refusal": None,
                                   "annotations": []}
        if plan.tool_calls:
            message["tool_calls"] = _tool_calls(plan)
        elif not plan.text:
            message["content"] = ""
        logprobs = logprobs_for(call.request, plan.text)
        choices = [
            {
                "index": i,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": _FINISH.get(plan.finish_reason, plan.finish_reason),
            }
            for i in range(call.request.n or 1)
        ]
        return {
            "id": f"chatcmpl-{plan.response_id}",
            "object": "chat.completion",
            "created": created,
            "model": call.model,
            "choices": choices,
            "usage": _usage(plan.usage),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }

    def stream_open(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Nothing: OpenAI's first chunk comes with the first token."""
        return []

    def stream_piece(self, plan: ChatPlan, call: ChatCall, piece: str, *, first: bool, last: bool,
                     created: int) -> bytes:
        """A chunk with one piece of content (the first also names the role); one per choice when ``n > 1``."""
        delta: dict[str, Any] = {"role": "assistant", "content": piece, "refusal": None} if first else {"content": piece}
        logprobs = logprobs_for(call.request, piece)
        return b"".join(
            sse(self._chunk(plan, call, created, choices=[
                {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": None}]))
            for i in range(call.request.n or 1))

    def stream_tools(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """Each call as OpenAI streams it: id and name with empty arguments, then argument fragments (in every choice)."""
        events = []
        for choice in range(call.request.n or 1):
            for i, (c, pieces) in enumerate(zip(plan.tool_calls, plan.fragments, strict=True)):
                head: dict[str, Any] = {"index": i, "id": c.id, "type": "function",
                                        "function": {"name": c.name, "arguments": ""}}
                delta: dict[str, Any] = {"tool_calls": [head]}
                if i == 0 and not plan.chunks:
                    delta = {"role": "assistant", "content": None, "tool_calls": [head]}
                events.append(sse(self._chunk(plan, call, created, choices=[
                    {"index": choice, "delta": delta, "logprobs": None, "finish_reason": None}])))
                for piece in pieces:
                    frag = {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                    events.append(sse(self._chunk(plan, call, created, choices=[
                        {"index": choice, "delta": frag, "logprobs": None, "finish_reason": None}])))
        return events

    def stream_close(self, plan: ChatPlan, call: ChatCall, created: int) -> list[bytes]:
        """The finish chunk, the usage chunk if asked for, then ``[DONE]``."""
        reason = _FINISH.get(plan.finish_reason, plan.finish_reason)
        events = [sse(self._chunk(plan, call, created, choices=[
            {"index": i, "delta": {}, "logprobs": None, "finish_reason": reason}]))
            for i in range(call.request.n or 1)]
        if call.include_usage:
            events.append(sse(self._chunk(plan, call, created, choices=[], usage=_usage(plan.usage))))
        events.append(sse("[DONE]"))
        return events


    def parse_embed(self, body: Any, path_model: str | None, *, batch: bool) -> EmbedCall:
        """An embeddings body: ``input`` is a string, strings, or token ids."""
        if not isinstance(body, dict) or not body.get("model") or "input" not in body:
            raise bad_request("the body must be a JSON object with 'model' and 'input'")
        raw = body["input"]
        if isinstance(raw, str):
            inputs = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            inputs = [token_text(raw)]
        elif isinstance(raw, list) and raw:
            inputs = [x if isinstance(x, str) else token_text(x) for x in raw]
        else:
            raise bad_request("'input' must be a non-empty string or list")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise bad_request(f"'encoding_format' must be 'float' or 'base64', not {encoding!r}")
        dims = body.get("dimensions")
        if dims is not None and not isinstance(dims, int):
            raise bad_request("'dimensions' must be an integer")
        return EmbedCall(model=str(body["model"]), inputs=inputs, dimensions=dims, encoding=encoding)

    def embed_body(self, plan: EmbedPlan, call: EmbedCall, *, batch: bool) -> Any:
        """An embeddings ``list``; base64 is little-endian float32, as OpenAI sends."""
        data = []
        for i, vec in enumerate(plan.vectors):
            value: Any = vec
            if call.encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = plan.usage.input_tokens
        return {"object": "list", "data": data, "model": call.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def models_body(self, providers: list[ProviderProfile]) -> Any:
        """A ``list`` of ``model`` objects, each model once."""
        seen: dict[str, str] = {}
        for p in providers:
            for name in p.model_names:
                seen.setdefault(name, p.name)
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": owner}
                     for m, owner in seen.items()],
        }

    def error_body(self, exc: ProviderError, status: int) -> Any:
        """``{"error": {...}}`` with OpenAI's type and code for the failure."""
        overflow = overflow_of(exc)
        message, kind, code, param = exc.message, "server_error", None, None
        if overflow is not None:
            total = overflow.prompt_tokens + overflow.output_tokens
            if overflow.output_tokens:
                message = (
                    f"This model's maximum context length is {overflow.context_window} tokens. However, you "
                    f"requested {total} tokens ({overflow.prompt_tokens} in the messages, {overflow.output_tokens} "
                    f"in the completion). Please reduce the length of the messages or completion."
                )
            else:
                message = (
                    f"This model's maximum context length is {overflow.context_window} tokens. However, your "
                    f"messages resulted in {total} tokens. Please reduce the length of the messages."
                )
            kind, code, param = "invalid_request_error", "context_length_exceeded", "messages"
        elif isinstance(exc, ProviderBadRequest):
            kind = "invalid_request_error"
            code = "model_not_found" if status == 404 else None
        elif isinstance(exc, ProviderRateLimited):
            kind, code = "requests", "rate_limit_exceeded"
        elif isinstance(exc, ProviderAuthError):
            kind, code = "invalid_request_error", "invalid_api_key"
        elif isinstance(exc, ProviderTimeout):
            kind, code = "timeout", "timeout"
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
