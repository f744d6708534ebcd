"""Sliding windows (limits' moving window and window counter) as pure code, with a fake clock."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.clock import FakeClock
from axtui.ratelimit.window import CounterState, MovingWindow, WindowCounter

PERIODS = st.sampled_from([1.0, 10.0, 60.0, 3600.0])
LIMITS = st.integers(min_value=1, max_value=40)
TRAFFIC = st.lists(
    st.tuples(st.floats(min_value=0, max_value=1.5, allow_nan=False), st.integers(min_value=1, max_value=3)),
    min_size=1,
    max_size=200,
)


def run(engine: MovingWindow | WindowCounter, traffic: list[tuple[float, int]]) -> list[tuple[float, int]]:
    clock = FakeClock()
    state: object = None
    admitted = []
    for gap, cost in traffic:
        clock.advance(gap * engine.period_s / engine.limit)
        v = engine.decide(state, clock.now(), cost)  # type: ignore[arg-type]
        state = v.state
        if v.allowed:
            admitted.append((clock.now(), cost))
    return admitted


def most_in_any_window(admitted: list[tuple[float, int]], width: float) -> int:
    """The most units in any half-open interval [t, t + width)."""
    return max((sum(c for u, c in admitted[i:] if u < t + width) for i, (t, _) in enumerate(admitted)), default=0)


@settings(max_examples=300, deadline=None)
@given(limit=LIMITS, period=PERIODS, traffic=TRAFFIC)
def test_the_moving_window_never_admits_more_than_its_limit_in_any_window(
    limit: int, period: float, traffic: list[tuple[float, int]]
) -> None:
    engine = MovingWindow(limit, period)
    admitted = run(engine, traffic)
    # Clock readings a period apart may differ by a rounding error (the second test needs that slack): a
    # window is measured as the limiter measures it, shorter by its tolerance (at most a microsecond).
    assert most_in_any_window(admitted, period - engine.tolerance) <= limit


@settings(max_examples=300, deadline=None)
@given(limit=LIMITS, period=PERIODS, pauses=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=150))
def test_a_steady_caller_at_the_limit_is_never_refused_by_the_moving_window(
    limit: int, period: float, pauses: list[float]
) -> None:
    engine = MovingWindow(limit, period)
    clock = FakeClock()
    state: tuple[float, ...] | None = None
    for pause in pauses:
        v = engine.decide(state, clock.now(), 1)
        assert v.allowed, f"refused at {clock.now()}"
        state = v.state  # type: ignore[assignment]
        clock.advance(period / limit * (1 + pause) if pause > 2 else period / limit)


@settings(max_examples=300, deadline=None)
@given(limit=LIMITS, period=PERIODS, traffic=TRAFFIC)
def test_the_window_counter_keeps_each_of_its_windows_within_the_limit_and_any_window_within_twice(
    limit: int, period: float, traffic: list[tuple[float, int]]
) -> None:
    engine = WindowCounter(limit, period)
    clock = FakeClock()
    state: CounterState | None = None
    admitted = []
    for gap, cost in traffic:
        clock.advance(gap * period / limit)
        v = engine.decide(state, clock.now(), cost)
        state = v.state  # type: ignore[assignment]
        if v.allowed:
            admitted.append((clock.now(), cost))
            # The counter's own window never holds more than the limit.
            assert state is not None and state.current <= limit
    # Its known approximation: a true sliding interval can briefly hold up to twice the limit.
    assert most_in_any_window(admitted, period) <= 2 * limit


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(min_value=2, max_value=40), period=PERIODS,
       pauses=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=150))
def test_a_steady_caller_just_under_the_limit_is_never_refused_by_the_window_counter(
    limit: int, period: float, pauses: list[float]
) -> None:
    # The counter assumes the previous window's units were spread evenly; at
    # exactly the limit's pace that estimate is one unit high at the
    # boundaries, so the promise holds one unit under it.
    engine = WindowCounter(limit, period)
    clock = FakeClock(start=1000.0)
    state: CounterState | None = None
    pace = period / (limit - 1)
    for pause in pauses:
        v = engine.decide(state, clock.now(), 1)
        assert v.allowed, f"refused at {clock.now()}"
        state = v.state  # type: ignore[assignment]
        clock.advance(pace * (1 + pause) if pause > 2 else pace)


@settings(max_examples=300, deadline=None)
@given(
    limit=LIMITS,
    period=PERIODS,
    traffic=TRAFFIC,
    cost=st.integers(min_value=1, max_value=5),
    exact=st.booleans(),
)
def test_retry_after_is_when_the_refused_request_passes(
    limit: int, period: float, traffic: list[tuple[float, int]], cost: int, exact: bool
) -> None:
    engine: MovingWindow | WindowCounter = MovingWindow(limit, period) if exact else WindowCounter(limit, period)
    clock = FakeClock()
    state: object = None
    for gap, c in traffic:
        clock.advance(gap * period / limit / 4)
        state = engine.decide(state, clock.now(), c).state  # type: ignore[arg-type]
    v = engine.decide(state, clock.now(), cost)  # type: ignore[arg-type]
    if v.allowed:
        return
    if cost > limit:
        assert v.retry_after == math.inf
        return
    assert engine.decide(state, clock.now() + v.retry_after, cost).allowed  # type: ignore[arg-type]
    if v.retry_after > 1e-3:
        assert not engine.decide(state, clock.now() + v.retry_after * 0.99 - 1e-6, cost).allowed  # type: ignore[arg-type]


def test_the_moving_window_frees_a_slot_when_the_oldest_entry_leaves() -> None:
    w = MovingWindow(3, 60)
    state: object = None
    for t in (0.0, 10.0, 20.0):
        state = w.decide(state, 1000 + t, 1).state  # type: ignore[arg-type]
    v = w.decide(state, 1030.0, 1)  # type: ignore[arg-type]
    assert not v.allowed and math.isclose(v.retry_after, 30.0, abs_tol=1e-3) and v.remaining == 0
    assert w.decide(state, 1060.0, 1).allowed  # type: ignore[arg-type]


def test_the_counter_weighs_the_previous_window_by_its_overlap() -> None:
    c = WindowCounter(10, 60)
    state = CounterState(1000.0, 0, 10)
    # Half-way through the next window, half of the previous ten still count.
    assert c.peek(state, 1090.0) == (5, 5, 30.0)
    assert c.decide(state, 1090.0, 5).allowed
    assert not c.decide(state, 1090.0, 6).allowed


def test_a_correction_takes_units_back_from_the_current_window_then_the_previous() -> None:
    c = WindowCounter(100, 60)
    state = CounterState(1000.0, 40, 10)
    assert c.adjust(state, 1010.0, -25) == CounterState(1000.0, 25, 0)
    assert c.adjust(state, 1010.0, +5) == CounterState(1000.0, 40, 15)
    assert c.adjust(None, 1010.0, -5) == CounterState(1010.0, 0, 0)
