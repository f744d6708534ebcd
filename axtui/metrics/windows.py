"""Sliding windows of per-slot aggregates: the pure core of live metrics.

A `Track` holds the calls of one key (everything, one provider, one user…)
in a ring of fixed-width time slots covering the whole window (15 minutes
of one-second slots by default), plus a running aggregate of the most
recent slots (the last minute) kept up to date by adding each call and
subtracting each slot that leaves it. Reading the recent window is
therefore O(1) whatever the traffic, and a snapshot costs the same at ten
calls a second as at ten thousand.

Slots are addressed by index (``time // slot_s``); a call may land in any
slot still inside the window, so rollups from other processes that arrive
a little late are placed where they belong.

Pure: times are passed in; no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from axtui.metrics.histogram import LogHistogram, bucket_of
from axtui.types import CallRecord

__all__ = ["Observation", "Slot", "Track", "observe_record"]

_NO_BUCKET = None


@dataclass(slots=True, frozen=True)
class Observation:
    """One call reduced to what the windows count (computed once, added to many slots)."""

    status: str
    cache_hit: bool
    input_tokens: int
    output_tokens: int
    cost_nanos: int | None
    latency_ms: float | None
    latency_bucket: int | None
    ttft_ms: float | None
    ttft_bucket: int | None


def observe_record(rec: CallRecord) -> Observation:
    """Reduce a call record to an `Observation`.

    Latency counts for served calls only (ok or error): a refusal takes no
    time worth measuring and would drag the quantiles down.
    """
    served = rec.status in ("ok", "error")
    lat = rec.latency_ms if served else None
    ttft = rec.ttft_ms if served and rec.status == "ok" and rec.ttft_ms is not None else None
    return Observation(
        rec.status,
        rec.cache in ("exact", "semantic"),
        rec.input_tokens,
        rec.output_tokens,
        rec.cost_nanos,
        lat,
        bucket_of(lat) if lat is not None else _NO_BUCKET,
        ttft,
        bucket_of(ttft) if ttft is not None else _NO_BUCKET,
    )


class Slot:
    """Counts, tokens, money and latency histograms of the calls in one time slot."""

    __slots__ = (
        "budget_refused",
        "cache_hits",
        "cancelled",
        "cost_nanos",
        "errors",
        "idx",
        "input_tokens",
        "last_seen",
        "latency",
        "ok",
        "output_tokens",
        "point",
        "rate_limited",
        "requests",
        "ttft",
        "unknown_cost",
    )

    def __init__(self, idx: int = 0) -> None:
        self.idx = idx
        self.requests = 0
        self.ok = 0
        self.errors = 0
        self.rate_limited = 0
        self.budget_refused = 0
        self.cancelled = 0
        self.cache_hits = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_nanos = 0
        self.unknown_cost = 0
        self.latency = LogHistogram()
        self.ttft = LogHistogram()
        self.last_seen: float | None = None
        #: A cached per-slot series point; reset whenever the slot changes.
        self.point: tuple[float | None, float | None, float | None, float | None] | None = None

    def add(self, o: Observation, at: float) -> None:
        """Count one call."""
        self.requests += 1
        s = o.status
        if s == "ok":
            self.ok += 1
        elif s == "error":
            self.errors += 1
        elif s == "rate_limited":
            self.rate_limited += 1
        elif s == "budget_refused":
            self.budget_refused += 1
        else:
            self.cancelled += 1
        if o.cache_hit:
            self.cache_hits += 1
        self.input_tokens += o.input_tokens
        self.output_tokens += o.output_tokens
        if o.cost_nanos is None:
            if s == "ok":
                self.unknown_cost += 1
        else:
            self.cost_nanos += o.cost_nanos
        if o.latency_bucket is not None:
            self.latency.add_bucket(o.latency_bucket, o.latency_ms)  # type: ignore[arg-type]
        if o.ttft_bucket is not None:
            self.ttft.add_bucket(o.ttft_bucket, o.ttft_ms)  # type: ignore[arg-type]
        if self.last_seen is None or at > self.last_seen:
            self.last_seen = at
        self.point = None

    def merge(self, other: Slot) -> None:
        """Add every call of ``other``."""
        self.requests += other.requests
        self.ok += other.ok
        self.errors += other.errors
        self.rate_limited += other.rate_limited
        self.budget_refused += other.budget_refused
        self.cancelled += other.cancelled
        self.cache_hits += other.cache_hits
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_nanos += other.cost_nanos
        self.unknown_cost += other.unknown_cost
        self.latency.merge(other.latency)
        self.ttft.merge(other.ttft)
        if other.last_seen is not None and (self.last_seen is None or other.last_seen > self.last_seen):
            self.last_seen = other.last_seen
        self.point = None

    def subtract(self, other: Slot) -> None:
        """Remove the calls of ``other``, merged or added before."""
        self.requests -= other.requests
        self.ok -= other.ok
        self.errors -= other.errors
        self.rate_limited -= other.rate_limited
        self.budget_refused -= other.budget_refused
        self.cancelled -= other.cancelled
        self.cache_hits -= other.cache_hits
        self.input_tokens -= other.input_tokens
        self.output_tokens -= other.output_tokens
        self.cost_nanos -= other.cost_nanos
        self.unknown_cost -= other.unknown_cost
        self.latency.subtract(other.latency)
        self.ttft.subtract(other.ttft)
        self.point = None

    def quantile_point(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(p50, p95, p99 latency, p50 TTFT), cached until the slot changes."""
        if self.point is None:
            p50, p95, p99 = self.latency.quantiles((0.5, 0.95, 0.99))
            self.point = (p50, p95, p99, self.ttft.quantile(0.5))
        return self.point


