"""The log-bucket histogram: quantiles within 2 %, exact merge and subtract, a stable text form."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from axtui.metrics.histogram import RELATIVE_ACCURACY, LogHistogram

latencies = st.lists(st.floats(min_value=0.01, max_value=600_000, allow_nan=False), min_size=1, max_size=300)


@given(latencies, st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_quantiles_are_within_the_relative_accuracy(values: list[float], q: float) -> None:
    h = LogHistogram.of(values)
    got = h.quantile(q)
    assert got is not None
    # The true quantile lies between two neighbouring order statistics; the answer is near one of them.
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    candidates = {ordered[math.floor(rank)], ordered[math.ceil(rank)]}
    assert any(abs(got - c) <= c * RELATIVE_ACCURACY * 1.0001 for c in candidates), (got, candidates)


@given(latencies, latencies)
def test_merge_then_subtract_gives_back_the_original(a: list[float], b: list[float]) -> None:
    h = LogHistogram.of(a)
    before = h.copy()
    other = LogHistogram.of(b)
    h.merge(other)
    assert h.count == len(a) + len(b)
    assert h == LogHistogram.of(a + b)
    h.subtract(other)
    assert h == before


@given(latencies)
def test_text_form_round_trips(values: list[float]) -> None:
    h = LogHistogram.of(values)
    back = LogHistogram.from_text(h.to_text())
    assert back == h
    assert math.isclose(back.total, h.total)


def test_an_empty_histogram_has_no_quantiles() -> None:
    h = LogHistogram()
    assert h.quantile(0.5) is None and h.mean() is None
    assert LogHistogram.from_text("") == h


def test_zero_and_negative_values_read_back_as_zero() -> None:
    h = LogHistogram.of([0.0, -3.0, 0.0])
    assert h.quantile(0.5) == 0.0
