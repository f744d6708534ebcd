"""Sliding windows: the `limits` library's two, as pure code over explicit state.

``sliding-window`` limits use one of `limits`' strategies:

- the *moving window* (`MovingWindow`): an exact log of when each unit
  passed; at most ``limit`` units in any interval of ``period_s``. Used for
  request limits up to `MOVING_WINDOW_MAX` per window.
- the *sliding window counter* (`WindowCounter`): two counters, the current
  window's and the previous one's, weighted by how much of the previous
  window still overlaps the last ``period_s``. Used for token limits and
  larger request limits, where a log of every unit would be too big.

On Redis the windows run in `limits`' own storage, its atomic Lua scripts
and key layout (see `axtui.ratelimit.backends.redis`); memory and the store
run the same arithmetic here, on the clock they are given, so a limit means the same on
every backend and the property tests drive it with a fake clock. Windows
start at the first hit, as in `limits`, not at clock boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from limits import RateLimitItem

from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.parse import Rate

__all__ = [
    "MOVING_WINDOW_MAX",
    "CounterState",
    "MovingWindow",
    "WindowCounter",
    "limits_item",
]

#: Request limits up to this many per window keep an exact log; larger ones a counter.
MOVING_WINDOW_MAX = 1_000


class CounterState(NamedTuple):
    """A sliding window counter: when the current window started, and both counts."""

    start: float
    previous: int
    current: int


@dataclass(frozen=True, slots=True)
class WindowCounter:
    """`limits`' sliding window counter: ``limit`` units per ``period_s``.

    The count that must stay within the limit is
    ``floor(previous * overlap) + current``, where ``overlap`` is the share
    of the previous window inside the last ``period_s``. It is exact at
    window boundaries and assumes the previous window's units were spread
    evenly, so a caller who packs them at its end can briefly get up to
    twice the limit over a true sliding interval; use the moving window
    when that matters.
    """

    limit: int
    period_s: float

    def roll(self, state: CounterState | None, now: float) -> CounterState:
        """The state as of ``now``: windows shifted, expired counts dropped."""
        if state is None:
            return CounterState(now, 0, 0)
        elapsed = now - state.start
        if elapsed < self.period_s:
            return state
        if elapsed < 2 * self.period_s:
            return CounterState(state.start + self.period_s, state.current, 0)
        return CounterState(now, 0, 0)

    def weighted(self, state: CounterState, now: float) -> int:
        """The count the limit applies to (``state`` already rolled)."""
        overlap = (state.start + self.period_s - now) / self.period_s
        return math.floor(state.previous * overlap) + state.current

    def decide(self, state: CounterState | None, now: float, cost: int) -> Verdict:
        """Admit ``cost`` units at ``now`` or refuse them."""
        p = self.period_s
        # roll() and weighted(), inlined: this is the hot path of every call.
        if state is None:
            s = CounterState(now, 0, 0)
        else:
            elapsed = now - state.start
            if elapsed < p:
                s = state
            elif elapsed < 2 * p:
                s = CounterState(state.start + p, state.current, 0)
            else:
                s = CounterState(now, 0, 0)
        start, previous, current = s
        count = math.floor(previous * (start + p - now) / p) + current if previous else current
        limit = self.limit
        if cost <= limit and count + cost <= limit:
            current += cost
            reset = start + 2 * p - now if current else (start + p - now if previous else 0.0)
            return Verdict(True, CounterState(start, previous, current), limit - count - cost, reset, 0.0)
        retry = math.inf if cost > limit else self._retry_after(s, now, cost)
        return Verdict(False, s, max(0, limit - count), self._reset_after(s, now), retry)

    def adjust(self, state: CounterState | None, now: float, delta: int) -> CounterState:
        """Count ``delta`` more units (or take ``-delta`` back) without a decision."""
        s = self.roll(state, now)
        if delta >= 0:
            return CounterState(s.start, s.previous, s.current + delta)
        take = -delta
        current = max(0, s.current - take)
        spill = take - (s.current - current)
        return CounterState(s.start, max(0, s.previous - spill), current)

    def peek(self, state: CounterState | None, now: float) -> tuple[int, int, float]:
        """``(used, remaining, reset_after)`` at ``now``."""
        s = self.roll(state, now)
        used = self.weighted(s, now)
        return used, max(0, self.limit - used), self._reset_after(s, now)

    def expires_at(self, state: CounterState | None) -> float:
        """When the state is equivalent to no state at all."""
        return state.start + 2 * self.period_s if state is not None else 0.0

    def _reset_after(self, s: CounterState, now: float) -> float:
        if s.current:
            return s.start + 2 * self.period_s - now
        if s.previous:
            return max(0.0, s.start + self.period_s - now)
        return 0.0

    def _retry_after(self, s: CounterState, now: float, cost: int) -> float:
        p = self.period_s
        # Within this window only the previous window's weight falls:
        # floor(previous * overlap) <= room  <=>  previous * overlap < room + 1.
        room = self.limit - cost - s.current
        if room >= 0 and s.previous:
            at = s.start + p - p * (room + 1) / s.previous
            if at < s.start + p:
                return max(0.0, at - now) + 1e-6
        # In the next window the current count becomes the previous one.
        room = self.limit - cost
        at = s.start + p
        if s.current:
            at = max(at, s.start + 2 * p - p * (room + 1) / s.current)
        return max(0.0, at - now) + 1e-6


@dataclass(frozen=True, slots=True)
class MovingWindow:
    """`limits`' moving window: an exact log, at most ``limit`` units in any ``period_s``.

    The state is a tuple of the times each unit passed, oldest first; a unit
    that passed at ``t`` leaves the window at ``t + period_s``.
    """

    limit: int
    period_s: float

    @property
    def tolerance(self) -> float:
        """Slack for float rounding of clock readings: far below the spacing of ``limit`` units."""
        return min(1e-6, self.period_s / self.limit / 1000)

    def prune(self, log: tuple[float, ...] | None, now: float) -> tuple[float, ...]:
        """The entries still inside the window at ``now``."""
        if not log:
            return ()
        edge = now - self.period_s + self.tolerance
        if log[0] > edge:
            return log
        i = 0
        n = len(log)
        while i < n and log[i] <= edge:
            i += 1
        return log[i:]

    def decide(self, log: tuple[float, ...] | None, now: float, cost: int) -> Verdict:
        """Admit ``cost`` units at ``now`` or refuse them."""
        live = self.prune(log, now)
        if cost <= self.limit and len(live) + cost <= self.limit:
            new = live + (now,) * cost
            return Verdict(True, new, self.limit - len(new), new[-1] + self.period_s - now if new else 0.0, 0.0)
        reset = live[-1] + self.period_s - now if live else 0.0
        if cost > self.limit:
            return Verdict(False, live, max(0, self.limit - len(live)), reset, math.inf)
        # The entry whose expiry frees enough room for this request.
        must_leave = len(live) - (self.limit - cost)
        retry = live[must_leave - 1] + self.period_s - self.tolerance - now
        return Verdict(False, live, max(0, self.limit - len(live)), reset, max(0.0, retry) + 1e-6)

    def adjust(self, log: tuple[float, ...] | None, now: float, delta: int) -> tuple[float, ...]:
        """Log ``delta`` more units now, or drop the ``-delta`` newest."""
        live = self.prune(log, now)
        if delta >= 0:
            return live + (now,) * delta
        return live[: max(0, len(live) + delta)]

    def peek(self, log: tuple[float, ...] | None, now: float) -> tuple[int, int, float]:
        """``(used, remaining, reset_after)`` at ``now``."""
        live = self.prune(log, now)
        reset = live[-1] + self.period_s - now if live else 0.0
        return len(live), max(0, self.limit - len(live)), reset

    def expires_at(self, log: tuple[float, ...] | None) -> float:
        """When every entry has left the window."""
        return log[-1] + self.period_s if log else 0.0


def limits_item(rate: Rate) -> RateLimitItem:
    """The `limits` item for a rate, namespaced for ax's keys."""
    item = rate.item
    item.namespace = "ax"
    return item
