"""A streamed call: `CallStream`, served through the same attempt loop as a plain call."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from typing import TYPE_CHECKING, Any

from axtui.engine.attempts import Attempts, Held
from axtui.engine.records import (
    aclose,
    apply_deployment,
    apply_error,
    apply_hit,
    apply_plan,
    apply_usage,
    estimated_usage,
    refuse_unreadable_tool_calls,
    refuse_untranslatable,
    replay,
)
from axtui.ports import LimitState, RoutePlan, Ticket
from axtui.telemetry import CallTrace
from axtui.tokens import estimate_tokens
from axtui.types import Caller, ChatRequest, ChatResponse, Chunk, Thinking, Usage, assemble_tool_calls

if TYPE_CHECKING:
    from axtui.engine.gateway import CallOptions, Gateway

__all__ = ["CallStream"]


class CallStream:
    """A streamed call: iterate it for chunks; ``record`` fills in as it goes.

    ``await stream.start()`` runs everything up to the first chunk (limits,
    cache, routing, the upstream's first token), so a server can send its
    headers knowing the provider and cache status. ``on_upstream``, when
    set, is called once the call first waits on a deployment: past what
    refuses it or answers it at once (limits, budgets, the cache), so a
    server that sends a slow stream's headers before its first chunk never
    does so for those. Closing the stream early (``aclose``, or a cancelled
    consumer) cancels the upstream call; the call is still recorded, as
    ``cancelled``, and what it produced is paid for. Once `ended`, the call
    has its outcome and closing it changes nothing.
    """

    def __init__(self, gateway: Gateway, request: ChatRequest, caller: Caller, options: CallOptions) -> None:
        self.gateway = gateway
        self.request = request
        self.caller = caller
        self.options = options
        self.record = gateway._new_record(request, caller, options, stream=True)
        self.limits: list[LimitState] = []
        #: Called once, when the call first waits on a deployment's answer (see the class docstring).
        self.on_upstream: Callable[[], None] | None = None
        self._gen = self._run()
        self._first: Chunk | None = None
        self._answer: ChatResponse | None = None
        self._started = False
        self._done = False

    async def start(self) -> None:
        """Run the call up to its first chunk; raises what the call raises."""
        if not self._started:
            self._started = True
            try:
                self._first = await self._gen.__anext__()
            except StopAsyncIteration:
                self._done = True
            except BaseException:
                self._done = True  # the call raised: it is recorded with what it raised
                raise

    def __aiter__(self) -> CallStream:
        return self

    async def __anext__(self) -> Chunk:
        await self.start()
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._gen.__anext__()
        except BaseException:
            self._done = True  # its last chunk was read, or the call raised: either way it is recorded
            raise

    @property
    def ended(self) -> bool:
        """Whether the call has its outcome: its last chunk was read, it raised, or `fail` ended it.

        The call is then recorded, or being recorded by `fail`: a reader that goes away now has nothing
        left to cancel, and must not cut short what records and settles it.
        """
        return self._done

    async def aclose(self) -> None:
        """Stop the stream; the upstream call is cancelled and recorded."""
        await self._gen.aclose()

    async def fail(self, exc: Exception) -> None:
        """End the stream because its reader could not use a chunk (the server's encoding of it
        failed): the call is recorded at once as failing with ``exc``, as if the provider had raised it.

        `ended` from the moment it is called, so a reader can tell the client of the failure after it."""
        if self._done or not self._started:
            return
        self._done = True
        # Raised where the stream waits, it goes through the engine's own error handling and out again.
        with suppress(Exception):
            await self._gen.athrow(exc)

    async def collect(self) -> ChatResponse:
        """Read the whole stream into one response."""
        parts: list[str] = []
        finish = "stop"
        usage = Usage()
        tool_calls: list[dict[str, Any]] = []
        async for chunk in self:
            parts.append(chunk.delta)
            if chunk.finish_reason:
                finish = chunk.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.tool_calls:
                tool_calls.extend(chunk.tool_calls)
        return ChatResponse(
            content="".join(parts),
            model=self.record.model or self.request.model,
            usage=usage,
            finish_reason=finish,
            tool_calls=assemble_tool_calls(tool_calls) or None,
            id=self.record.request_id,
            provider=self.record.provider or "",
        )

    async def _run(self) -> AsyncGenerator[Chunk, None]:
        gw, rec = self.gateway, self.record
        trace = gw.telemetry.begin(self.request, rec, self.options.traceparent)
        start = gw.clock.monotonic()
        ticket: Ticket | None = None
        try:
            ticket, est_in, est_out = await gw._admit(self.request, self.caller, self.options)
            self.limits = ticket.states
            with trace.stage("cache lookup"):
                hit = await gw.cache.lookup(self.request, self.caller, self.options.cache)
            if hit is not None:
                apply_hit(rec, hit.response, hit.kind, hit.similarity, hit.saved_nanos)
                self._answer = hit.response
                rec.ttft_ms = (gw.clock.monotonic() - start) * 1000
                for chunk in replay(hit.response, rec.request_id):
                    yield chunk
                rec.latency_ms = (gw.clock.monotonic() - start) * 1000
                return
            with trace.stage("route"):
                plan = gw.router.plan(self.request, self.caller, strategy=self.options.strategy)
            apply_plan(rec, plan)
            async with aclosing(self._attempts(plan, est_in, est_out, start, trace)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            apply_error(rec, exc)
            raise
        finally:
            await gw._conclude(rec, ticket, start)
            trace.finish(rec, self._answer)

    async def _attempts(
        self, plan: RoutePlan, est_in: int, est_out: int, start: float, trace: CallTrace
    ) -> AsyncGenerator[Chunk, None]:
        gw, rec = self.gateway, self.record
        attempts = Attempts(gw, self.caller, rec, plan.candidates[: gw.settings.routing.max_attempts], est_in, est_out,
                            trace=trace)
        async for held in attempts:
            served = _Served(self.request, held, start)
            provider = gw.providers[held.dep.provider]
            upstream = provider.stream(self.request, held.dep)
            try:
                refuse_untranslatable(self.request, provider, held.dep)
                if self.on_upstream is not None:
                    waiting, self.on_upstream = self.on_upstream, None
                    waiting()
                async for chunk in upstream:
                    if chunk.tool_calls is not None:
                        refuse_unreadable_tool_calls(chunk.tool_calls, held.dep, fragments=True)
                    if served.take(chunk, gw.clock.monotonic()):
                        apply_deployment(rec, held.dep)
                        rec.ttft_ms = served.ttft_ms
                    chunk.id = rec.request_id
                    chunk.model = held.dep.upstream_model
                    yield chunk
                if served.usage is None or served.usage.estimated:
                    served.usage = served.paid()
                    yield Chunk(usage=served.usage, id=rec.request_id, model=held.dep.upstream_model)
            except BaseException as exc:
                # Tokens already reached the caller (or it went away): no fallback, what was produced is paid.
                produced = served.produced()
                if produced is not None:
                    apply_deployment(rec, held.dep)
                    apply_usage(rec, produced)
                if await attempts.failed(held, exc, produced):
                    continue
                raise
            finally:
                await aclose(upstream)
            usage = served.usage
            apply_deployment(rec, held.dep)
            apply_usage(rec, usage)
            rec.cost_nanos = gw.prices.cost(held.dep, usage)
            rec.http_status = 200
            rec.latency_ms = (gw.clock.monotonic() - start) * 1000
            attempts.succeeded(held, usage, rec.cost_nanos, served.ttft_from(held))
            response = served.response(rec.request_id)
            self._answer = response
            await gw.cache.store(self.request, self.caller, response, rec.cost_nanos, self.options.cache)
            return
        raise attempts.error(self.request.model)


class _Served:
    """What one streamed attempt has produced so far."""

    def __init__(self, request: ChatRequest, held: Held, start: float) -> None:
        self.request = request
        self.held = held
        self.start = start
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.finish = "stop"
        self.tool_calls: list[dict[str, Any]] = []
        self.first_at: float | None = None
        self.native: dict[str, Any] | None = None
        self.thinking = Thinking()
        self.stop_sequence: str | None = None

    @property
    def ttft_ms(self) -> float:
        assert self.first_at is not None
        return (self.first_at - self.start) * 1000

    def ttft_from(self, held: Held) -> float | None:
        return (self.first_at - held.t0) * 1000 if self.first_at is not None else None

    def take(self, chunk: Chunk, now: float) -> bool:
        """Count ``chunk``; True when it is the first that carries something for the caller."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish = chunk.finish_reason
            self.stop_sequence = chunk.stop_sequence
        if chunk.native is not None:
            self.native = chunk.native
        self.parts.append(chunk.delta)
        thought = chunk.choice == 0 and self.thinking.take(chunk)
        if chunk.tool_calls:
            self.tool_calls.extend(chunk.tool_calls)
        # Thinking reached the caller too: from here on the answer cannot be taken back (no fallback).
        if self.first_at is None and (chunk.delta or chunk.tool_calls or chunk.finish_reason or thought):
            self.first_at = now
            return True
        return False

    def produced(self) -> Usage | None:
        """What reached the caller, to pay for; None when nothing did."""
        if self.first_at is None and self.usage is None:
            return None
        return self.paid()

    def paid(self) -> Usage:
        """The usage to pay for: the provider's; where it reported none, or only the prompt's so far
        (``estimated``), ax's count of what is missing."""
        text = "".join(self.parts)
        if self.usage is None:
            return estimated_usage(self.request, text)
        if self.usage.estimated:
            return dataclasses.replace(self.usage, output_tokens=max(self.usage.output_tokens, estimate_tokens(text)))
        return self.usage

    def response(self, request_id: str) -> ChatResponse:
        assert self.usage is not None
        return ChatResponse(
            content="".join(self.parts),
            model=self.held.dep.upstream_model,
            usage=self.usage,
            finish_reason=self.finish,
            tool_calls=self.tool_calls or None,
            id=request_id,
            provider=self.held.dep.provider,
            native=self.native,
            reasoning=self.thinking.text,
            thinking_blocks=self.thinking.blocks or None,
            stop_sequence=self.stop_sequence,
        )
