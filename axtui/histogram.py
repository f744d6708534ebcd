"""Mergeable, subtractable log-bucket histograms, and a sliding window of them.

A `LogHistogram` keeps counts in buckets whose bounds grow geometrically
(bucket ``k`` holds the values in ``(GAMMA**(k-1), GAMMA**k]``), so any
quantile it reports is within ``RELATIVE_ERROR`` (1 %) of a value that was
really added, whatever the scale: 0.2 ms and 20 s are measured alike, and
latencies from microseconds to hours take a few hundred buckets at most.
Zero, negative and NaN values share one zero bucket and read back as 0.

Every histogram uses the same bucket layout, so they add and subtract
exactly, bucket by bucket: per-second windows add up to minutes, one
process's rollups to another's, and a second leaving a sliding window is
subtracted from its running total. Two serialised forms carry the layout
with them: a compact text form for database columns (`LogHistogram.to_text`,
the per-second metrics rollups) and a JSON-friendly dict
(`LogHistogram.to_dict`). Data written with another accuracy is re-bucketed
on reading, its error then being the sum of both accuracies.

This is the DDSketch construction (Masson, Rim and Lee, VLDB 2019) without
its bucket collapsing: ax's values (milliseconds) span a bounded range.

`bucket_of` is separate so a hot path can compute a value's bucket once and
add it to many histograms (`LogHistogram.add_bucket`, or inlined).

`WindowedHistogram` is a ring of histograms over the last ``span_s``
seconds, with a running total so a quantile over the window never has to
merge the ring.

Pure: no I/O; time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "GAMMA",
    "MIN_VALUE",
    "RELATIVE_ERROR",
    "ZERO_BUCKET",
    "LogHistogram",
    "WindowedHistogram",
    "bucket_of",
    "bucket_value",
]

#: Every quantile is within this fraction of a value that was added (DDSketch's alpha).
RELATIVE_ERROR = 0.01
#: Ratio between a bucket's upper and lower bound.
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)
#: Values at or below this (and NaN) count in the zero bucket and read back as 0.
MIN_VALUE = 1e-6
#: The index of the zero bucket; below every real bucket, so it sorts first.
ZERO_BUCKET = -(2**31)
#: The accuracy of text forms written before the text carried its layout.
_LEGACY_TEXT_ERROR = 0.02


def bucket_of(value: float) -> int:
    """The bucket index of ``value``: `ZERO_BUCKET` for zero, negative or NaN values.

    Raises:
        ValueError: ``value`` is infinite.
    """
    if value > MIN_VALUE:  # False for NaN
        try:
            return math.ceil(math.log(value) / _LOG_GAMMA)
        except OverflowError:
            raise ValueError(f"a histogram counts finite values, not {value}") from None
    return ZERO_BUCKET


def bucket_value(index: int, gamma: float = GAMMA) -> float:
    """The value bucket ``index`` stands for: the point equally far, relatively, from both bounds."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * gamma**index / (gamma + 1)


