"""A mergeable log-bucket histogram for latency quantiles.

Values fall into buckets whose bounds grow geometrically by ``GAMMA``
(bucket ``i`` holds values in ``(GAMMA**(i-1), GAMMA**i]``), so any
quantile is answered within ``RELATIVE_ACCURACY`` (2 %) of the true value
while the histogram stays small (a few hundred buckets for latencies from
microseconds to hours). Histograms add and subtract exactly, bucket by
bucket, which is what sliding windows and stored rollups need: a window is
the sum of its seconds, and a second leaving the window is subtracted.

This is the DDSketch construction (Masson, Rim and Lee, VLDB 2019) without
its bucket collapsing: ax's values (milliseconds) span a bounded range.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["GAMMA", "RELATIVE_ACCURACY", "LogHistogram", "bucket_of"]

#: Every quantile is within this fraction of the true value.
RELATIVE_ACCURACY = 0.02
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
#: Values at or below this (zero, negative) share one bucket and read back as 0.
_MIN_VALUE = 1e-6
_ZERO = -(2**31)


def bucket_of(value: float) -> int:
    """The bucket index of ``value`` (compute once, add to many histograms)."""
    if value <= _MIN_VALUE or value != value:  # non-positive or NaN
        return _ZERO
    return math.ceil(math.log(value) / _LOG_GAMMA)


def _representative(index: int) -> float:
    if index == _ZERO:
        return 0.0
    # The point of the bucket whose relative distance to both bounds is equal.
    return 2 * GAMMA**index / (GAMMA + 1)


class LogHistogram:
    """Counts of values per logarithmic bucket, with exact add and subtract.

    Attributes:
        count: how many values were recorded.
        total: the sum of the recorded values (for means).
    """

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, buckets={len(self.buckets)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogHistogram) and self.buckets == other.buckets and self.count == other.count

    def __bool__(self) -> bool:
        return self.count > 0

    def record(self, value: float) -> None:
        """Add one value."""
        self.add_bucket(bucket_of(value), value)

    def add_bucket(self, index: int, value: float) -> None:
        """Add one value whose bucket is already known (see `bucket_of`)."""
        b = self.buckets
        b[index] = b.get(index, 0) + 1
        self.count += 1
        self.total += value

    def merge(self, other: LogHistogram) -> None:
        """Add every value of ``other`` to this histogram."""
        if not other.count:
            return
        b = self.buckets
        for k, c in other.buckets.items():
            b[k] = b.get(k, 0) + c
        self.count += other.count
        self.total += other.total

    def subtract(self, other: LogHistogram) -> None:
        """Remove the values of ``other``, which must have been merged in before."""
        if not other.count:
            return
        b = self.buckets
        for k, c in other.buckets.items():
            left = b.get(k, 0) - c
            if left > 0:
                b[k] = left
            else:
                b.pop(k, None)
        self.count -= other.count
        self.total -= other.total
        if self.count <= 0:
            self.buckets.clear()
            self.count = 0
            self.total = 0.0

    def copy(self) -> LogHistogram:
        """An independent copy."""
        h = LogHistogram()
        h.buckets = dict(self.buckets)
        h.count = self.count
        h.total = self.total
        return h

    def mean(self) -> float | None:
        """The mean of the recorded values, or None when empty."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 <= q <= 1), or None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles in one pass; ``qs`` in any order."""
        if not self.count:
            return [None] * len(qs)
        order = sorted(range(len(qs)), key=lambda i: qs[i])
        ranks = [max(0.0, min(1.0, qs[i])) * (self.count - 1) for i in order]
        out: list[float | None] = [None] * len(qs)
        seen = 0
        j = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            while j < len(order) and ranks[j] < seen:
                out[order[j]] = _representative(index)
                j += 1
            if j == len(order):
                break
        last = _representative(max(self.buckets))
        for k in range(j, len(order)):
            out[order[k]] = last
        return out

    # -- storage ---------------------------------------------------------------------------

    def to_text(self) -> str:
        """A compact text form (``index:count,...;total``) for a database column."""
        body = ",".join(f"{k}:{c}" for k, c in sorted(self.buckets.items()))
        return f"{body};{self.total!r}"

    @classmethod
    def from_text(cls, text: str | None) -> LogHistogram:
        """Read back `to_text`; empty or None gives an empty histogram.

        Raises:
            ValueError: the text is not a histogram.
        """
        h = cls()
        if not text:
            return h
        body, _, total = text.partition(";")
        if body:
            for part in body.split(","):
                k, _, c = part.partition(":")
                n = int(c)
                if n <= 0:
                    raise ValueError(f"histogram bucket {part!r} has a count below one")
                h.buckets[int(k)] = h.buckets.get(int(k), 0) + n
                h.count += n
        h.total = float(total) if total else 0.0
        return h

    @classmethod
    def of(cls, values: Iterable[float]) -> LogHistogram:
        """A histogram of ``values``."""
        h = cls()
        for v in values:
            h.record(v)
        return h
