"""What the engine writes into a call's record, and the small rules it follows between attempts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from axtui.errors import AxError, BudgetExceeded, MalformedResponse, ProviderError, ProviderRateLimited, RateLimited
from axtui.ports import RoutePlan
from axtui.providers.base import Provider
from axtui.tokens import estimate_prompt_tokens, estimate_tokens
from axtui.types import CallRecord, ChatRequest, ChatResponse, Chunk, Deployment, Thinking, Usage, tool_calls_problem

__all__ = [
    "MAX_RETRY_AFTER_S",
    "aclose",
    "apply_deployment",
    "apply_error",
    "apply_hit",
    "apply_plan",
    "apply_usage",
    "estimated_usage",
    "moves_on",
    "pick_error",
    "refuse_untranslatable",
    "replay",
    "retry_hook",
]

#: Longest Retry-After the engine waits out itself before giving up.
MAX_RETRY_AFTER_S = 30.0



def retry_hook(exc: Exception) -> bool | float:
    """stamina's hook: retry a round that failed retryably, honouring Retry-After."""
    if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
        return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER_S else False
    return isinstance(exc, ProviderError) and exc.retryable


def moves_on(exc: AxError) -> bool:
    """Non-retryable errors that another deployment may still not have."""
    from axtui.errors import ContextTooLong, ProviderAuthError
    from axtui.providers._wire import UnsupportedParameter

    return isinstance(exc, (ContextTooLong, ProviderAuthError, UnsupportedParameter))


def refuse_untranslatable(request: ChatRequest, provider: Provider, dep: Deployment) -> None:
    """Refuse a request only its native API can carry (`NativeRequest.problem`) at a provider that lacks that API.

    Raises:
        UnsupportedParameter: the next deployment is tried; when none serves, the caller gets a 400 naming the field.
    """
    native = request.native
    if native is None or native.problem is None or provider.speaks(native.api, dep.upstream_model):
        return
    from axtui.providers._wire import UnsupportedParameter

    raise UnsupportedParameter(
        f"{native.problem} (deployment {dep.id!r} is served translated to chat; only a provider that speaks the "
        f"{native.api} API natively serves it)", param=native.param or "", provider=dep.provider)


def refuse_unreadable_tool_calls(calls: Any, dep: Deployment, *, fragments: bool = False) -> None:
    """Refuse tool calls an upstream sent in a shape no client could read (`tool_calls_problem`).

    Raises:
        MalformedResponse: the next deployment is tried; nothing of the answer is kept or cached.
    """
    problem = tool_calls_problem(calls, fragments=fragments)
    if problem is not None:
        raise MalformedResponse(f"provider {dep.provider!r} answered tool calls ax cannot read ({problem})",
                                provider=dep.provider)


def pick_error(errors: Sequence[AxError], model: str) -> AxError:
    """The error to report when no candidate served: refusals and then the last failure."""
    if not errors:
        return ProviderError(f"no deployment of {model!r} is available right now (all circuits open); retry shortly")
    upstream = [e for e in errors if isinstance(e, ProviderError)]
    if upstream:
        return upstream[-1]
    limited = [e for e in errors if isinstance(e, RateLimited)]
    if limited and len(limited) == len(errors):
        return min(limited, key=lambda e: e.retry_after)
    budget = [e for e in errors if isinstance(e, BudgetExceeded)]
    return budget[0] if budget else errors[-1]


def apply_plan(rec: CallRecord, plan: RoutePlan) -> None:
    rec.route = plan.strategy
    rec.rule = plan.rule
    rec.variant = plan.variant


def apply_deployment(rec: CallRecord, dep: Deployment) -> None:
    rec.provider = dep.provider
    rec.model = dep.upstream_model
    rec.deployment = dep.id
    rec.region = dep.region or None


def apply_usage(rec: CallRecord, usage: Usage) -> None:
    rec.input_tokens = usage.input_tokens
    rec.cached_input_tokens = usage.cached_input_tokens
    rec.cache_write_tokens = usage.cache_write_tokens
    rec.output_tokens = usage.output_tokens
    rec.reasoning_tokens = usage.reasoning_tokens
    rec.usage_estimated = usage.estimated


def apply_hit(
    rec: CallRecord, response: ChatResponse, kind: str, similarity: float | None, saved: int | None
) -> None:
    rec.cache = kind  # type: ignore[assignment]
    rec.similarity = similarity
    rec.saved_nanos = saved
    rec.cost_nanos = 0
    rec.provider = response.provider or None
    rec.model = response.model or None
    rec.http_status = 200
    rec.output_tokens = response.usage.output_tokens
    rec.input_tokens = response.usage.input_tokens


def apply_error(rec: CallRecord, exc: BaseException) -> None:
    if isinstance(exc, AxError):
        exc.record = rec
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        rec.status = "cancelled"
        rec.error_class = "Cancelled"
        rec.error_message = "the caller went away before the answer was complete"
        return
    if isinstance(exc, RateLimited):
        rec.status = "rate_limited"
    elif isinstance(exc, BudgetExceeded):
        rec.status = "budget_refused"
    else:
        rec.status = "error"
    if isinstance(exc, AxError):
        rec.error_class = exc.kind
        rec.error_message = exc.message[:2000]
        rec.http_status = getattr(exc, "http_status", None) or exc.status_code
    else:
        rec.error_class = type(exc).__name__
        rec.error_message = str(exc)[:2000]
        rec.http_status = 500


def estimated_usage(request: ChatRequest, text: str) -> Usage:
    return Usage(input_tokens=estimate_prompt_tokens(request), output_tokens=estimate_tokens(text), estimated=True)


def replay(response: ChatResponse, request_id: str) -> list[Chunk]:
    """A cached answer as a valid stream: its thinking, text in pieces, tool calls, finish, usage."""
    text = response.content
    step = 64
    chunks = Thinking.chunks(response, request_id)
    chunks += [Chunk(delta=text[i : i + step], id=request_id, model=response.model) for i in range(0, len(text), step)]
    if response.tool_calls:
        chunks.append(Chunk(tool_calls=response.tool_calls, id=request_id, model=response.model))
    chunks.append(Chunk(finish_reason=response.finish_reason, stop_sequence=response.stop_sequence, id=request_id,
                        model=response.model))
    chunks.append(Chunk(usage=response.usage, id=request_id, model=response.model))
    chunks[0].native = response.native
    return chunks


async def aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(ProviderError):
            await close()
