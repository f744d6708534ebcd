"""The token bucket, as GCRA (the generic cell rate algorithm): pure code.

A bucket holds at most ``burst`` units (by default the limit itself, so an
idle caller may spend one period's quota at once) and refills continuously
at ``limit`` units per ``period_s``. GCRA keeps the bucket as the moment it
will be full again (the *theoretical arrival time*); one unit moves that
moment ``T = period_s / limit`` seconds later, and a request of ``cost``
units is admitted when it would leave the moment at most ``burst * T``
ahead of now.

Here that moment is kept as ``(stamp, level)``: when the bucket was last
touched and how many units were in use then, so ``TAT = stamp + level * T``.
Counting in units rather than adding seconds to an epoch timestamp keeps
the arithmetic exact where it matters: a float near 1.75e9 has a grain of
0.24 µs, which hundreds of additions would turn into a refused request.

Two guarantees follow, and the property tests check both: in any interval
of length ``period_s`` at most ``limit + burst`` units are admitted, and a
caller that asks at exactly the limit's pace is never refused.

The same code serves memory and the store; one Lua script mirrors it for
Redis. `TokenBucket` is a stateful wrapper over a clock.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from axtui.clock import SYSTEM_CLOCK, Clock

__all__ = ["Bucket", "BucketState", "TokenBucket", "Verdict"]


class Verdict(NamedTuple):
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


class BucketState(NamedTuple):
    """A bucket at ``stamp`` (clock seconds) had ``level`` units in use."""

    stamp: float
    level: float


class Bucket:
    """A token bucket's parameters: ``limit`` units per ``period_s``, holding ``burst``.

    Args:
        limit: units refilled per period (the rate's amount).
        period_s: the period in seconds.
        burst: the bucket's capacity, the most units that may pass at once;
            None means ``limit``.

    Attributes:
        capacity: the most units that may pass at once.
        interval: seconds one unit takes to refill (the emission interval T).
        tolerance: slack in units for the rounding of clock readings: a
            microsecond's worth, and never more than a thousandth of a unit.
    """

    __slots__ = ("burst", "capacity", "interval", "limit", "period_s", "tolerance")

    def __init__(self, limit: int, period_s: float, burst: int | None = None) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a token bucket needs a limit of at least 1 per a positive period")
        if burst is not None and burst < 1:
            raise ValueError("a token bucket's burst must be at least 1")
        self.limit = limit
        self.period_s = period_s
        self.burst = burst
        # Fixed per limit and read on every decision: computed once.
        self.capacity: int = burst if burst is not None else limit
        self.interval: float = period_s / limit
        self.tolerance: float = min(1e-3, 1e-6 / self.interval)

    def __repr__(self) -> str:
        return f"Bucket(limit={self.limit}, period_s={self.period_s}, burst={self.burst})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bucket) and (self.limit, self.period_s, self.burst) == (
            other.limit, other.period_s, other.burst)

    def __hash__(self) -> int:
        return hash((self.limit, self.period_s, self.burst))

    def level(self, state: BucketState | None, now: float) -> tuple[float, float]:
        """``(stamp, units in use)`` as of ``now`` (a stamp in the future, from a skewed clock, is kept)."""
        if state is None:
            return now, 0.0
        stamp, level = state
        if now <= stamp:
            return stamp, level
        level -= (now - stamp) / self.interval
        return now, level if level > 0.0 else 0.0

    def decide(self, state: BucketState | None, now: float, cost: int) -> Verdict:
        """Admit ``cost`` units at ``now`` or refuse them; never changes ``state`` itself."""
        t = self.interval
        # self.level(), inlined: this is the hot path of every call.
        if state is None:
            stamp, level = now, 0.0
        else:
            stamp, level = state
            if now > stamp:
                level -= (now - stamp) / t
                if level < 0.0:
                    level = 0.0
                stamp = now
        ahead = stamp - now  # > 0 only when another clock wrote the state
        cap = self.capacity
        new_level = level + cost
        if cost <= cap and new_level <= cap + self.tolerance:
            # cap - new_level + tolerance >= 0 here, so int() is floor().
            return Verdict(True, BucketState(stamp, new_level), int(cap - new_level + self.tolerance),
                           ahead + new_level * t, 0.0)
        retry = math.inf if cost > cap else ahead + (new_level - cap) * t
        return Verdict(False, state, self._remaining(level), ahead + level * t, retry)

    def adjust(self, state: BucketState | None, now: float, delta: int) -> BucketState | None:
        """Charge ``delta`` more units (or refund ``-delta``) without a decision.

        A charge may leave the bucket in debt (more in use than it holds):
        the next requests wait until it is paid off. A refund never fills
        the bucket beyond full.
        """
        stamp, level = self.level(state, now)
        new_level = level + delta
        return BucketState(stamp, new_level) if new_level > 0 else None

    def peek(self, state: BucketState | None, now: float) -> tuple[int, int, float]:
        """``(used, remaining, reset_after)`` at ``now`` without spending anything."""
        stamp, level = self.level(state, now)
        used = min(self.capacity, max(0, math.ceil(level - self.tolerance)))
        return used, self._remaining(level), stamp - now + level * self.interval

    def expires_at(self, state: BucketState | None) -> float:
        """When the state is equivalent to a full bucket and may be dropped."""
        return state.stamp + state.level * self.interval if state is not None else 0.0

    def _remaining(self, level: float) -> int:
        return max(0, math.floor(self.capacity - level + self.tolerance))


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
        self.state: BucketState | None = None

    def acquire(self, cost: int = 1) -> Verdict:
        """Decide on ``cost`` units now, keeping the new state when admitted."""
        verdict = self.bucket.decide(self.state, self.clock.now(), cost)
        if verdict.allowed:
            self.state = verdict.state  # type: ignore[assignment]
        return verdict

    def try_acquire(self, cost: int = 1) -> bool:
        """Whether ``cost`` units pass now."""
        return self.acquire(cost).allowed

    def adjust(self, delta: int) -> None:
        """Charge (or refund) ``delta`` units after the fact."""
        self.state = self.bucket.adjust(self.state, self.clock.now(), delta)

    @property
    def remaining(self) -> int:
        """Units that could pass now."""
        return self.bucket.peek(self.state, self.clock.now())[1]
