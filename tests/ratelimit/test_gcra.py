"""The token bucket (GCRA): the two promises, tested over random traffic with a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.clock import FakeClock
from axtui.ratelimit.gcra import Bucket, TokenBucket

PERIODS = st.sampled_from([1.0, 10.0, 60.0, 3600.0])
LIMITS = st.integers(min_value=1, max_value=40)
BURSTS = st.one_of(st.none(), st.integers(min_value=1, max_value=80))


def most_in_any_window(admitted: list[tuple[float, int]], width: float) -> int:
    """The most units admitted in any closed interval of ``width`` (it suffices to start at each admission)."""
    best = 0
    for i, (start, _) in enumerate(admitted):
        total = sum(cost for t, cost in admitted[i:] if t <= start + width)
        best = max(best, total)
    return best


@settings(max_examples=300, deadline=None)
@given(
    limit=LIMITS,
    period=PERIODS,
    burst=BURSTS,
    traffic=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1.5, allow_nan=False), st.integers(min_value=1, max_value=4)),
        min_size=1,
        max_size=200,
    ),
)
def test_no_window_admits_more_than_limit_plus_burst(
    limit: int, period: float, burst: int | None, traffic: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    tb = TokenBucket(limit, period, burst=burst, clock=clock)
    admitted = []
    for gap, cost in traffic:
        clock.advance(gap * period / limit)  # gaps around the limit's own pace: the interesting region
        if tb.try_acquire(cost):
            admitted.append((clock.now(), cost))
    assert most_in_any_window(admitted, period) <= limit + tb.bucket.capacity


@settings(max_examples=300, deadline=None)
@given(
    limit=LIMITS,
    period=PERIODS,
    burst=BURSTS,
    slack=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), min_size=1, max_size=150),
)
def test_a_steady_caller_at_the_limit_is_never_refused(
    limit: int, period: float, burst: int | None, slack: list[float]
) -> None:
    clock = FakeClock()
    tb = TokenBucket(limit, period, burst=burst, clock=clock)
    interval = period / limit
    for extra in slack:
        # Exactly the limit's pace, or slower (a pause); never faster.
        assert tb.try_acquire(), f"refused at {clock.now()}"
        clock.advance(interval * (1 + extra) if extra > 2 else interval)


@settings(max_examples=200, deadline=None)
@given(limit=LIMITS, period=PERIODS, burst=BURSTS, cost=st.integers(min_value=1, max_value=10),
       spent=st.integers(min_value=1, max_value=100))
def test_retry_after_is_exactly_when_the_request_would_pass(
    limit: int, period: float, burst: int | None, cost: int, spent: int
) -> None:
    clock = FakeClock()
    tb = TokenBucket(limit, period, burst=burst, clock=clock)
    for _ in range(spent):
        tb.try_acquire()
    verdict = tb.bucket.decide(tb.state, clock.now(), cost)
    if verdict.allowed:
        return
    if cost > tb.bucket.capacity:
        assert verdict.retry_after == math.inf
        return
    if verdict.retry_after > 1e-3:
        assert not tb.bucket.decide(tb.state, clock.now() + verdict.retry_after * 0.99, cost).allowed
    clock.advance(verdict.retry_after)
    assert tb.try_acquire(cost)


def test_an_idle_caller_may_spend_the_burst_at_once_then_waits_for_the_refill() -> None:
    clock = FakeClock()
    tb = TokenBucket(10, 60, clock=clock)
    assert all(tb.try_acquire() for _ in range(10))
    refused = tb.acquire()
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after == 6.0
    clock.advance(6)
    assert tb.try_acquire()


def test_a_small_burst_spreads_requests_out() -> None:
    clock = FakeClock()
    tb = TokenBucket(60, 60, burst=2, clock=clock)
    assert tb.try_acquire() and tb.try_acquire()
    assert not tb.try_acquire()
    clock.advance(1)
    assert tb.try_acquire()


def test_a_charge_after_the_fact_puts_the_bucket_in_debt_and_a_refund_pays_it_back() -> None:
    clock = FakeClock()
    tb = TokenBucket(1000, 60, clock=clock)
    assert tb.try_acquire(500)
    tb.adjust(+700)  # the call used 1,200 tokens, not 500
    v = tb.acquire(1)
    assert not v.allowed and v.retry_after > 0
    tb.adjust(-700)
    assert tb.remaining == 500


def test_decisions_report_remaining_and_when_the_bucket_is_full() -> None:
    b = Bucket(10, 60)
    v = b.decide(None, 100.0, 4)
    assert v.allowed and v.remaining == 6 and v.reset_after == 24.0
    used, remaining, reset = b.peek(v.state, 100.0)  # type: ignore[arg-type]
    assert (used, remaining, reset) == (4, 6, 24.0)
    assert b.peek(v.state, 130.0) == (0, 10, 0.0)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(min_value=1, max_value=5000), period=PERIODS)
def test_a_full_burst_at_one_instant_is_exact_at_real_clock_magnitudes(limit: int, period: float) -> None:
    # At epoch seconds (~1.75e9) a float's grain is 0.24 µs: adding seconds per
    # unit would drift; counting units does not.
    clock = FakeClock(start=1_750_000_000.123)
    tb = TokenBucket(limit, period, clock=clock)
    assert sum(tb.try_acquire() for _ in range(limit + 5)) == limit


def test_a_clock_behind_the_one_that_wrote_the_state_does_not_refill_early() -> None:
    b = Bucket(10, 60)
    written = b.decide(None, 1000.0, 10).state  # by a process whose clock reads 1000
    v = b.decide(written, 999.0, 1)  # ours reads one second earlier
    assert not v.allowed and v.retry_after == pytest.approx(7.0)
