"""The pipeline: limit → cache → route → call → price → record → publish.

`Gateway.call` serves one request and returns the answer with its record;
`Gateway.stream` does the same as a stream. Every call, failed ones too,
yields exactly one `CallRecord`, handed to the recorder and published on
the bus.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import stamina

from axtui.aio import start_eagerly
from axtui.bus import CallRecorded, EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings
from axtui.engine.attempts import Attempts
from axtui.engine.records import (
    MAX_RETRY_AFTER_S,
    apply_deployment,
    apply_error,
    apply_hit,
    apply_plan,
    apply_usage,
    refuse_unreadable_tool_calls,
    refuse_untranslatable,
    retry_hook,
)
from axtui.engine.stream import CallStream
from axtui.errors import InvalidRequest, ProviderError, RateLimited, UnknownModel
from axtui.ports import (
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
from axtui.providers._wire import UnsupportedParameter
from axtui.providers.base import Provider
from axtui.routing.catalog import Catalog
from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.telemetry import NO_TELEMETRY, CallTrace, Telemetry
from axtui.tokens import estimate_prompt_tokens, estimate_tokens
from axtui.types import (
    Caller,
    CallRecord,
    ChatRequest,
    ChatResponse,
    Deployment,
    EmbeddingResponse,
    prompt_hash,
)

__all__ = ["MAX_RETRY_AFTER_S", "CallOptions", "CallResult", "CallStream", "EmbedResult", "Gateway"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CallOptions:
    """Per-call wishes beyond the request itself."""

    cache: CacheDirective = field(default_factory=CacheDirective)
    strategy: str | None = None
    #: Wait up to this long for a rate limit instead of failing at once.
    max_wait_s: float = 0.0
    request_id: str | None = None
    #: The caller's W3C ``traceparent``: a traced call continues that trace.
    traceparent: str | None = None
    #: The API the call came through, as the call log names it (``chat``, ``responses``…).
    endpoint: str = "chat"


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


#: The embedding call a cache built by the gateway is given: (texts, model, caller) -> one vector per text.
CacheEmbed = Callable[[list[str], str, Caller], Awaitable[list[list[float]]]]


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
        cache: ResponseCache | Callable[[CacheEmbed], ResponseCache],
        prices: PriceBook,
        recorder: Recorder | None = None,
        store: Store | None = None,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        owns_store: bool = False,
        extras: dict[str, Any] | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.providers = providers
        self.router = router
        self.limiter = limiter
        self.budgets = budgets
        # A cache that embeds through this gateway is made here, with its embedding call in
        # hand from the start: nothing is wired into it afterwards.
        self.cache: ResponseCache = cache(self._embed_vectors) if callable(cache) else cache
        self.prices = prices
        self.recorder = recorder
        self.store = store
        self.bus = bus or EventBus()
        self.clock = clock
        self.extras: dict[str, Any] = extras or {}
        self.telemetry = telemetry
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
        trace = self.telemetry.begin(request, rec, options.traceparent)
        start = self.clock.monotonic()
        ticket: Ticket | None = None
        response: ChatResponse | None = None
        try:
            ticket, est_in, est_out = await self._admit(request, caller, options)
            with trace.stage("cache lookup"):
                hit = await self.cache.lookup(request, caller, options.cache)
            if hit is not None:
                apply_hit(rec, hit.response, hit.kind, hit.similarity, hit.saved_nanos)
                rec.latency_ms = rec.ttft_ms = (self.clock.monotonic() - start) * 1000
                hit.response.id = rec.request_id
                response = hit.response
                return CallResult(hit.response, rec, ticket.states)
            with trace.stage("route"):
                plan = self.router.plan(request, caller, strategy=options.strategy)
            apply_plan(rec, plan)
            response = await self._serve(request, caller, plan, rec, est_in, est_out, start, trace)
            response.id = rec.request_id
            await self.cache.store(request, caller, response, rec.cost_nanos, options.cache)
            return CallResult(response, rec, ticket.states)
        except BaseException as exc:
            apply_error(rec, exc)
            raise
        finally:
            await self._conclude(rec, ticket, start)
            trace.finish(rec, response)

    async def admit_request(self, caller: Caller) -> list[LimitState]:
        """Count one request that calls no model (a token count) against the caller's rate limits.

        No tokens are counted and no budget is touched: it costs nothing.

        Raises:
            RateLimited: a requests-per-minute limit of the caller (its key, user, team) is reached.
        """
        return (await self.limiter.admit(self._subjects(caller), 0)).states

    def stream(
        self, request: ChatRequest, caller: Caller | None = None, options: CallOptions | None = None
    ) -> CallStream:
        """Serve one chat request as a stream of chunks (see `CallStream`)."""
        return CallStream(self, request, caller or Caller(), options or CallOptions())

    async def embed(self, inputs: list[str], model: str, caller: Caller | None = None) -> EmbeddingResponse:
        """Vectors for ``inputs`` from a deployment of ``model``; recorded and priced."""
        return (await self.embed_call(inputs, model, caller)).response

    async def _embed_vectors(self, inputs: list[str], model: str, caller: Caller) -> list[list[float]]:
        return (await self.embed(inputs, model, caller)).vectors

    async def embed_call(
        self,
        inputs: Sequence[str | list[int]],
        model: str,
        caller: Caller | None = None,
        options: CallOptions | None = None,
        dimensions: int | None = None,
    ) -> EmbedResult:
        """Vectors for ``inputs`` (texts, or token ids), with the record of the call that made them
        (``dimensions`` long when set). Token ids go only to deployments whose adapter takes them."""
        caller = caller or Caller()
        token_ids = any(not isinstance(t, str) for t in inputs)
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        req = ChatRequest(model=model, messages=[{"role": "user", "content": "\n".join(texts)}])  # type: ignore[list-item]
        rec = self._new_record(req, caller, options or CallOptions(), stream=False)
        rec.endpoint = "embeddings"
        rec.prompt = None
        trace = self.telemetry.begin(req, rec, options.traceparent if options else None)
        start = self.clock.monotonic()
        ticket: Ticket | None = None
        try:
            if self.recorder is not None:
                await self.recorder.admit()
            tokens = sum(estimate_tokens(t) if isinstance(t, str) else len(t) for t in inputs)
            ticket = await self.limiter.admit(self._subjects(caller), tokens)
            attempts = Attempts(self, caller, rec, self.catalog.resolve_embedding(model), tokens, 0, routed=False,
                                trace=trace)
            async for held in attempts:
                try:
                    provider = self.providers[held.dep.provider]
                    if token_ids and not provider.embeds_token_ids:
                        raise _no_token_ids(held.dep)
                    shape: dict[str, Any] = {"dimensions": dimensions} if dimensions is not None else {}
                    out = await provider.embed(list(inputs), held.dep.upstream_model, **shape)  # type: ignore[arg-type]
                except BaseException as exc:
                    if await attempts.failed(held, exc):
                        continue
                    raise
                apply_deployment(rec, held.dep)
                apply_usage(rec, out.usage)
                rec.cost_nanos = self.prices.cost(held.dep, out.usage)
                rec.http_status = 200
                attempts.succeeded(held, out.usage, rec.cost_nanos, None)
                return EmbedResult(out, rec, ticket.states)
            raise attempts.error(model)
        except BaseException as exc:
            apply_error(rec, exc)
            raise
        finally:
            await self._conclude(rec, ticket, start)
            trace.finish(rec)

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
            endpoint=options.endpoint,
            team=caller.team,
        )

    def _subjects(self, caller: Caller) -> list[Subject]:
        subjects: list[Subject] = [("global", "*"), ("user", caller.user)]
        if caller.key:
            subjects.append(("key", caller.key))
        if caller.team:
            subjects.append(("team", caller.team))
        return subjects

    async def _admit(self, request: ChatRequest, caller: Caller, options: CallOptions) -> tuple[Ticket, int, int]:
        self._check_output_limit(request)
        if self.recorder is not None:
            await self.recorder.admit()  # a call that could not be recorded is not served
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

    def _check_output_limit(self, request: ChatRequest) -> None:
        """Refuse an output limit no deployment of the model can write: no retry or budget could ever serve it.

        Raises:
            InvalidRequest: a 400 naming the field and the most the model writes.
        """
        asked = request.output_limit
        if not asked:
            return
        try:
            deployments = self.catalog.resolve(request.model)
        except UnknownModel:
            return  # said where the call is routed
        limits = [d.max_output or 0 for d in deployments]
        if limits and all(limits) and asked > max(limits):
            field = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            raise InvalidRequest(
                f"{field} is {asked:,}, more than {request.model!r} writes in one answer (at most "
                f"{max(limits):,} tokens); ask for at most that", param=field)

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
        trace: CallTrace,
    ) -> ChatResponse:
        try:
            return await self._round(request, caller, plan, rec, est_in, est_out, start, trace)
        except ProviderError as exc:
            retries = max((self._provider_retries(d) for d in plan.candidates), default=0)
            first_wait = retry_hook(exc)
            if not retries or first_wait is False:
                raise
        # Every candidate failed retryably: further rounds, with backoff and
        # jitter, honouring Retry-After (stamina). The first round stays out
        # of stamina so that a call that succeeds pays nothing for retries.
        if not stamina.is_testing():
            await asyncio.sleep(first_wait if first_wait is not True else random.uniform(0.05, 0.15))
        async for attempt in stamina.retry_context(on=retry_hook, attempts=retries, wait_max=5.0, timeout=None):
            with attempt:
                return await self._round(request, caller, plan, rec, est_in, est_out, start, trace)
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
        trace: CallTrace,
    ) -> ChatResponse:
        """Try each candidate once; raise the most telling error if none serves."""
        attempts = Attempts(self, caller, rec, plan.candidates[: self.settings.routing.max_attempts], est_in, est_out,
                            trace=trace)
        async for held in attempts:
            try:
                provider = self.providers[held.dep.provider]
                refuse_untranslatable(request, provider, held.dep)
                response = await provider.chat(request, held.dep)
                refuse_unreadable_tool_calls(response.tool_calls, held.dep)
            except BaseException as exc:
                if await attempts.failed(held, exc):
                    continue
                raise
            usage = response.usage
            apply_deployment(rec, held.dep)
            apply_usage(rec, usage)
            rec.cost_nanos = self.prices.cost(held.dep, usage)
            rec.latency_ms = (self.clock.monotonic() - start) * 1000
            rec.ttft_ms = rec.latency_ms
            rec.http_status = 200
            attempts.succeeded(held, usage, rec.cost_nanos, attempts.elapsed_ms(held))
            response.provider = held.dep.provider
            response.model = held.dep.upstream_model
            return response
        raise attempts.error(request.model)

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


def _no_token_ids(dep: Deployment) -> UnsupportedParameter:
    """The refusal of token ids by a deployment whose API embeds text only (the call moves on)."""
    return UnsupportedParameter(
        f"input is token ids, which deployment {dep.id!r} cannot embed (its API takes text only): send the texts "
        f"themselves (LangChain's OpenAIEmbeddings sends token ids unless check_embedding_ctx_length=False), or "
        f"ask a model an OpenAI or Azure OpenAI deployment serves", param="input", provider=dep.provider)
