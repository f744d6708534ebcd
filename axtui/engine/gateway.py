"""The pipeline: limit → cache → route → call → price → record → publish.

`Gateway.call` serves one request and returns the answer with its record;
`Gateway.stream` does the same as a stream. Every call, failed ones too,
yields exactly one `CallRecord`, handed to the recorder and published on
the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncGenerator, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import stamina

from axtui.aio import start_eagerly
from axtui.bus import CallRecorded, EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings
from axtui.errors import (
    AxError,
    BudgetExceeded,
    ProviderError,
    ProviderRateLimited,
    RateLimited,
)
from axtui.ports import (
    Attempt,
    Budgets,
    CacheDirective,
    Limiter,
    LimitState,
    PriceBook,
    ResponseCache,
    RoutePlan,
    Router,
    Subject,
    Ticket,
)
from axtui.providers.base import Provider
from axtui.routing.catalog import Catalog
from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.tokens import estimate_prompt_tokens, estimate_tokens
from axtui.types import (
    Caller,
    CallRecord,
    ChatRequest,
    ChatResponse,
    Chunk,
    Deployment,
    EmbeddingResponse,
    Usage,
    prompt_hash,
)

__all__ = ["CallOptions", "CallResult", "CallStream", "EmbedResult", "Gateway"]

log = logging.getLogger(__name__)

#: Longest Retry-After the engine waits out itself before giving up.
MAX_RETRY_AFTER_S = 30.0


@dataclass(slots=True)
class CallOptions:
    """Per-call wishes beyond the request itself."""

    cache: CacheDirective = field(default_factory=CacheDirective)
    strategy: str | None = None
    #: Wait up to this long for a rate limit instead of failing at once.
    max_wait_s: float = 0.0
    request_id: str | None = None


@dataclass(slots=True)
class CallResult:
    """An answer and the record of the call that produced it."""

    response: ChatResponse
    record: CallRecord
    limits: list[LimitState] = field(default_factory=list)


@dataclass(slots=True)
class EmbedResult:
    """Vectors and the record of the call that produced them."""

    response: EmbeddingResponse
    record: CallRecord
    limits: list[LimitState] = field(default_factory=list)


class Gateway:
    """The engine: serves calls through every subsystem and records them.

    Build one with `Gateway.open` (which reads the config and opens the
    store) or by passing the parts directly (tests do). Use it as an async
    context manager, or call `aclose`, so the recorder flushes.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        providers: dict[str, Provider],
        router: Router,
        limiter: Limiter,
        budgets: Budgets,
        cache: ResponseCache,
        prices: PriceBook,
        recorder: Recorder | None = None,
        store: Store | None = None,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        owns_store: bool = False,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.limiter = limiter
        self.budgets = budgets
        self.cache = cache
        self.prices = prices
        self.recorder = recorder
        self.store = store
        self.bus = bus or EventBus()
        self.clock = clock
        self.extras: dict[str, Any] = extras or {}
        self._owns_store = owns_store
        self._closed = False
        self._inflight: set[asyncio.Task[Any]] = set()

    @classmethod
    async def open(cls, settings: Settings | None = None, **kwargs: Any) -> Gateway:
        """A gateway from the config file (or ``settings``), with its store.

        Keyword arguments are passed to `axtui.engine.compose.build_gateway`.
        """
        from axtui.engine.compose import build_gateway

        return await build_gateway(settings, **kwargs)

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close providers, write every pending record, release the store."""
        if self._closed:
            return
        self._closed = True
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        closers = self.extras.get("closers", [])
        for closer in closers:
            result = closer()
            if asyncio.iscoroutine(result):
                await result
        for provider in self.providers.values():
            await provider.aclose()
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
        if self.store is not None and self._owns_store:
            self.store.close()

    def models(self) -> list[str]:
        """Every model and alias this gateway serves."""
        return self.catalog.names()

    # -- one call -------------------------------------------------------------------------

    async def chat(
        self, request: ChatRequest, caller: Caller | None = None, options: CallOptions | None = None
    ) -> ChatResponse:
        """Serve one chat request; raises an `AxError` when it cannot be served."""
        return (await self.call(request, caller, options)).response

    async def call(
        self, request: ChatRequest, caller: Caller | None = None, options: CallOptions | None = None
    ) -> CallResult:
        """Serve one chat request and return the answer with its record."""
        caller = caller or Caller()
        options = options or CallOptions()
        rec = self._new_record(request, caller, options, stream=False)
        start = self.clock.monotonic()
        ticket: Ticket | None = None
        try:
            ticket, est_in, est_out = await self._admit(request, caller, options)
            hit = await self.cache.lookup(request, caller, options.cache)
            if hit is not None:
                _apply_hit(rec, hit.response, hit.kind, hit.similarity, hit.saved_nanos)
                rec.latency_ms = rec.ttft_ms = (self.clock.monotonic() - start) * 1000
                hit.response.id = rec.request_id
                return CallResult(hit.response, rec, ticket.states)
            plan = self.router.plan(request, caller, strategy=options.strategy)
            _apply_plan(rec, plan)
            response = await self._serve(request, caller, plan, rec, est_in, est_out, start)
            response.id = rec.request_id
            await self.cache.store(request, caller, response, rec.cost_nanos, options.cache)
            return CallResult(response, rec, ticket.states)
        except BaseException as exc:
            _apply_error(rec, exc)
            raise
        finally:
            await self._conclude(rec, ticket, start)

    def stream(
        self, request: ChatRequest, caller: Caller | None = None, options: CallOptions | None = None
    ) -> CallStream:
        """Serve one chat request as a stream of chunks (see `CallStream`)."""
        return CallStream(self, request, caller or Caller(), options or CallOptions())

    async def embed(self, inputs: list[str], model: str, caller: Caller | None = None) -> EmbeddingResponse:
        """Vectors for ``inputs`` from a deployment of ``model``; recorded and priced."""
        return (await self.embed_call(inputs, model, caller)).response

    async def embed_call(
        self, inputs: list[str], model: str, caller: Caller | None = None, options: CallOptions | None = None
    ) -> EmbedResult:
        """Vectors for ``inputs``, with the record of the call that made them."""
        caller = caller or Caller()
        req = ChatRequest(model=model, messages=[{"role": "user", "content": "\n".join(inputs)}])  # type: ignore[list-item]
        rec = self._new_record(req, caller, options or CallOptions(), stream=False)
        rec.endpoint = "embeddings"
        rec.prompt = None
        start = self.clock.monotonic()
        ticket: Ticket | None = None
        try:
            tokens = sum(estimate_tokens(t) for t in inputs)
            ticket = await self.limiter.admit(self._subjects(caller), tokens)
            deployments = self.catalog.resolve_embedding(model)
            last: AxError | None = None
            for dep in deployments:
                try:
                    reservation = await self.budgets.reserve(caller, dep, self.prices.estimate(dep, tokens, 0))
                except BudgetExceeded as exc:
                    last = exc
                    continue
                rec.attempts += 1
                try:
                    out = await self.providers[dep.provider].embed(inputs, dep.upstream_model)
                except BaseException as exc:
                    await self.budgets.release(reservation)
                    if not isinstance(exc, ProviderError) or not exc.retryable:
                        raise
                    last = exc
                    continue
                _apply_deployment(rec, dep)
                _apply_usage(rec, out.usage)
                rec.cost_nanos = self.prices.cost(dep, out.usage)
                rec.http_status = 200
                await self.budgets.settle(reservation, rec.cost_nanos)
                return EmbedResult(out, rec, ticket.states)
            assert last is not None
            raise last
        except BaseException as exc:
            _apply_error(rec, exc)
            raise
        finally:
            await self._conclude(rec, ticket, start)

    # -- the steps ------------------------------------------------------------------------

    def _new_record(self, request: ChatRequest, caller: Caller, options: CallOptions, *, stream: bool) -> CallRecord:
        return CallRecord(
            ts=self.clock.now(),
            user=caller.user,
            key=caller.key,
            tags=caller.tags,
            requested_model=request.model,
            stream=stream,
            request_id=options.request_id or f"chatcmpl-ax{uuid.uuid4().hex[:24]}",
            prompt_hash=prompt_hash(request),
            prompt=request.prompt_text() if self.settings.recorder.log_prompts else None,
        )

    def _subjects(self, caller: Caller) -> list[Subject]:
        subjects: list[Subject] = [("global", "*"), ("user", caller.user)]
        if caller.key:
            subjects.append(("key", caller.key))
        return subjects

    async def _admit(self, request: ChatRequest, caller: Caller, options: CallOptions) -> tuple[Ticket, int, int]:
        est_in = estimate_prompt_tokens(request)
        est_out = request.output_limit or self.settings.budgets.typical_output_tokens
        subjects = self._subjects(caller)
        deadline = self.clock.monotonic() + options.max_wait_s
        while True:
            try:
                return await self.limiter.admit(subjects, est_in + est_out), est_in, est_out
            except RateLimited as exc:
                if self.clock.monotonic() + exc.retry_after > deadline:
                    raise
                await self.clock.sleep(exc.retry_after)

    async def _settle(self, reservation: Any, cost_nanos: int | None, ticket: Ticket | None, tokens: int) -> None:
        """Replace a budget reservation and a provider token estimate with what the call used."""
        await self.budgets.settle(reservation, cost_nanos)
        if ticket is not None:
            await self.limiter.settle(ticket, tokens)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run bookkeeping without holding up the answer; `aclose` waits for what is left of it.

        The work starts at once and usually finishes without waiting for
        anything (budgets and in-memory limits settle in memory): then no task
        is made. Work that has to wait (a Redis round trip) goes on in a task.
        Settling only replaces an estimate that is already held, so finishing
        it a moment later never lets a budget or limit be overshot.
        """
        try:
            task = start_eagerly(work)
        except Exception as exc:
            log.warning("settling a finished call failed: %s", exc)
            return
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("settling a finished call failed: %s", exc)

    async def _serve(
        self,
        request: ChatRequest,
        caller: Caller,
        plan: RoutePlan,
        rec: CallRecord,
        est_in: int,
        est_out: int,
        start: float,
    ) -> ChatResponse:
        try:
            return await self._round(request, caller, plan, rec, est_in, est_out, start)
        except ProviderError as exc:
            retries = max((self._provider_retries(d) for d in plan.candidates), default=0)
            first_wait = _retry_hook(exc)
            if not retries or first_wait is False:
                raise
        # Every candidate failed retryably: further rounds, with backoff and
        # jitter, honouring Retry-After (stamina). The first round stays out
        # of stamina so that a call that succeeds pays nothing for retries.
        if not stamina.is_testing():
            await asyncio.sleep(first_wait if first_wait is not True else random.uniform(0.05, 0.15))
        async for attempt in stamina.retry_context(on=_retry_hook, attempts=retries, wait_max=5.0, timeout=None):
            with attempt:
                return await self._round(request, caller, plan, rec, est_in, est_out, start)
        raise AssertionError("unreachable")  # stamina re-raises the last error

    def _provider_retries(self, dep: Deployment) -> int:
        provider = self.providers.get(dep.provider)
        return provider.config.max_retries if provider is not None else 0

    async def _round(
        self,
        request: ChatRequest,
        caller: Caller,
        plan: RoutePlan,
        rec: CallRecord,
        est_in: int,
        est_out: int,
        start: float,
    ) -> ChatResponse:
        """Try each candidate once; raise the most telling error if none serves."""
        errors: list[AxError] = []
        for dep in plan.candidates[: self.settings.routing.max_attempts]:
            try:
                reservation, ticket = await self._reserve(caller, dep, est_in, est_out)
            except (RateLimited, BudgetExceeded) as exc:
                errors.append(exc)
                continue
            rec.attempts += 1
            provider = self.providers[dep.provider]
            t0 = self.clock.monotonic()
            self.router.begin(dep)
            try:
                response = await provider.chat(request, dep)
            except ProviderError as exc:
                await self.budgets.release(reservation)
                if ticket is not None:
                    await self.limiter.settle(ticket, 0)
                _apply_deployment(rec, dep)  # a failed call names the deployment that failed it last
                self.router.observe(Attempt(dep, False, (self.clock.monotonic() - t0) * 1000, error=exc,
                                            retry_after=getattr(exc, "retry_after", None)))
                errors.append(exc)
                if not exc.retryable and not _moves_on(exc):
                    raise
                continue
            except BaseException:
                await self.budgets.release(reservation)
                if ticket is not None:
                    await self.limiter.settle(ticket, 0)
                self.router.observe(Attempt(dep, False, (self.clock.monotonic() - t0) * 1000))
                raise
            elapsed = (self.clock.monotonic() - t0) * 1000
            usage = response.usage
            _apply_deployment(rec, dep)
            _apply_usage(rec, usage)
            rec.cost_nanos = self.prices.cost(dep, usage)
            rec.latency_ms = (self.clock.monotonic() - start) * 1000
            rec.ttft_ms = rec.latency_ms
            rec.http_status = 200
            self._later(self._settle(reservation, rec.cost_nanos, ticket, usage.total_tokens))
            self.router.observe(Attempt(dep, True, elapsed, elapsed, usage.output_tokens))
            response.provider = dep.provider
            response.model = dep.upstream_model
            return response
        raise _pick_error(errors, request.model)

    async def _reserve(self, caller: Caller, dep: Deployment, est_in: int, est_out: int) -> tuple[Any, Ticket | None]:
        ticket = None
        if self._has_provider_limit(dep.provider):
            ticket = await self.limiter.admit([("provider", dep.provider)], est_in + est_out)
        estimate = self.prices.estimate(dep, est_in, est_out)
        return await self.budgets.reserve(caller, dep, estimate), ticket

    def _has_provider_limit(self, provider: str) -> bool:
        rl = self.settings.ratelimit
        return provider in rl.provider_requests or provider in rl.provider_tokens or bool(
            getattr(self.limiter, "has_provider_limits", False)
        )

    async def _conclude(self, rec: CallRecord, ticket: Ticket | None, start: float) -> None:
        """Every call ends here: latency, the token estimate corrected, recorded, published."""
        if not rec.latency_ms:
            rec.latency_ms = (self.clock.monotonic() - start) * 1000
        if ticket is not None:
            self._later(self.limiter.settle(ticket, rec.total_tokens if rec.cache == "miss" else 0))
        self._finish(rec)

    def _finish(self, rec: CallRecord) -> None:
        if self.recorder is not None:
            self.recorder.record(rec)
        self.bus.publish(CallRecorded(rec))


