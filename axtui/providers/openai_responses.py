"""OpenAI's Responses API spoken natively: a request that came through ``/v1/responses`` goes upstream as sent.

The gateway's edge keeps the client's body (`axtui.types.NativeRequest`);
`upstream_body` gives it the deployment's model. What comes back is read
into ax's terms for pricing, budgets, records and the cache, and kept
whole for the edge to return:

- `answer_of`: a ``response`` object as a `ChatResponse` (text of the
  ``message`` items, ``function_call`` items as tool calls, reasoning
  text, usage) whose ``native`` is the object itself;
- `EventReader`: the stream's events as `Chunk` objects whose
  ``native_events`` are the events themselves. Events before the first
  one that carries output (text, a function call, the end) are held back
  and sent with it, so an upstream that fails before answering leaves
  nothing at the client and the call may still fall back.

Usage: ``input_tokens`` includes ``input_tokens_details.cached_tokens`` and
``output_tokens`` includes ``output_tokens_details.reasoning_tokens``, as in
chat, so the two map alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from axtui.tokens import estimate_prompt_tokens, estimate_tokens
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, NativeRequest, Usage, token_count

__all__ = ["EventReader", "answer_of", "finish_of", "responses_usage", "responses_usage_body", "upstream_body"]


def upstream_body(native: NativeRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    """A client's own body in its provider's API (Responses, Messages) for ``deployment``: its model, and
    streamed or not as the call is."""
    body = {**native.body, "model": deployment.upstream_model}
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def responses_usage(usage: Mapping[str, Any]) -> Usage:
    """ax's `Usage` from a Responses ``usage`` object."""
    details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=token_count(usage.get("input_tokens")),
        output_tokens=token_count(usage.get("output_tokens")),
        cached_input_tokens=token_count(details.get("cached_tokens") if isinstance(details, Mapping) else None),
        cache_write_tokens=token_count(details.get("cache_write_tokens") if isinstance(details, Mapping) else None),
        reasoning_tokens=token_count(out_details.get("reasoning_tokens") if isinstance(out_details, Mapping)
                                     else None),
    )


def responses_usage_body(usage: Usage) -> dict[str, Any]:
    """A Responses ``usage`` object for ax's `Usage`: the inverse of `responses_usage`.

    The one encoder of this shape: the gateway's answers and the simulated upstream both use it.
    """
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens,
                                 "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _message_text(item: Mapping[str, Any]) -> str:
    parts = item.get("content") or ()
    return "".join(str(p.get("text") or p.get("refusal") or "") for p in parts
                   if isinstance(p, Mapping) and p.get("type") in ("output_text", "refusal"))


def _reasoning_text(item: Mapping[str, Any]) -> str:
    parts = [*(item.get("summary") or ()), *(item.get("content") or ())]
    return "".join(str(p.get("text") or "") for p in parts if isinstance(p, Mapping))


def _call(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": str(item.get("call_id") or ""), "type": "function",
            "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")}}


def reported_usage(raw: Any, decode: Callable[[Mapping[str, Any]], Usage], request: ChatRequest,
                   content: str) -> Usage:
    """The usage an OpenAI answer reports, decoded; ax's own count, marked estimated, when it reports none."""
    if isinstance(raw, Mapping):
        return decode(raw)
    # Some compatible servers report no usage: count it ourselves, and say so.
    return Usage(estimate_prompt_tokens(request), estimate_tokens(content), estimated=True)


def finish_of(body: Mapping[str, Any], tool_calls: bool) -> str:
    """Chat's finish reason for a ``response`` object: ``length`` for a cut answer, ``tool_calls``…"""
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if tool_calls else "stop"


def answer_of(data: dict[str, Any], request: ChatRequest, deployment: Deployment, provider: str) -> ChatResponse:
    """A ``response`` object as ax's answer; the object itself rides along as ``native``.

    Raises:
        TypeError, AttributeError, ValueError: the object is not one (the adapter reports it as malformed).
    """
    output = data.get("output")
    if not isinstance(output, list):
        raise TypeError("a response without an output list")
    items = [i for i in output if isinstance(i, Mapping)]
    content = "".join(_message_text(i) for i in items if i.get("type") == "message")
    calls = [_call(i) for i in items if i.get("type") == "function_call"]
    response = ChatResponse(
        content=content,
        model=str(data.get("model") or deployment.upstream_model),
        usage=reported_usage(data.get("usage"), responses_usage, request, content),
        finish_reason=finish_of(data, bool(calls)),
        tool_calls=calls or None,
        id=str(data.get("id") or ""),
        provider=provider,
        reasoning="".join(_reasoning_text(i) for i in items if i.get("type") == "reasoning"),
        native=data,
    )
    created = data.get("created_at")
    if isinstance(created, int | float):
        response.created = int(created)
    return response


class EventReader:
    """Turns a Responses stream's events into chunks (see the module docstring).

    `take` returns the chunk an event makes (None while events are held
    back); ``done`` turns true at ``response.completed`` or
    ``response.incomplete``.
    """

    def __init__(self) -> None:
        self.done = False
        self._held: list[dict[str, Any]] = []
        self._reasoning = ""
        self._started = False
        self._calls: dict[int, int] = {}  # output_index -> tool call index

    def take(self, event: dict[str, Any]) -> Chunk | None:
        """The chunk for one event (a JSON object with its ``type``)."""
        kind = str(event.get("type") or "")
        chunk = Chunk()
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            chunk.delta = str(event.get("delta") or "")
        elif kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            chunk.reasoning = str(event.get("delta") or "")
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                index = self._calls[int(event.get("output_index") or 0)] = len(self._calls)
                chunk.tool_calls = [{**_call({**item, "arguments": ""}), "index": index}]
        elif kind == "response.function_call_arguments.delta":
            at = self._calls.get(int(event.get("output_index") or 0))
            if at is not None and event.get("delta"):
                chunk.tool_calls = [{"index": at, "function": {"arguments": str(event["delta"])}}]
        elif kind in ("response.completed", "response.incomplete"):
            body = event.get("response") or {}
            chunk.finish_reason = finish_of(body, bool(self._calls))
            if isinstance(body.get("usage"), Mapping):
                chunk.usage = responses_usage(body["usage"])
            chunk.native = body
            self.done = True
        if not self._started and not (chunk.delta or chunk.tool_calls or chunk.finish_reason):
            # Nothing the caller can use yet: hold it back, so a failure now can still fall back.
            self._held.append(event)
            self._reasoning += chunk.reasoning
            return None
        if not self._started:
            self._started = True
            chunk.reasoning = self._reasoning + chunk.reasoning
            chunk.native_events = [*self._held, event]
            self._held = []
        else:
            chunk.native_events = [event]
        return chunk
