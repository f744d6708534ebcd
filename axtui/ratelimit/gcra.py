"""The token bucket, as GCRA (the generic cell rate algorithm): pure code.

A bucket holds at most ``burst`` units (by default the limit itself, so an
idle caller may spend one period's quota at once) and refills continuously
at ``limit`` units per ``period_s``. GCRA keeps the whole bucket in one
number, the *theoretical arrival time* (TAT): the moment the bucket would
be full again. One unit costs ``T = period_s / limit`` seconds of TAT; a
request of ``cost`` units is admitted when the TAT it would leave is at
most ``burst * T`` ahead of now.

Two guarantees follow, and the property tests check both: in any interval
of length ``period_s`` at most ``limit + burst`` units are admitted, and a
caller that asks at exactly the limit's pace is never refused.

State is a float (the TAT, in the clock's seconds) or None for a full
bucket, so the same code serves memory, the store and (mirrored in one Lua
script) Redis. `TokenBucket` is a stateful wrapper over a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from axtui.clock import SYSTEM_CLOCK, Clock

__all__ = ["Bucket", "TokenBucket", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision: whether it passed, the state to keep, and what to tell the caller.

    Attributes:
        allowed: the request passed.
        state: the state to store (the new one when allowed, the old one pruned otherwise).
        remaining: units that could still pass now, after this request.
        reset_after: seconds until the limit is back to its full quota.
        retry_after: seconds until this request would pass (0 when allowed;
            ``math.inf`` when it never can, being larger than the whole limit).
    """

    allowed: bool
    state: object
    remaining: int
    reset_after: float
    retry_after: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket's parameters: ``limit`` units per ``period_s``, holding ``burst``.

    Args:
        limit: units refilled per period (the rate's amount).
        period_s: the period in seconds.
        burst: the bucket's capacity, the most units that may pass at once;
            None means ``limit``.
    """

    limit: int
    period_s: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_s <= 0:
            raise ValueError("a token bucket needs a limit of at least 1 per a positive period")
        if self.burst is not None and self.burst < 1:
            raise ValueError("a token bucket's burst must be at least 1")

    @property
    def capacity(self) -> int:
        """The most units that may pass at once."""
        return self.burst if self.burst is not None else self.limit

    @property
    def interval(self) -> float:
        """Seconds of TAT one unit costs (the emission interval T)."""
        return self.period_s / self.limit

    @property
    def tolerance(self) -> float:
        """Slack for float rounding of clock readings: far below one unit's interval."""
        return min(1e-6, self.interval / 1000)

    def decide(self, tat: float | None, now: float, cost: int) -> Verdict:
        """Admit ``cost`` units at ``now`` or refuse them; never changes ``tat`` itself."""
        t = self.interval
        depth = self.capacity * t
        base = now if tat is None or tat < now else tat
        new_tat = base + cost * t
        if cost > self.capacity:
            return Verdict(False, tat, self._remaining(base, now), base - now, math.inf)
        if new_tat - now <= depth + self.tolerance:
            return Verdict(True, new_tat, self._remaining(new_tat, now), new_tat - now, 0.0)
        return Verdict(False, tat, self._remaining(base, now), base - now, new_tat - depth - now)

    def adjust(self, tat: float | None, now: float, delta: int) -> float | None:
        """Charge ``delta`` more units (or refund ``-delta``) without a decision.

        A charge may leave the bucket in debt (TAT beyond the depth): the
        next requests wait until it is paid off. A refund never fills the
        bucket beyond full.
        """
        base = now if tat is None or tat < now else tat
        new_tat = base + delta * self.interval
        return None if new_tat <= now else new_tat

    def peek(self, tat: float | None, now: float) -> tuple[int, int, float]:
        """``(used, remaining, reset_after)`` at ``now`` without spending anything."""
        base = now if tat is None or tat < now else tat
        remaining = self._remaining(base, now)
        used = min(self.capacity, math.ceil((base - now) / self.interval - 1e-9))
        return max(0, used), remaining, base - now

    def expires_at(self, tat: float | None) -> float:
        """When the state is equivalent to a full bucket and may be dropped."""
        return tat if tat is not None else 0.0

    def _remaining(self, tat: float, now: float) -> int:
        free = self.capacity - (tat - now) / self.interval
        return max(0, math.floor(free + 1e-9))


class TokenBucket:
    """One token bucket with its own state, on a clock.

    Example:
        >>> from axtui.clock import FakeClock
        >>> clock = FakeClock()
        >>> tb = TokenBucket(limit=2, period_s=60, clock=clock)
        >>> tb.try_acquire(), tb.try_acquire(), tb.try_acquire()
        (True, True, False)
        >>> clock.advance(30)
        >>> tb.try_acquire()
        True
    """

    def __init__(self, limit: int, period_s: float, *, burst: int | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.bucket = Bucket(limit, period_s, burst)
        self.clock = clock
        self.tat: float | None = None

    def acquire(self, cost: int = 1) -> Verdict:
        """Decide on ``cost`` units now, keeping the new state when admitted."""
        verdict = self.bucket.decide(self.tat, self.clock.now(), cost)
        if verdict.allowed:
            self.tat = verdict.state  # type: ignore[assignment]
        return verdict

    def try_acquire(self, cost: int = 1) -> bool:
        """Whether ``cost`` units pass now."""
        return self.acquire(cost).allowed

    def adjust(self, delta: int) -> None:
        """Charge (or refund) ``delta`` units after the fact."""
        self.tat = self.bucket.adjust(self.tat, self.clock.now(), delta)

    @property
    def remaining(self) -> int:
        """Units that could pass now."""
        return self.bucket.peek(self.tat, self.clock.now())[1]