class CallStream:
    """A streamed call: iterate it for chunks; ``record`` fills in as it goes.

    ``await stream.start()`` runs everything up to the first chunk (limits,
    cache, routing, the upstream's first token), so a server can send its
    headers knowing the provider and cache status. Closing the stream early
    (``aclose``, or a cancelled consumer) cancels the upstream call; the call
    is still recorded, as ``cancelled``.
    """

    def __init__(self, gateway: Gateway, request: ChatRequest, caller: Caller, options: CallOptions) -> None:
        self.gateway = gateway
        self.request = request
        self.caller = caller
        self.options = options
        self.record = gateway._new_record(request, caller, options, stream=True)
        self.limits: list[LimitState] = []
        self._gen = self._run()
        self._first: Chunk | None = None
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
        except StopAsyncIteration:
            self._done = True
            raise

    async def aclose(self) -> None:
        """Stop the stream; the upstream call is cancelled and recorded."""
        await self._gen.aclose()

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
            tool_calls=tool_calls or None,
            id=self.record.request_id,
            provider=self.record.provider or "",
        )

    async def _run(self) -> AsyncGenerator[Chunk, None]:
        gw, rec = self.gateway, self.record
        start = gw.clock.monotonic()
        ticket: Ticket | None = None
        try:
            ticket, est_in, est_out = await gw._admit(self.request, self.caller, self.options)
            self.limits = ticket.states
            hit = await gw.cache.lookup(self.request, self.caller, self.options.cache)
            if hit is not None:
                _apply_hit(rec, hit.response, hit.kind, hit.similarity, hit.saved_nanos)
                rec.ttft_ms = (gw.clock.monotonic() - start) * 1000
                for chunk in _replay(hit.response, rec.request_id):
                    yield chunk
                rec.latency_ms = (gw.clock.monotonic() - start) * 1000
                return
            plan = gw.router.plan(self.request, self.caller, strategy=self.options.strategy)
            _apply_plan(rec, plan)
            async with aclosing(self._attempts(plan, est_in, est_out, start)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            _apply_error(rec, exc)
            raise
        finally:
            await gw._conclude(rec, ticket, start)

    async def _attempts(self, plan: RoutePlan, est_in: int, est_out: int, start: float) -> AsyncGenerator[Chunk, None]:
        gw, rec, request = self.gateway, self.record, self.request
        errors: list[AxError] = []
        for dep in plan.candidates[: gw.settings.routing.max_attempts]:
            try:
                reservation, ticket = await gw._reserve(self.caller, dep, est_in, est_out)
            except (RateLimited, BudgetExceeded) as exc:
                errors.append(exc)
                continue
            rec.attempts += 1
            t0 = gw.clock.monotonic()
            gw.router.begin(dep)
            upstream = gw.providers[dep.provider].stream(request, dep)
            parts: list[str] = []
            usage: Usage | None = None
            finish = "stop"
            tool_calls: list[dict[str, Any]] = []
            first_at: float | None = None
            try:
                async for chunk in upstream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if chunk.finish_reason:
                        finish = chunk.finish_reason
                    if first_at is None and (chunk.delta or chunk.tool_calls or chunk.finish_reason):
                        first_at = gw.clock.monotonic()
                        _apply_deployment(rec, dep)
                        rec.ttft_ms = (first_at - start) * 1000
                    parts.append(chunk.delta)
                    if chunk.tool_calls:
                        tool_calls.extend(chunk.tool_calls)
                    chunk.id = rec.request_id
                    chunk.model = dep.upstream_model
                    yield chunk
                if usage is None:
                    usage = _estimated_usage(request, "".join(parts))
                    yield Chunk(usage=usage, id=rec.request_id, model=dep.upstream_model)
            except ProviderError as exc:
                _apply_deployment(rec, dep)
                elapsed = (gw.clock.monotonic() - t0) * 1000
                gw.router.observe(Attempt(dep, False, elapsed, error=exc, retry_after=getattr(exc, "retry_after", None)))
                if first_at is None and (exc.retryable or _moves_on(exc)):
                    await gw.budgets.release(reservation)
                    if ticket is not None:
                        await gw.limiter.settle(ticket, 0)
                    errors.append(exc)
                    continue
                # Tokens already reached the caller: no fallback, but what was
                # produced is still paid for.
                usage = _estimated_usage(request, "".join(parts)) if first_at is not None else Usage()
                _apply_usage(rec, usage)
                rec.cost_nanos = gw.prices.cost(dep, usage) if first_at is not None else None
                await gw.budgets.settle(reservation, rec.cost_nanos)
                raise
            except BaseException:
                # Cancelled or closed by the consumer: bill what was produced.
                usage = usage or _estimated_usage(request, "".join(parts))
                _apply_deployment(rec, dep)
                _apply_usage(rec, usage)
                rec.cost_nanos = gw.prices.cost(dep, usage)
                await gw.budgets.settle(reservation, rec.cost_nanos)
                gw.router.observe(Attempt(dep, False, (gw.clock.monotonic() - t0) * 1000))
                raise
            finally:
                await _aclose(upstream)
            elapsed = (gw.clock.monotonic() - t0) * 1000
            _apply_deployment(rec, dep)
            _apply_usage(rec, usage)
            rec.cost_nanos = gw.prices.cost(dep, usage)
            rec.http_status = 200
            rec.latency_ms = (gw.clock.monotonic() - start) * 1000
            gw._later(gw._settle(reservation, rec.cost_nanos, ticket, usage.total_tokens))
            ttft = (first_at - t0) * 1000 if first_at is not None else None
            gw.router.observe(Attempt(dep, True, elapsed, ttft, usage.output_tokens))
            response = ChatResponse(
                content="".join(parts),
                model=dep.upstream_model,
                usage=usage,
                finish_reason=finish,
                tool_calls=tool_calls or None,
                id=rec.request_id,
                provider=dep.provider,
            )
            await gw.cache.store(request, self.caller, response, rec.cost_nanos, self.options.cache)
            return
        raise _pick_error(errors, request.model)


# -- helpers ------------------------------------------------------------------------------


def _retry_hook(exc: Exception) -> bool | float:
    """stamina's hook: retry a round that failed retryably, honouring Retry-After."""
    if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
        return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER_S else False
    return isinstance(exc, ProviderError) and exc.retryable


def _moves_on(exc: AxError) -> bool:
    """Non-retryable errors that another deployment may still not have."""
    from axtui.errors import ContextTooLong, ProviderAuthError

    return isinstance(exc, (ContextTooLong, ProviderAuthError))


def _pick_error(errors: Sequence[AxError], model: str) -> AxError:
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


def _apply_plan(rec: CallRecord, plan: RoutePlan) -> None:
    rec.route = plan.strategy
    rec.rule = plan.rule
    rec.variant = plan.variant


def _apply_deployment(rec: CallRecord, dep: Deployment) -> None:
    rec.provider = dep.provider
    rec.model = dep.upstream_model
    rec.deployment = dep.id
    rec.region = dep.region or None


def _apply_usage(rec: CallRecord, usage: Usage) -> None:
    rec.input_tokens = usage.input_tokens
    rec.cached_input_tokens = usage.cached_input_tokens
    rec.cache_write_tokens = usage.cache_write_tokens
    rec.output_tokens = usage.output_tokens
    rec.reasoning_tokens = usage.reasoning_tokens
    rec.usage_estimated = usage.estimated


def _apply_hit(
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


def _apply_error(rec: CallRecord, exc: BaseException) -> None:
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


def _estimated_usage(request: ChatRequest, text: str) -> Usage:
    return Usage(input_tokens=estimate_prompt_tokens(request), output_tokens=estimate_tokens(text), estimated=True)


def _replay(response: ChatResponse, request_id: str) -> list[Chunk]:
    """A cached answer as a valid stream: text in pieces, finish, usage."""
    text = response.content
    step = 64
    chunks = [Chunk(delta=text[i : i + step], id=request_id, model=response.model) for i in range(0, len(text), step)]
    if response.tool_calls:
        chunks.append(Chunk(tool_calls=response.tool_calls, id=request_id, model=response.model))
    chunks.append(Chunk(finish_reason=response.finish_reason, id=request_id, model=response.model))
    chunks.append(Chunk(usage=response.usage, id=request_id, model=response.model))
    return chunks


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(ProviderError):
            await close()
