"""The small interfaces through which the engine composes the subsystems.

Each subsystem (ratelimit/, cost/, cache/, routing/) implements one of
these structurally, without importing the engine. The null versions here
are what the engine uses when a subsystem is switched off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from axtui.errors import AxError
from axtui.types import Caller, ChatRequest, ChatResponse, Deployment, Usage

__all__ = [
    "Attempt",
    "Budgets",
    "CacheDirective",
    "CacheHit",
    "LimitState",
    "Limiter",
    "NullBudgets",
    "NullCache",
    "NullLimiter",
    "PriceBook",
    "ResponseCache",
    "RoutePlan",
    "Router",
    "Subject",
    "Ticket",
]

#: A rate-limit subject: ("global", "*"), ("user", "alice"), ("key", "k_1"), ("provider", "openai").
Subject = tuple[str, str]


@dataclass(slots=True)
class LimitState:
    """One limit after a decision, for X-RateLimit-* headers and status views."""

    scope: str
    unit: Literal["requests", "tokens"]
    limit: int
    remaining: int
    reset_after: float


@dataclass(slots=True)
class Ticket:
    """An admission: the limits it passed, and what to correct afterwards."""

    subjects: tuple[Subject, ...] = ()
    tokens: int = 0
    states: list[LimitState] = field(default_factory=list)
    handle: Any = None


class Limiter(Protocol):
    """Rate limits over subjects, in requests and (estimated) tokens."""

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Ticket:
        """Admit one request of ``tokens`` estimated tokens, or raise `RateLimited`."""
        ...

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        """Correct the token estimate with the real usage."""
        ...


class Budgets(Protocol):
    """Money budgets: reserve an estimate before a call, settle after it."""

    async def reserve(self, caller: Caller, deployment: Deployment, estimate_nanos: int | None) -> Any:
        """Reserve the estimated cost, or raise `BudgetExceeded`; returns a reservation."""
        ...

    async def settle(self, reservation: Any, actual_nanos: int | None) -> None:
        """Replace the reservation with the real cost (None: unknown price)."""
        ...

    async def release(self, reservation: Any) -> None:
        """Drop the reservation of a call that failed."""
        ...


class PriceBook(Protocol):
    """Prices of deployments, in integer nano-dollars."""

    def cost(self, deployment: Deployment, usage: Usage) -> int | None:
        """What a call with ``usage`` costs; None when the price is unknown."""
        ...

    def estimate(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> int | None:
        """What a call of about this size will cost; None when unknown."""
        ...


@dataclass(slots=True)
class CacheDirective:
    """The caller's wishes for one request (``X-Ax-Cache`` or metadata)."""

    read: bool = True
    write: bool = True
    ttl_s: int | None = None

    @classmethod
    def parse(cls, value: str | None) -> CacheDirective:
        """Parse ``no-cache``, ``no-store``, ``ttl=SECONDS`` (comma-separated).

        Raises:
            ValueError: an unknown directive; the message lists the valid ones.
        """
        d = cls()
        if not value:
            return d
        for part in (p.strip().lower() for p in value.split(",")):
            if not part:
                continue
            if part == "no-cache":
                d.read = False
            elif part == "no-store":
                d.read = d.write = False
            elif part.startswith("ttl="):
                try:
                    d.ttl_s = int(part[4:])
                except ValueError:
                    raise ValueError(f"cache directive {part!r}: ttl takes whole seconds, like ttl=600") from None
                if d.ttl_s < 0:
                    raise ValueError(f"cache directive {part!r}: ttl cannot be negative")
            else:
                raise ValueError(f"unknown cache directive {part!r}; use no-cache, no-store or ttl=SECONDS")
        return d


@dataclass(slots=True)
class CacheHit:
    """An answer served from the cache."""

    response: ChatResponse
    kind: Literal["exact", "semantic"]
    similarity: float | None = None
    saved_nanos: int | None = None


class ResponseCache(Protocol):
    """Exact then semantic lookup of earlier answers, within the caller's scope."""

    async def lookup(self, request: ChatRequest, caller: Caller, directive: CacheDirective) -> CacheHit | None:
        """A stored answer for this request in the caller's scope, or None."""
        ...

    async def store(
        self,
        request: ChatRequest,
        caller: Caller,
        response: ChatResponse,
        cost_nanos: int | None,
        directive: CacheDirective,
    ) -> None:
        """Keep a complete answer for later lookups."""
        ...


@dataclass(slots=True)
class RoutePlan:
    """The deployments to try for one call, in order, and why."""

    candidates: list[Deployment]
    strategy: str = "ordered"
    rule: str | None = None
    variant: str | None = None
    ab_test: str | None = None
    required_region: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Attempt:
    """The outcome of one try of one deployment, for health and circuits."""

    deployment: Deployment
    ok: bool
    latency_ms: float
    ttft_ms: float | None = None
    output_tokens: int = 0
    error: AxError | None = None
    retry_after: float | None = None
    #: What the provider reported for a successful attempt (the cost strategy learns tokens per call from it).
    usage: Usage | None = None


class Router(Protocol):
    """Chooses deployments and learns from how they answer."""

    def plan(self, request: ChatRequest, caller: Caller, *, strategy: str | None = None) -> RoutePlan:
        """Candidates for this call, best first; raises `UnknownModel`."""
        ...

    def begin(self, deployment: Deployment) -> None:
        """A call to ``deployment`` starts (for in-flight counts)."""
        ...

    def observe(self, attempt: Attempt) -> None:
        """A call to a deployment ended."""
        ...


class NullLimiter:
    """No limits at all."""

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Ticket:
        return Ticket(tuple(subjects), tokens)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        return None


class NullBudgets:
    """No budgets at all."""

    async def reserve(self, caller: Caller, deployment: Deployment, estimate_nanos: int | None) -> Any:
        return None

    async def settle(self, reservation: Any, actual_nanos: int | None) -> None:
        return None

    async def release(self, reservation: Any) -> None:
        return None


class NullCache:
    """A cache that never has anything."""

    async def lookup(self, request: ChatRequest, caller: Caller, directive: CacheDirective) -> CacheHit | None:
        return None

    async def store(
        self,
        request: ChatRequest,
        caller: Caller,
        response: ChatResponse,
        cost_nanos: int | None,
        directive: CacheDirective,
    ) -> None:
        return None