class LogHistogram:
    """Counts of values per logarithmic bucket, with exact add, merge and subtract.

    ``buckets`` maps a bucket index (see `bucket_of`) to its count, the zero
    bucket included; ``count`` is the number of values and ``total`` their
    sum (non-positive values count as 0), for means. Two histograms are equal
    when their buckets are: ``total`` is a float sum whose last digits depend
    on the order values came in.
    """

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> LogHistogram:
        """A histogram of ``values``."""
        h = cls()
        for v in values:
            h.add(v)
        return h

    def add(self, value: float, n: int = 1) -> None:
        """Count ``value`` ``n`` times.

        Raises:
            ValueError: ``value`` is infinite or ``n`` is below one.
        """
        if n < 1:
            raise ValueError(f"a value is counted at least once, not {n} times")
        index = bucket_of(value)
        self.add_bucket(index, value if index != ZERO_BUCKET else 0.0, n)

    def add_bucket(self, index: int, value: float, n: int = 1) -> None:
        """Count ``n`` values whose bucket is already known (see `bucket_of`).

        ``value`` is the value as counted in ``total``: 0 for the zero bucket.
        A hot path may inline this: one bucket count, ``count`` and ``total``.
        """
        b = self.buckets
        b[index] = b.get(index, 0) + n
        self.count += n
        self.total += value * n

    def merge(self, other: LogHistogram) -> LogHistogram:
        """Add every value of ``other`` to this histogram; returns self."""
        if other.count:
            b = self.buckets
            if not b:
                b.update(other.buckets)  # the common first merge into a new total: a C-speed copy
            else:
                for k, c in other.buckets.items():
                    b[k] = b.get(k, 0) + c
            self.count += other.count
            self.total += other.total
        return self

    def subtract(self, other: LogHistogram) -> LogHistogram:
        """Remove the values of ``other``, which must have been merged or added before; returns self."""
        if other.count:
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
                self.clear()
        return self

    def copy(self) -> LogHistogram:
        """An independent copy."""
        h = LogHistogram()
        h.buckets = dict(self.buckets)
        h.count = self.count
        h.total = self.total
        return h

    def clear(self) -> None:
        """Forget every value."""
        self.buckets.clear()
        self.count = 0
        self.total = 0.0

    def __bool__(self) -> bool:
        return self.count > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return self.count == other.count and self.buckets == other.buckets

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, buckets={len(self.buckets)})"

    # -- reading ---------------------------------------------------------------------------

    def mean(self) -> float | None:
        """The mean of the values (non-positive ones as 0), or None when empty."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 <= q <= 1), within `RELATIVE_ERROR` of a value added; None when empty.

        The quantile of n values is the one of rank ``floor(q * (n - 1))``
        counting from 0 (the "lower" rule): always a value that was added.

        Raises:
            ValueError: ``q`` is outside 0..1.
        """
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several quantiles in one walk over the buckets; ``qs`` in any order.

        Raises:
            ValueError: a ``q`` is outside 0..1.
        """
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"a quantile is between 0 and 1, not {q}")
        out: list[float | None] = [None] * len(qs)
        if not self.count:
            return out
        order = sorted(range(len(qs)), key=qs.__getitem__)
        last = self.count - 1
        ranks = [qs[i] * last for i in order]
        wanted = len(order)
        j = 0
        rank = ranks[0]
        seen = 0
        buckets = self.buckets
        for k in sorted(buckets):  # sorting the keys is several times faster than the items
            seen += buckets[k]
            if rank < seen:  # the wanted value(s) are in this bucket
                v = bucket_value(k)
                while True:
                    out[order[j]] = v
                    j += 1
                    if j == wanted:
                        return out
                    rank = ranks[j]
                    if rank >= seen:
                        break
        return out

    # -- storage ---------------------------------------------------------------------------

    def to_text(self) -> str:
        """A compact text form for a database column: ``index:count,...;total;a=<accuracy>``."""
        body = ",".join(f"{k}:{c}" for k, c in sorted(self.buckets.items()))
        return f"{body};{self.total!r};a={RELATIVE_ERROR!r}"

    @classmethod
    def from_text(cls, text: str | None) -> LogHistogram:
        """Read back `to_text`; empty or None gives an empty histogram.

        Text without its accuracy (written by ax before it carried one) is
        read as the 2 % layout it was written with.

        Raises:
            ValueError: the text is not a histogram.
        """
        h = cls()
        if not text:
            return h
        parts = text.split(";")
        if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].startswith("a=")):
            raise ValueError(f"not a histogram in text form ('index:count,...;total;a=accuracy'): {text[:60]!r}")
        try:
            error = float(parts[2][2:]) if len(parts) == 3 else _LEGACY_TEXT_ERROR
            if parts[0]:
                for part in parts[0].split(","):
                    k, _, c = part.partition(":")
                    n = int(c)
                    if n <= 0:
                        raise ValueError(f"histogram bucket {part!r} has a count below one")
                    h.buckets[int(k)] = h.buckets.get(int(k), 0) + n
                    h.count += n
            h.total = float(parts[1]) if parts[1] else 0.0
        except ValueError as exc:
            raise ValueError(f"not a histogram in text form: {exc}") from None
        h.buckets = _rebucketed(h.buckets, error)
        return h

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form that `from_dict` reads back exactly."""
        return {
            "relative_error": RELATIVE_ERROR,
            "count": self.count,
            "total": self.total,
            "zeros": self.buckets.get(ZERO_BUCKET, 0),
            "buckets": {str(k): c for k, c in sorted(self.buckets.items()) if k != ZERO_BUCKET},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogHistogram:
        """A histogram from `to_dict`'s output (re-bucketed if written with another accuracy).

        Raises:
            ValueError: the data is not a histogram.
        """
        try:
            error = float(data.get("relative_error", RELATIVE_ERROR))
            h = cls()
            for k, c in dict(data.get("buckets", {})).items():
                if int(c) <= 0:
                    raise ValueError(f"bucket {k} has a count below one")
                h.buckets[int(k)] = int(c)
            zeros = int(data.get("zeros", 0))
            if zeros < 0:
                raise ValueError("a negative count of zeros")
            if zeros:
                h.buckets[ZERO_BUCKET] = zeros
            h.count = sum(h.buckets.values())
            if int(data.get("count", h.count)) != h.count:
                raise ValueError(f"count {data['count']} is not the sum of the buckets, {h.count}")
            h.total = float(data.get("total", 0.0))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a histogram: {exc}") from None
        h.buckets = _rebucketed(h.buckets, error)
        return h


def _rebucketed(buckets: dict[int, int], error: float) -> dict[int, int]:
    """``buckets`` of a layout with relative accuracy ``error``, moved into this layout."""
    if error == RELATIVE_ERROR:
        return buckets
    if not 0.0 < error < 1.0:
        raise ValueError(f"a histogram's relative accuracy is between 0 and 1, not {error}")
    gamma = (1 + error) / (1 - error)
    out: dict[int, int] = {}
    try:
        for k, c in buckets.items():
            new = bucket_of(bucket_value(k, gamma))
            out[new] = out.get(new, 0) + c
    except OverflowError:
        raise ValueError("a histogram bucket index is out of range") from None
    return out


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

    def add(self, value: float, now: float) -> None:
        """Count ``value`` at time ``now``.

        Raises:
            ValueError: ``value`` is infinite.
        """
        index = bucket_of(value)
        if index == ZERO_BUCKET:
            value = 0.0
        epoch = int(now // self._slot_s)
        i = epoch % len(self._parts)
        if self._epochs[i] != epoch:
            self._expire(epoch)
            self._epochs[i] = epoch
        self._parts[i].add_bucket(index, value)
        self.total.add_bucket(index, value)

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
