"""The mergeable log-bucket histogram and its sliding window."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.histogram import RELATIVE_ERROR, LogHistogram, WindowedHistogram

values = st.lists(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1, max_size=300)
quantile = st.floats(min_value=0.0, max_value=1.0)


def _true_quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(values, quantile)
def test_quantile_is_within_one_percent_of_the_true_one(xs: list[float], q: float) -> None:
    got = LogHistogram.of(xs).quantile(q)
    want = _true_quantile(xs, q)
    assert got is not None
    assert abs(got - want) <= want * RELATIVE_ERROR * 1.0001


@given(values, values)
def test_merging_two_equals_one_of_everything(a: list[float], b: list[float]) -> None:
    merged = LogHistogram.of(a).merge(LogHistogram.of(b))
    whole = LogHistogram.of(a + b)
    assert merged == whole
    assert merged.quantiles((0.5, 0.95)) == whole.quantiles((0.5, 0.95))
    assert merged.total == pytest.approx(whole.total)


@given(values, values)
def test_subtracting_a_merged_part_gives_the_rest(a: list[float], b: list[float]) -> None:
    h = LogHistogram.of(a).merge(LogHistogram.of(b))
    h.subtract(LogHistogram.of(b))
    assert h == LogHistogram.of(a)


@given(values, st.lists(quantile, min_size=1, max_size=5))
def test_quantiles_agree_with_quantile(xs: list[float], qs: list[float]) -> None:
    h = LogHistogram.of(xs)
    assert h.quantiles(qs) == [h.quantile(q) for q in qs]


@given(values)
def test_round_trips_through_its_dict_form(xs: list[float]) -> None:
    h = LogHistogram.of(xs)
    back = LogHistogram.from_dict(h.to_dict())
    assert back == h
    assert back.quantile(0.95) == h.quantile(0.95)
    assert back.min == h.min and back.max == h.max


def test_zeros_and_empty() -> None:
    h = LogHistogram()
    assert h.quantile(0.5) is None and h.mean is None
    h.add(0.0)
    h.add(-3.0)
    h.add(10.0)
    assert h.count == 3
    assert h.quantile(0.0) == 0.0
    assert h.quantile(1.0) == pytest.approx(10.0, rel=RELATIVE_ERROR)
    assert h.count_at_most(0.0) == 2
    assert h.count_at_most(11.0) == 3


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        LogHistogram.of([1.0]).quantile(1.5)
    with pytest.raises(ValueError, match="bucket ratio"):
        LogHistogram.from_dict({"gamma": 1.5, "buckets": {}})


@settings(max_examples=50)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=200), st.floats(min_value=1, max_value=1000)),
                min_size=1, max_size=100))
def test_window_holds_exactly_the_values_of_live_slots(events: list[tuple[float, float]]) -> None:
    span, slots = 60.0, 6
    w = WindowedHistogram(span, slots)
    now = 0.0
    added: list[tuple[float, float]] = []
    for dt, value in events:
        now += dt
        w.add(value, now)
        added.append((now, value))
    slot = span / slots
    oldest = (int(now // slot) - slots + 1) * slot
    live = [v for t, v in added if t >= oldest]
    assert w.snapshot(now) == LogHistogram.of(live)


def test_window_forgets_old_values() -> None:
    w = WindowedHistogram(60.0, 6)
    for i in range(10):
        w.add(1000.0, i)
    assert w.count(9) == 10
    assert w.quantile(0.5, 30) == pytest.approx(1000.0, rel=RELATIVE_ERROR)
    w.add(5.0, 75)
    assert w.count(75) == 1
    assert w.quantile(0.95, 75) == pytest.approx(5.0, rel=RELATIVE_ERROR)
    assert w.count(200) == 0
