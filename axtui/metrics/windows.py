"""Sliding windows of per-slot aggregates: the pure core of live metrics.

A `Track` holds the calls of one key (everything, one provider, one user…)
in a ring of fixed-width time slots covering the whole window (15 minutes
of one-second slots by default), plus a running aggregate of the most
recent closed slots (the last minute), kept up to date by adding each slot
as it closes and subtracting each slot that leaves the window. A call is
counted once, in its slot; reading the recent window is the aggregate plus
the slot still filling, so it costs the same at ten calls a second as at
ten thousand.

Slots are addressed by index (``time // slot_s``); a call may land in any
slot still inside the window, so rollups from other processes that arrive
a little late are placed where they belong.

Pure: times are passed in; no clock, no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from axtui.histogram import ZERO_BUCKET, LogHistogram, bucket_of
from axtui.types import CallRecord

__all__ = ["Observation", "Slot", "Track", "observe_record"]


class Observation(NamedTuple):
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
    status = rec.status
    if status == "ok" or status == "error":
        lat = rec.latency_ms
        lat_bucket = bucket_of(lat)
        if lat_bucket == ZERO_BUCKET:
            lat = 0.0  # counted as zero, as LogHistogram.add does
        ttft = rec.ttft_ms if status == "ok" else None
        ttft_bucket = None
        if ttft is not None:
            ttft_bucket = bucket_of(ttft)
            if ttft_bucket == ZERO_BUCKET:
                ttft = 0.0
        return Observation(
            status,
            rec.cache == "exact" or rec.cache == "semantic",
            rec.input_tokens,
            rec.output_tokens,
            rec.cost_nanos,
            lat,
            lat_bucket,
            ttft,
            ttft_bucket,
        )
    return Observation(status, False, rec.input_tokens, rec.output_tokens, rec.cost_nanos, None, None, None, None)


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
        status, hit, tokens_in, tokens_out, cost, lat, lat_bucket, ttft, ttft_bucket = o
        self.requests += 1
        if status == "ok":
            self.ok += 1
        elif status == "error":
            self.errors += 1
        elif status == "rate_limited":
            self.rate_limited += 1
        elif status == "budget_refused":
            self.budget_refused += 1
        else:
            self.cancelled += 1
        if hit:
            self.cache_hits += 1
        self.input_tokens += tokens_in
        self.output_tokens += tokens_out
        if cost is None:
            if status == "ok":
                self.unknown_cost += 1
        else:
            self.cost_nanos += cost
        # LogHistogram.add_bucket, inlined: this runs for every call in several windows.
        if lat_bucket is not None:
            h = self.latency
            b = h.buckets
            b[lat_bucket] = b.get(lat_bucket, 0) + 1
            h.count += 1
            h.total += lat  # type: ignore[operator]
        if ttft_bucket is not None:
            h = self.ttft
            b = h.buckets
            b[ttft_bucket] = b.get(ttft_bucket, 0) + 1
            h.count += 1
            h.total += ttft  # type: ignore[operator]
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
    """The slots of one key over the window, and a running aggregate of the recent ones.

    ``recent`` holds the closed slots of the recent window (the newest
    ``recent_slots`` minus the one still filling, ``head``).

    Args:
        slot_s: the width of one slot in seconds.
        n_slots: how many slots the window keeps.
        recent_slots: how many of the newest slots the recent window covers.
        now: the time the track starts at.
    """

    __slots__ = ("head", "n", "recent", "recent_n", "ring", "seen", "slot_s")

    def __init__(self, slot_s: int, n_slots: int, recent_slots: int, now: float) -> None:
        self.slot_s = slot_s
        self.n = n_slots
        self.recent_n = max(1, min(recent_slots, n_slots))
        self.ring: list[Slot | None] = [None] * n_slots
        self.head = int(now // slot_s)
        self.recent = Slot()
        #: When the newest call of this key was counted (None: never).
        self.seen: float | None = None

    def index(self, at: float) -> int:
        """The slot index of time ``at``."""
        return int(at // self.slot_s)

    def advance(self, head: int) -> None:
        """Make ``head`` the slot filling now: close the slots before it, expire the old ones."""
        old = self.head
        if head <= old:
            return
        ring, n, recent = self.ring, self.n, self.recent
        old_cut = old - self.recent_n  # slots at or below a cut are outside the recent window
        new_cut = head - self.recent_n
        if new_cut - old_cut >= self.recent_n:
            recent = self.recent = Slot()
        else:
            # Leaving: slots that were in the aggregate (closed, above the old cut).
            for i in range(old_cut + 1, min(old - 1, new_cut) + 1):
                s = ring[i % n]
                if s is not None and s.idx == i:
                    recent.subtract(s)
        # Closing: the old head (the only slot that can hold calls between old and head).
        if old > new_cut:
            s = ring[old % n]
            if s is not None and s.idx == old:
                recent.merge(s)
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
        if idx == self.head:  # the common case: a call of the second now filling
            s = self.ring[idx % self.n]
            if s is None or s.idx != idx:
                s = self.ring[idx % self.n] = Slot(idx)
            s.add(o, at)
        else:
            found = self._slot_for(idx)
            if found is None:
                return False
            found.add(o, at)
            if self.head - self.recent_n < idx < self.head:
                self.recent.add(o, at)  # a late call for a closed slot of the recent window
        if self.seen is None or at > self.seen:
            self.seen = at
        return True

    def merge_slot(self, idx: int, other: Slot) -> bool:
        """Add a pre-aggregated slot (a stored rollup) at slot ``idx``."""
        s = self._slot_for(idx)
        if s is None:
            return False
        s.merge(other)
        if self.head - self.recent_n < idx < self.head:
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

    def recent_requests(self, head: int) -> int:
        """Calls in the recent window up to ``head`` (cheap: no histogram is touched)."""
        self.advance(head)
        s = self.get(self.head)
        return self.recent.requests + (s.requests if s is not None else 0)

    def window(self, head: int, n_slots: int) -> Slot:
        """A new slot summing the ``n_slots`` newest slots up to ``head`` (after advancing to it)."""
        self.advance(head)
        total = Slot()
        if n_slots == self.recent_n:
            total.merge(self.recent)
            s = self.get(self.head)
            if s is not None:
                total.merge(s)
            return total
        for i in range(self.head - min(n_slots, self.n) + 1, self.head + 1):
            s = self.get(i)
            if s is not None:
                total.merge(s)
        return total
