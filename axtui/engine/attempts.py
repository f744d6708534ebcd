"""The one attempt loop: failover over deployments, for plain calls, streams and embeddings.

For each candidate deployment, in order, `Attempts` takes what an attempt
needs (the provider's rate-limit ticket, a budget reservation of the
estimated cost); a candidate that is refused is skipped, its refusal kept.
The caller then runs the attempt and reports how it went:

- `Attempts.succeeded`: the reservation and the ticket are replaced by what
  the call really used (settled without holding up the answer);
- `Attempts.failed`: what was produced before the failure is paid for and
  counted (a stream cut after its first token), the rest released; the
  ticket is settled the same way. Returns whether the next candidate may be
  tried; otherwise the error is raised.

`Attempts.error` is the most telling error once every candidate failed.
Streams, plain calls and embeddings share this loop, so they reserve,
settle and release alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from axtui.engine.records import apply_deployment, moves_on, pick_error
from axtui.errors import AxError, BudgetExceeded, ProviderError, RateLimited
from axtui.ports import Attempt
from axtui.telemetry import NO_TRACE, AttemptSpan, CallTrace
from axtui.types import CallRecord, Deployment, Usage

if TYPE_CHECKING:
    from axtui.engine.gateway import Gateway
    from axtui.ports import Ticket
    from axtui.types import Caller

__all__ = ["Attempts", "Held"]


@dataclass(slots=True)
class Held:
    """What one attempt holds: its deployment, budget reservation and provider ticket."""

    dep: Deployment
    reservation: Any
    ticket: Ticket | None
    #: When the attempt started (the gateway clock's monotonic seconds).
    t0: float
    #: The attempt's trace span (upstream requests carry its context).
    span: AttemptSpan


class Attempts:
    """Failover over ``candidates`` for one call (see the module docstring).

    Args:
        gateway: the engine whose budgets, limiter, prices and router are used.
        caller: who the call is for (budgets are scoped by it).
        rec: the call's record; its ``attempts`` and deployment are kept up to date.
        candidates: deployments in the order to try them.
        est_in: estimated input tokens.
        est_out: estimated output tokens.
        routed: report each attempt to the router's health (not for embeddings).
        trace: the call's trace; each attempt gets a span in it.
    """

    def __init__(self, gateway: Gateway, caller: Caller, rec: CallRecord, candidates: Sequence[Deployment],
                 est_in: int, est_out: int, *, routed: bool = True, trace: CallTrace = NO_TRACE) -> None:
        self.gw = gateway
        self.caller = caller
        self.rec = rec
        self.candidates = candidates
        self.est_in = est_in
        self.est_out = est_out
        self.routed = routed
        self.trace = trace
        self.errors: list[AxError] = []
        self._next = 0

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> Held:
        """The next candidate that could be reserved (a plain iterator: nothing to finalise on return)."""
        while self._next < len(self.candidates):
            dep = self.candidates[self._next]
            self._next += 1
            try:
                held = await self._take(dep)
            except (RateLimited, BudgetExceeded) as exc:
                self.errors.append(exc)
                continue
            self.rec.attempts += 1
            if self.routed:
                self.gw.router.begin(dep)
            held.span = self.trace.attempt(dep, self.rec.attempts)
            return held
        raise StopAsyncIteration

    async def _take(self, dep: Deployment) -> Held:
        gw = self.gw
        ticket = None
        if gw._has_provider_limit(dep.provider):
            ticket = await gw.limiter.admit([("provider", dep.provider)], self.est_in + self.est_out)
        estimate = gw.prices.estimate(dep, self.est_in, self.est_out)
        try:
            reservation = await gw.budgets.reserve(self.caller, dep, estimate)
        except BaseException:
            if ticket is not None:
                await gw.limiter.settle(ticket, 0)
            raise
        return Held(dep, reservation, ticket, gw.clock.monotonic(), NO_TRACE.attempt(dep, 0))

    def elapsed_ms(self, held: Held) -> float:
        """Milliseconds since the attempt started."""
        return (self.gw.clock.monotonic() - held.t0) * 1000

    def succeeded(self, held: Held, usage: Usage, cost_nanos: int | None, ttft_ms: float | None) -> None:
        """The attempt served: settle its reservation and ticket with what it used, tell the router."""
        gw = self.gw
        held.span.end()
        gw._later(gw._settle(held.reservation, cost_nanos, held.ticket, usage.total_tokens))
        if self.routed:
            gw.router.observe(Attempt(held.dep, True, self.elapsed_ms(held), ttft_ms, usage.output_tokens,
                                      usage=usage))

    async def failed(self, held: Held, exc: BaseException, produced: Usage | None = None) -> bool:
        """The attempt failed with ``exc`` after producing ``produced`` (None: nothing reached the caller).

        What was produced is paid for and counted against the ticket; the
        rest of the reservation is released. Returns True when the next
        candidate may be tried (a provider error that another deployment may
        not have, and nothing produced); False when ``exc`` must be raised.
        """
        gw, rec = self.gw, self.rec
        held.span.end(exc)
        if produced is not None:
            rec.cost_nanos = gw.prices.cost(held.dep, produced)
            await gw.budgets.settle(held.reservation, rec.cost_nanos)
        else:
            await gw.budgets.release(held.reservation)
        if held.ticket is not None:
            await gw.limiter.settle(held.ticket, produced.total_tokens if produced else 0)
        if isinstance(exc, ProviderError):
            apply_deployment(rec, held.dep)  # a failed call names the deployment that failed it last
            if self.routed:
                gw.router.observe(Attempt(held.dep, False, self.elapsed_ms(held), error=exc,
                                          retry_after=getattr(exc, "retry_after", None)))
            if produced is None and (exc.retryable or moves_on(exc)):
                self.errors.append(exc)
                return True
            return False
        if self.routed:
            gw.router.observe(Attempt(held.dep, False, self.elapsed_ms(held)))
        return False

    def error(self, model: str) -> AxError:
        """The error to raise when no candidate served."""
        return pick_error(self.errors, model)