class Track:
    """The slots of one key over the window, and a running recent aggregate.

    Args:
        slot_s: the width of one slot in seconds.
        n_slots: how many slots the window keeps.
        recent_slots: how many of the newest slots the running aggregate covers.
        now: the time the track starts at.
    """

    __slots__ = ("head", "n", "recent", "recent_n", "ring", "seen", "slot_s")

    def __init__(self, slot_s: int, n_slots: int, recent_slots: int, now: float) -> None:
        self.slot_s = slot_s
        self.n = n_slots
        self.recent_n = min(recent_slots, n_slots)
        self.ring: list[Slot | None] = [None] * n_slots
        self.head = int(now // slot_s)
        self.recent = Slot()
        #: When the newest call of this key was counted (None: never).
        self.seen: float | None = None

    def index(self, at: float) -> int:
        """The slot index of time ``at``."""
        return int(at // self.slot_s)

    def advance(self, head: int) -> None:
        """Move the newest slot to ``head``, expiring what leaves the recent window."""
        if head <= self.head:
            return
        old_cut = self.head - self.recent_n
        new_cut = head - self.recent_n
        if new_cut - old_cut >= self.recent_n:
            self.recent = Slot()
        else:
            ring, n, recent = self.ring, self.n, self.recent
            for i in range(old_cut + 1, new_cut + 1):
                s = ring[i % n]
                if s is not None and s.idx == i:
                    recent.subtract(s)
        self.head = head

    def _slot_for(self, idx: int) -> Slot | None:
        if idx > self.head:
            self.advance(idx)
        elif idx <= self.head - self.n:
            return None  # older than the window
        pos = idx % self.n
        s = self.ring[pos]
        if s is None or s.idx != idx:
            s = self.ring[pos] = Slot(idx)
        return s

    def add(self, o: Observation, at: float) -> bool:
        """Count one call made at ``at``; False when it is older than the window."""
        idx = int(at // self.slot_s)
        s = self._slot_for(idx)
        if s is None:
            return False
        s.add(o, at)
        if idx > self.head - self.recent_n:
            self.recent.add(o, at)
        if self.seen is None or at > self.seen:
            self.seen = at
        return True

    def merge_slot(self, idx: int, other: Slot) -> bool:
        """Add a pre-aggregated slot (a stored rollup) at slot ``idx``."""
        s = self._slot_for(idx)
        if s is None:
            return False
        s.merge(other)
        if idx > self.head - self.recent_n:
            self.recent.merge(other)
        if other.last_seen is not None and (self.seen is None or other.last_seen > self.seen):
            self.seen = other.last_seen
        return True

    def get(self, idx: int) -> Slot | None:
        """The slot at ``idx`` if it holds calls and is inside the window."""
        if idx > self.head or idx <= self.head - self.n:
            return None
        s = self.ring[idx % self.n]
        return s if s is not None and s.idx == idx else None

    def window(self, head: int, n_slots: int) -> Slot:
        """The sum of the ``n_slots`` newest slots up to ``head`` (after advancing to it)."""
        self.advance(head)
        if n_slots == self.recent_n:
            return self.recent
        total = Slot()
        for i in range(self.head - min(n_slots, self.n) + 1, self.head + 1):
            s = self.get(i)
            if s is not None:
                total.merge(s)
        return total
