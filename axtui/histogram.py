"""Mergeable log-bucket histograms, and a sliding window of them.

A `LogHistogram` keeps counts in buckets whose bounds grow geometrically
(each ``GAMMA`` times the last), so any quantile it reports is within
``RELATIVE_ERROR`` (1 %) of a value that was really added, whatever the
scale: 0.2 ms and 20 s are measured alike. Every histogram uses the same
bucket layout, so two of them merge by adding counts: per-second windows
add up to minutes, minutes to hours, one process's to another's. That is
what makes them cheap to keep live and to store in rollups
(`LogHistogram.to_dict` / `LogHistogram.from_dict`).

`WindowedHistogram` is a ring of histograms over the last ``span_s``
seconds, with a running total so a quantile over the window never has to
merge the ring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["GAMMA", "RELATIVE_ERROR", "LogHistogram", "WindowedHistogram"]

#: Relative accuracy of every quantile (DDSketch's alpha).
RELATIVE_ERROR = 0.01
#: Ratio between a bucket's upper and lower bound.
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)
#: Values at or below this land in the zero bucket (latencies are never this small).
MIN_VALUE = 1e-9


def bucket_of(value: float) -> int:
    """The bucket index of a positive value: bucket ``k`` holds (GAMMA^(k-1), GAMMA^k]."""
    return math.ceil(math.log(value) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The value a bucket stands for: the point within 1 % of both its bounds."""
    return 2 * GAMMA**index / (GAMMA + 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """The (lower, upper] bounds of bucket ``index``."""
    return GAMMA ** (index - 1), GAMMA**index


class LogHistogram:
    """Counts of values in log-spaced buckets; mergeable and subtractable.

    ``count``, ``total`` (the sum of values) and the buckets are exact;
    ``min`` and ``max`` are exact while only adding and merging (after a
    subtraction they are bounds, not exact values). Negative values count
    as zero.
    """

    __slots__ = ("buckets", "count", "max", "min", "total", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    @classmethod
    def of(cls, values: Iterable[float]) -> LogHistogram:
        """A histogram of ``values``."""
        h = cls()
        for v in values:
            h.add(v)
        return h

    def add(self, value: float, n: int = 1) -> None:
        """Count ``value`` ``n`` times."""
        if value > MIN_VALUE:
            k = math.ceil(math.log(value) / _LOG_GAMMA)
            self.buckets[k] = self.buckets.get(k, 0) + n
        else:
            value = max(value, 0.0)
            self.zeros += n
        self.count += n
        self.total += value * n
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: LogHistogram) -> LogHistogram:
        """Add every count of ``other`` to this one; returns self."""
        buckets = self.buckets
        for k, n in other.buckets.items():
            buckets[k] = buckets.get(k, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    __iadd__ = merge

    def subtract(self, other: LogHistogram) -> LogHistogram:
        """Remove ``other``'s counts (a part earlier merged in); returns self.

        ``min`` and ``max`` stay as they were: bounds rather than exact.
        """
        buckets = self.buckets
        for k, n in other.buckets.items():
            left = buckets.get(k, 0) - n
            if left > 0:
                buckets[k] = left
            else:
                buckets.pop(k, None)
        self.zeros = max(0, self.zeros - other.zeros)
        self.count = max(0, self.count - other.count)
        self.total = self.total - other.total if self.count else 0.0
        if not self.count:
            self.min, self.max = math.inf, -math.inf
        return self

    def copy(self) -> LogHistogram:
        """An independent copy."""
        h = LogHistogram()
        h.buckets = dict(self.buckets)
        h.zeros, h.count, h.total, h.min, h.max = self.zeros, self.count, self.total, self.min, self.max
        return h

    def clear(self) -> None:
        """Forget every value."""
        self.buckets.clear()
        self.zeros = self.count = 0
        self.total = 0.0
        self.min, self.max = math.inf, -math.inf

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.buckets == other.buckets and self.zeros == other.zeros and self.count == other.count

    __hash__ = None  # type: ignore[assignment]

    @property
    def mean(self) -> float | None:
        """The mean of the values, or None when empty."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), within 1 % of a value added; None when empty.

        Raises:
            ValueError: ``q`` is outside 0..1.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile is between 0 and 1, not {q}")
        if not self.count:
            return None
        # The rank of the wanted value, counting from 0 (the "lower" rule).
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if rank < seen:
                return self._clamp(bucket_value(k))
        return self._clamp(bucket_value(max(self.buckets))) if self.buckets else 0.0

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles in one walk over the buckets."""
        wanted = sorted((q, i) for i, q in enumerate(qs))
        out: list[float | None] = [None] * len(wanted)
        if not self.count:
            return out
        walk = self._cumulative()
        k, seen = next(walk)
        for q, i in wanted:
            rank = q * (self.count - 1)
            while rank >= seen:
                try:
                    k, seen = next(walk)
                except StopIteration:
                    break
            out[i] = 0.0 if k is None else self._clamp(bucket_value(k))
        return out

    def _cumulative(self) -> Iterator[tuple[int | None, int]]:
        seen = self.zeros
        if seen:
            yield None, seen
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            yield k, seen

    def _clamp(self, value: float) -> float:
        # The bucket's midpoint may lie just outside what was seen.
        if self.max >= self.min:
            return min(max(value, self.min), self.max)
        return value

    def count_at_most(self, value: float) -> int:
        """How many values are at most ``value`` (to bucket precision), for cumulative exports."""
        n = self.zeros
        if value <= MIN_VALUE:
            return n if value >= 0 else 0
        top = bucket_of(value)
        return n + sum(c for k, c in self.buckets.items() if k <= top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form that `from_dict` reads back exactly."""
        return {
            "gamma": GAMMA,
            "zeros": self.zeros,
            "count": self.count,
            "total": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "buckets": {str(k): n for k, n in sorted(self.buckets.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogHistogram:
        """A histogram from `to_dict`'s output.

        Raises:
            ValueError: the data was written with another bucket layout, or is malformed.
        """
        gamma = float(data.get("gamma", GAMMA))
        if abs(gamma - GAMMA) > 1e-12:
            raise ValueError(f"histogram written with bucket ratio {gamma}, this ax uses {GAMMA}; they cannot merge")
        try:
            h = cls()
            h.buckets = {int(k): int(n) for k, n in dict(data.get("buckets", {})).items() if int(n) > 0}
            h.zeros = int(data.get("zeros", 0))
            h.count = int(data.get("count", h.zeros + sum(h.buckets.values())))
            h.total = float(data.get("total", 0.0))
            lo, hi = data.get("min"), data.get("max")
            h.min = float(lo) if lo is not None else math.inf
            h.max = float(hi) if hi is not None else -math.inf
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a histogram: {exc}") from None
        return h

    def __repr__(self) -> str:
        p50, p95 = self.quantiles((0.5, 0.95))
        return f"LogHistogram(count={self.count}, p50={p50}, p95={p95})"


class WindowedHistogram:
    """The values of the last ``span_s`` seconds, in ``slots`` rotating parts.

    Time is whatever the caller passes as ``now`` (monotonic seconds), so a
    fake clock drives it in tests. Values older than the window drop out a
    slot at a time: the window covers between ``span_s - span_s/slots`` and
    ``span_s`` seconds.
    """

    __slots__ = ("_epochs", "_parts", "_slot_s", "span_s", "total")

    def __init__(self, span_s: float = 60.0, slots: int = 6) -> None:
        if span_s <= 0 or slots < 1:
            raise ValueError("a window needs span_s > 0 and at least one slot")
        self.span_s = span_s
        self._slot_s = span_s / slots
        self._parts = [LogHistogram() for _ in range(slots)]
        self._epochs = [-1] * slots
        #: Everything currently inside the window, merged.
        self.total = LogHistogram()

    def _expire(self, epoch: int) -> None:
        parts, epochs = self._parts, self._epochs
        n = len(parts)
        for i in range(n):
            if epochs[i] != -1 and epochs[i] <= epoch - n:
                self.total.subtract(parts[i])
                parts[i].clear()
                epochs[i] = -1
        if not self.total.count:
            self.total.clear()

    def add(self, value: float, now: float) -> None:
        """Count ``value`` at time ``now``."""
        epoch = int(now // self._slot_s)
        i = epoch % len(self._parts)
        if self._epochs[i] != epoch:
            self._expire(epoch)
            self._epochs[i] = epoch
        self._parts[i].add(value)
        self.total.add(value)

    def advance(self, now: float) -> None:
        """Drop what has left the window by ``now``."""
        self._expire(int(now // self._slot_s))

    def snapshot(self, now: float) -> LogHistogram:
        """A copy of everything inside the window at ``now``."""
        self.advance(now)
        return self.total.copy()

    def quantile(self, q: float, now: float) -> float | None:
        """The ``q`` quantile of the window at ``now``; None when empty."""
        self.advance(now)
        return self.total.quantile(q)

    def count(self, now: float) -> int:
        """How many values the window holds at ``now``."""
        self.advance(now)
        return self.total.count

    def clear(self) -> None:
        """Forget every value."""
        for p in self._parts:
            p.clear()
        self._epochs = [-1] * len(self._parts)
        self.total.clear()
